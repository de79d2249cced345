# ka_client: make builds the libraries (static and shared), tests and demos;
# make test runs the loopback suite; make check is the whole CI run (README's
# test command); make install / uninstall put the library, its pkg-config and
# CMake packages, kacat and the manual pages under PREFIX (DESTDIR honoured).
# CC, CFLAGS, LDFLAGS, PREFIX and DESTDIR are yours: we only add to them.
# CMakeLists.txt builds the same libraries for CMake users.

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/ka_client
CMAKEDIR ?= $(LIBDIR)/cmake/ka_client
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CFLAGS  ?= -O2 -g
AR      ?= ar
WARN     = -std=c99 -Wall -Wextra -Wpedantic
# The library may resolve names on a helper thread, so everything that
# compiles or links it says -pthread (glibc 2.34+ and musl need nothing more,
# older glibc and the BSDs do). `make PTHREAD=` leaves it out.
PTHREAD ?= -pthread
KA_CFLAGS = $(WARN) $(PTHREAD) $(CFLAGS) -I.

# The version lives in the header; the shared library's names follow it:
# soname libka_client.so.MAJOR (the ABI), real file libka_client.so.X.Y.Z.
KA_VERSION := $(shell sed -n 's/^.define KA_VERSION_STRING "\(.*\)"/\1/p' ka_client.h)
KA_MAJOR   := $(firstword $(subst ., ,$(KA_VERSION)))

LIB      = libka_client.a
ifeq ($(shell uname -s 2>/dev/null),Darwin)
SHLIB        = libka_client.$(KA_VERSION).dylib
SHLIB_SONAME = libka_client.$(KA_MAJOR).dylib
SHLIB_LINK   = libka_client.dylib
SHLIB_LDFLAGS = -dynamiclib -install_name $(LIBDIR)/$(SHLIB_SONAME) \
                -compatibility_version $(KA_MAJOR) -current_version $(KA_VERSION)
else
SHLIB        = libka_client.so.$(KA_VERSION)
SHLIB_SONAME = libka_client.so.$(KA_MAJOR)
SHLIB_LINK   = libka_client.so
# The version script exports the ka_ functions and nothing else.
SHLIB_LDFLAGS = -shared -Wl,-soname,$(SHLIB_SONAME) -Wl,--version-script=mk/ka_client.map
endif
SHLIBS   = $(SHLIB) $(SHLIB_SONAME) $(SHLIB_LINK)

TESTS    = test/unit
DEMOS    =

# Each mk/*.mk adds its programs to DEMOS / TESTS and its suites to SUITES;
# `make check` runs every suite and sums their "N passed, N failed" lines.
SUITES   = unit build
# Debian packages the suites need; `make deps` installs the missing ones.
DEPS_PKGS =

# The fragments come first so that `all` sees what they add to TESTS and
# DEMOS; test/build.sh checks that every mk/*.mk is named here.
.DEFAULT_GOAL := all
include mk/bench.mk    # make bench: latency, throughput and footprint tables (BENCHMARKS.md)
include mk/cross.mk    # suites musl, qemu-arm, qemu-aarch64, qemu-s390x; make size
include mk/tls.mk      # suites tls, tls-soak: TLS adapters (transport/) as libka_openssl.a / libka_mbedtls.a; make tls-bench
include mk/demo.mk     # kacat, flaky_server, own_loop; make demo; suite kacat
include mk/harden.mk   # suites harden, soak, asan-clang, asan-gcc, valgrind, tsan, static, fuzz
include mk/lab.mk      # suites lab, lab-stress-asan, lab-stress-tsan, lab-stress-valgrind: network namespaces
include mk/wine.mk     # suite wine: MinGW-w64 build run under Wine
include mk/pkg.mk      # suites shared, install, cmake, mingw-cmake, abi; make abi-dump
include mk/adapters.mk # suite adapters: epoll, libuv and GLib adapters (adapters/)
include mk/sessions.mk # suite sessions: telemetry and MQTT demos under server restarts
include mk/examples.mk # suite examples: retry policies and a server's retry-after (examples/)

all: $(LIB) $(SHLIBS) $(TESTS) $(DEMOS)

ka_client.o: ka_client.c ka_client.h
	$(CC) $(KA_CFLAGS) -c ka_client.c -o $@

$(LIB): ka_client.o
	$(AR) rcs $@ ka_client.o

# The shared library's object is position-independent: it has its own name.
ka_client.pic.o: ka_client.c ka_client.h
	$(CC) $(KA_CFLAGS) -fPIC -c ka_client.c -o $@

