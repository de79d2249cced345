# Event-loop adapters (adapters/): epoll, libuv and GLib drive a ka_client
# through on_socket, ka_client_process_socket and ka_client_timeout_ms.
# Suite adapters (test/adapters/run.sh): one test client per adapter against
# a two-address name, a blackholed IPv6 path and a server restart, in
# network namespaces, and a restart on loopback without root. libuv and
# GLib are linked into these test programs only, never into the library.

SUITES    += adapters
DEPS_PKGS += libuv1-dev libglib2.0-dev pkg-config socat iproute2 nftables

AD_PROGS   = test/adapters/ad_epoll test/adapters/ad_uv test/adapters/ad_glib
CLEAN     += $(AD_PROGS)
AD_CFLAGS  = $(KA_CFLAGS) -Werror -Iadapters -Itest/adapters
# Deferred (=): pkg-config runs only when these programs are built.
AD_UV_CFLAGS   = $(shell pkg-config --cflags libuv 2>/dev/null)
AD_UV_LIBS     = $(shell pkg-config --libs libuv 2>/dev/null)
AD_GLIB_CFLAGS = $(shell pkg-config --cflags glib-2.0 2>/dev/null)
AD_GLIB_LIBS   = $(shell pkg-config --libs glib-2.0 2>/dev/null)

# Not part of `all`: epoll is Linux-only and the other two need their
# libraries; `suite-adapters` builds what it can.

test/adapters/ad_epoll: test/adapters/ad_epoll.c test/adapters/ad_test.h adapters/ka_epoll.c adapters/ka_epoll.h ka_client.h $(LIB)
	$(CC) $(AD_CFLAGS) -o $@ test/adapters/ad_epoll.c adapters/ka_epoll.c $(LIB) $(LDFLAGS)

test/adapters/ad_uv: test/adapters/ad_uv.c test/adapters/ad_test.h adapters/ka_uv.c adapters/ka_uv.h ka_client.h $(LIB)
	$(CC) $(AD_CFLAGS) $(AD_UV_CFLAGS) -o $@ test/adapters/ad_uv.c adapters/ka_uv.c $(LIB) $(LDFLAGS) $(AD_UV_LIBS)

test/adapters/ad_glib: test/adapters/ad_glib.c test/adapters/ad_test.h adapters/ka_glib.c adapters/ka_glib.h ka_client.h $(LIB)
	$(CC) $(AD_CFLAGS) $(AD_GLIB_CFLAGS) -o $@ test/adapters/ad_glib.c adapters/ka_glib.c $(LIB) $(LDFLAGS) $(AD_GLIB_LIBS)

# A program whose library is installed must build (a failure fails the
# suite); one whose library is missing is skipped by run.sh with a line.
suite-adapters: test/adapters/ad_epoll
	@for m in libuv:ad_uv glib-2.0:ad_glib; do \
		pkg-config --exists $${m%%:*} 2>/dev/null || continue; \
		$(MAKE) -s -f $(firstword $(MAKEFILE_LIST)) test/adapters/$${m#*:} || exit 1; \
	done
	@bash test/adapters/run.sh

.PHONY: suite-adapters
