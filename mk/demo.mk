# Demos: kacat, the reconnecting cat; flaky_server, an echo server
# that misbehaves on a schedule; own_loop, embedding in an app's select().
# `make demo` runs the self-explaining demo; `make suite-kacat` tests kacat
# against servers nobody here wrote (redis-server, socat).

KA_DEMOS = demo/kacat demo/flaky_server demo/own_loop
DEMOS   += $(KA_DEMOS)
CLEAN   += $(KA_DEMOS)
SUITES  += kacat
DEPS_PKGS += redis-server socat mandoc groff-base

demo/kacat: demo/kacat.c demo/demo_os.h ka_client.h $(LIB)
	$(CC) $(KA_CFLAGS) -o $@ demo/kacat.c $(LIB) $(LDFLAGS)

demo/flaky_server: demo/flaky_server.c demo/demo_os.h
	$(CC) $(KA_CFLAGS) -o $@ demo/flaky_server.c $(LDFLAGS)

demo/own_loop: demo/own_loop.c demo/demo_os.h ka_client.h $(LIB)
	$(CC) $(KA_CFLAGS) -o $@ demo/own_loop.c $(LIB) $(LDFLAGS)

demo: demo/kacat demo/flaky_server
	@sh demo/demo.sh

suite-kacat: $(KA_DEMOS)
	@bash test/kacat_test.sh

.PHONY: demo suite-kacat