$(SHLIB): ka_client.pic.o mk/ka_client.map
	$(CC) $(PTHREAD) $(SHLIB_LDFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ ka_client.pic.o

$(SHLIB_SONAME): $(SHLIB)
	ln -sf $(SHLIB) $@

$(SHLIB_LINK): $(SHLIB_SONAME)
	ln -sf $(SHLIB_SONAME) $@

shared: $(SHLIBS)

TEST_SRC = test/unit.c test/testlib.c
test/unit: $(TEST_SRC) test/testlib.h $(LIB)
	$(CC) $(KA_CFLAGS) -o $@ $(TEST_SRC) $(LIB) $(LDFLAGS)

test: test/unit
	./test/unit

suite-unit: test

suite-build: $(LIB)
	@CC="$(CC)" sh test/build.sh

# suite static reads sources only: it runs beside the others (test/check.sh).
check: deps
	@$(MAKE) -s ka_client.o
	@sh test/check.sh --beside static $(MAKE) $(SUITES)

deps:
	@sh test/deps.sh $(DEPS_PKGS)

# The manual pages (suite install checks that both are installed).
MAN_PAGES = doc/kacat.1 doc/ka_client.3

# ka_client.pc and the CMake package are written at install time, so they
# always name this PREFIX (the CMake package relative to itself where it can).
install: $(LIB) $(SHLIBS) demo/kacat
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR)
	install -m 644 ka_client.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(SHLIB) $(DESTDIR)$(LIBDIR)/$(SHLIB_SONAME)
	ln -sf $(SHLIB_SONAME) $(DESTDIR)$(LIBDIR)/$(SHLIB_LINK)
	sed -e 's|@prefix@|$(PREFIX)|' -e 's|@libdir@|$(LIBDIR)|' -e 's|@includedir@|$(INCDIR)|' \
		-e 's|@VERSION@|$(KA_VERSION)|' -e 's|@LIBS_PRIVATE@|$(PTHREAD)|' \
		cmake/ka_client.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/ka_client.pc
	sh cmake/make-package.sh $(DESTDIR)$(CMAKEDIR) $(CMAKEDIR) $(PREFIX) $(LIBDIR) $(INCDIR) \
		$(KA_VERSION) $(SHLIB) $(SHLIB_SONAME) $(LIB) \
		"$$(echo | $(CC) -dM -E - 2>/dev/null | sed -n 's/^.define __SIZEOF_POINTER__ //p')"
	install -m 755 demo/kacat $(DESTDIR)$(BINDIR)/
	install -m 644 LICENSE $(DESTDIR)$(DOCDIR)/
	for p in $(MAN_PAGES); do \
		s=$${p##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s && install -m 644 $$p $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; \
	done
	@$(MAKE) --no-print-directory -s install-tls   # the TLS adapters that were built here

# Removes what install put there, the pages included, and the directories
# only ka_client uses.
uninstall:
	rm -f $(DESTDIR)$(INCDIR)/ka_client.h $(DESTDIR)$(LIBDIR)/$(LIB) \
		$(DESTDIR)$(LIBDIR)/$(SHLIB) $(DESTDIR)$(LIBDIR)/$(SHLIB_SONAME) $(DESTDIR)$(LIBDIR)/$(SHLIB_LINK) \
		$(DESTDIR)$(PKGCONFIGDIR)/ka_client.pc $(DESTDIR)$(BINDIR)/kacat \
		$(DESTDIR)$(CMAKEDIR)/ka_clientConfig.cmake $(DESTDIR)$(CMAKEDIR)/ka_clientConfigVersion.cmake \
		$(DESTDIR)$(CMAKEDIR)/ka_clientTargets.cmake $(DESTDIR)$(DOCDIR)/LICENSE \
		$(DESTDIR)$(MANDIR)/man1/kacat.1 $(DESTDIR)$(MANDIR)/man3/ka_client.3 \
		$(DESTDIR)$(INCDIR)/ka_openssl.h $(DESTDIR)$(INCDIR)/ka_mbedtls.h \
		$(DESTDIR)$(LIBDIR)/libka_openssl.a $(DESTDIR)$(LIBDIR)/libka_mbedtls.a
	-rmdir $(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null

clean:
	rm -f ka_client.o ka_client.pic.o $(LIB) $(SHLIBS) $(TESTS) $(DEMOS) $(CLEAN)

.PHONY: all shared test check deps install uninstall clean suite-unit suite-build
