# ka_client: make builds the library, tests and demos; make test runs the
# loopback suite; make check is the whole CI run (README's test command).
# CC, CFLAGS, LDFLAGS, PREFIX and DESTDIR are yours: we only add to them.

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
CFLAGS  ?= -O2 -g
AR      ?= ar
WARN     = -std=c99 -Wall -Wextra -Wpedantic
KA_CFLAGS = $(WARN) $(CFLAGS) -I.

LIB      = libka_client.a
TESTS    = test/unit
DEMOS    =

# Each mk/*.mk adds its programs to DEMOS / TESTS and its suites to SUITES;
# `make check` runs every suite and sums their "N passed, N failed" lines.
SUITES   = unit build
# Debian packages the suites need; `make deps` installs the missing ones.
DEPS_PKGS =

# mk/*.mk come first so that `all` sees what they add to TESTS and DEMOS.
.DEFAULT_GOAL := all
-include mk/*.mk

all: $(LIB) $(TESTS) $(DEMOS)

ka_client.o: ka_client.c ka_client.h
	$(CC) $(KA_CFLAGS) -c ka_client.c -o $@

$(LIB): ka_client.o
	$(AR) rcs $@ ka_client.o

TEST_SRC = test/unit.c test/testlib.c
test/unit: $(TEST_SRC) test/testlib.h $(LIB)
	$(CC) $(KA_CFLAGS) -o $@ $(TEST_SRC) $(LIB) $(LDFLAGS)

test: test/unit
	./test/unit

suite-unit: test

suite-build: $(LIB)
	@CC="$(CC)" sh test/build.sh

check: deps
	@sh test/check.sh $(MAKE) $(SUITES)

deps:
	@sh test/deps.sh $(DEPS_PKGS)

# The .pc file is written at install time so it always names this PREFIX.
install: $(LIB)
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 ka_client.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/
	printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: ka_client\nDescription: one TCP client connection kept alive\nVersion: %s\nLibs: -L$${libdir} -lka_client\nCflags: -I$${includedir}\n' \
		'$(PREFIX)' '$(LIBDIR)' '$(INCDIR)' \
		"$$(sed -n 's/^#define KA_VERSION_STRING "\(.*\)"/\1/p' ka_client.h)" > $(DESTDIR)$(LIBDIR)/pkgconfig/ka_client.pc

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/ka_client.h $(DESTDIR)$(LIBDIR)/$(LIB) $(DESTDIR)$(LIBDIR)/pkgconfig/ka_client.pc

clean:
	rm -f ka_client.o $(LIB) $(TESTS) $(DEMOS) $(CLEAN)

.PHONY: all test check deps install uninstall clean suite-unit suite-build
