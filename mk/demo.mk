# Demos: kacat, the reconnecting cat; flaky_server, an echo server
# that misbehaves on a schedule; own_loop, embedding in an app's select().
# `make demo` runs the self-explaining demo; `make suite-kacat` tests kacat
# against servers nobody here wrote (redis-server, socat, openssl s_server,
# redis-server --tls-port with certificates made at test time).

KA_DEMOS = demo/kacat demo/flaky_server demo/own_loop
DEMOS   += $(KA_DEMOS)
CLEAN   += $(KA_DEMOS)
SUITES  += kacat
DEPS_PKGS += redis-server socat mandoc groff-base openssl libssl-dev

# kacat's --tls: the OpenSSL adapter when mk/tls.mk builds it; without it
# the three KACAT_TLS_ variables are empty and --tls exits 2.
demo/kacat: demo/kacat.c demo/demo_os.h ka_client.h $(LIB) $(KACAT_TLS_DEPS)
	$(CC) $(KA_CFLAGS) $(KACAT_TLS_CFLAGS) -o $@ demo/kacat.c $(KACAT_TLS_LIBS) $(LIB) $(LDFLAGS)

demo/flaky_server: demo/flaky_server.c demo/demo_os.h
	$(CC) $(KA_CFLAGS) -o $@ demo/flaky_server.c $(LDFLAGS)

demo/own_loop: demo/own_loop.c demo/demo_os.h ka_client.h $(LIB)
	$(CC) $(KA_CFLAGS) -o $@ demo/own_loop.c $(LIB) $(LDFLAGS)

demo: demo/kacat demo/flaky_server
	@sh demo/demo.sh

suite-kacat: $(KA_DEMOS)
	@bash test/kacat_test.sh

.PHONY: demo suite-kacat
