# TLS adapters (transport/): libka_openssl.a and libka_mbedtls.a, each a
# ka_transport over OpenSSL or Mbed TLS, each its own library so that
# libka_client.a never links a TLS library. `make` builds each one whose
# headers are installed (Debian: libssl-dev, libmbedtls-dev) and says in one
# line which it left out.
#
# Suite tls (test/tls/run.sh): both adapters against openssl s_server,
# redis-server --tls-port, stunnel in front of socat; certificate failures;
# SNI; 16 MiB through a server restart with replay_until_acked; 200
# reconnects with descriptors and memory flat; the adapters compile for
# Windows (MinGW, syntax only); and, as root, a pulled cable and a crashed
# host in network namespaces beside plain TCP. Certificates are made at
# test time (test/tls/certs.sh). About 45 s.
#
# Suite tls-soak (about 70 s): 1,000 TLS reconnects per adapter, plain,
# under ASan+UBSan and under valgrind, descriptors and memory flat.
# make tls-bench: throughput, round trip and handshakes (bench/tls_bench.c).

SUITES    += tls tls-soak
DEPS_PKGS += libssl-dev libmbedtls-dev openssl stunnel4 redis-server socat iproute2 gcc-mingw-w64-x86-64

TLS_DIR = build/tls
# Asked once per make run: can the compiler find the headers?
tls_have = $(shell printf '\#include <$(1)>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
TLS_OPENSSL_OK := $(call tls_have,openssl/ssl.h)
TLS_MBEDTLS_OK := $(call tls_have,mbedtls/ssl.h)
# pkg-config knows OpenSSL; Debian's Mbed TLS 2.28 has no .pc file.
OPENSSL_CFLAGS = $(shell pkg-config --cflags openssl 2>/dev/null)
OPENSSL_LIBS   = $(shell pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto)
MBEDTLS_LIBS   = -lmbedtls -lmbedx509 -lmbedcrypto

TLS_LIBS  = libka_openssl.a libka_mbedtls.a
TLS_BUILT = $(if $(TLS_OPENSSL_OK),libka_openssl.a) $(if $(TLS_MBEDTLS_OK),libka_mbedtls.a)
CLEAN   += $(TLS_LIBS) transport/ka_openssl.o transport/ka_mbedtls.o \
           $(TLS_DIR)/tls_client $(TLS_DIR)/asan/tls_client $(TLS_DIR)/tls_bench

all: tls-libs

# Builds the adapters whose headers are here; one line for each left out.
tls-libs: $(TLS_BUILT)
	@[ -n "$(TLS_OPENSSL_OK)" ] || echo "tls: OpenSSL headers not found (Debian: libssl-dev): libka_openssl.a not built"
	@[ -n "$(TLS_MBEDTLS_OK)" ] || echo "tls: Mbed TLS headers not found (Debian: libmbedtls-dev): libka_mbedtls.a not built"

transport/ka_openssl.o: transport/ka_openssl.c transport/ka_openssl.h transport/ka_tls_compat.h ka_client.h
	$(CC) $(KA_CFLAGS) $(OPENSSL_CFLAGS) -c transport/ka_openssl.c -o $@

transport/ka_mbedtls.o: transport/ka_mbedtls.c transport/ka_mbedtls.h transport/ka_tls_compat.h ka_client.h
	$(CC) $(KA_CFLAGS) -c transport/ka_mbedtls.c -o $@

libka_openssl.a: transport/ka_openssl.o
	$(AR) rcs $@ transport/ka_openssl.o

libka_mbedtls.a: transport/ka_mbedtls.o
	$(AR) rcs $@ transport/ka_mbedtls.o

# The test client and the bench link whichever adapters were built.
TLS_HAVE_DEFS = $(if $(TLS_OPENSSL_OK),-DKA_HAVE_OPENSSL) $(if $(TLS_MBEDTLS_OK),-DKA_HAVE_MBEDTLS)
TLS_LINK      = $(if $(TLS_OPENSSL_OK),libka_openssl.a $(OPENSSL_LIBS)) $(if $(TLS_MBEDTLS_OK),libka_mbedtls.a $(MBEDTLS_LIBS))
TLS_TEST_CFLAGS = $(KA_CFLAGS) -Werror -Itransport $(TLS_HAVE_DEFS)

$(TLS_DIR)/tls_client: test/tls/tls_client.c ka_client.h $(LIB) $(TLS_BUILT)
	@mkdir -p $(@D)
	$(CC) $(TLS_TEST_CFLAGS) -o $@ test/tls/tls_client.c $(TLS_LINK) $(LIB) $(LDFLAGS)

# kacat's --tls (mk/demo.mk): the OpenSSL adapter when it is built. This
# file is included before mk/demo.mk, so these are known to its rules.
KACAT_TLS_DEPS   = $(if $(TLS_OPENSSL_OK),libka_openssl.a)
KACAT_TLS_CFLAGS = $(if $(TLS_OPENSSL_OK),-DKACAT_TLS -Itransport $(OPENSSL_CFLAGS))
KACAT_TLS_LIBS   = $(if $(TLS_OPENSSL_OK),libka_openssl.a $(OPENSSL_LIBS))

# The sanitizer build compiles the library and the adapters into the
# program, so all three are instrumented (SAN_FLAGS from mk/harden.mk).
TLS_SAN_SRC = $(if $(TLS_OPENSSL_OK),transport/ka_openssl.c) $(if $(TLS_MBEDTLS_OK),transport/ka_mbedtls.c)
TLS_SAN_LIBS = $(if $(TLS_OPENSSL_OK),$(OPENSSL_LIBS)) $(if $(TLS_MBEDTLS_OK),$(MBEDTLS_LIBS))
$(TLS_DIR)/asan/tls_client: test/tls/tls_client.c ka_client.c ka_client.h transport/ka_openssl.c transport/ka_mbedtls.c transport/ka_tls_compat.h
	@mkdir -p $(@D)
	$(CLANG) $(WARN) -Werror $(PTHREAD) $(CFLAGS) $(SAN_FLAGS) -I. -Itransport $(TLS_HAVE_DEFS) -o $@ \
		test/tls/tls_client.c ka_client.c $(TLS_SAN_SRC) $(TLS_SAN_LIBS) $(LDFLAGS)

suite-tls: $(TLS_DIR)/tls_client
	@bash test/tls/run.sh

suite-tls-soak: $(TLS_DIR)/tls_client $(TLS_DIR)/asan/tls_client
	@$(SAN_ENV) VALGRIND="$(VALGRIND)" bash test/tls/soak.sh

# ---- bench ----
$(TLS_DIR)/tls_bench: bench/tls_bench.c ka_client.c ka_client.h $(TLS_BUILT)
	@mkdir -p $(@D)
	$(CC) $(WARN) -Werror -O2 $(PTHREAD) -I. -Itransport $(TLS_HAVE_DEFS) -o $@ bench/tls_bench.c ka_client.c \
		$(TLS_LINK) $(LDFLAGS)

tls-bench: $(TLS_DIR)/tls_bench
	@bash bench/tls_bench.sh

# The adapters' headers and libraries, beside the library's own.
install-tls: tls-libs
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)
	for a in openssl mbedtls; do \
		[ -f libka_$$a.a ] || continue; \
		install -m 644 transport/ka_$$a.h $(DESTDIR)$(INCDIR)/ && install -m 644 libka_$$a.a $(DESTDIR)$(LIBDIR)/ || exit 1; \
	done

.PHONY: tls-libs suite-tls suite-tls-soak tls-bench install-tls
