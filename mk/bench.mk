# make bench: ka_client raced side by side against a plain blocking socket,
# libuv, libevent and hiredis on one server (round trip, throughput, RSS per
# idle client, system calls, reconnect lateness, idle wake-ups, pulled-cable
# detection), plus ka_client's own rows (detection detail, busy dead path,
# reconnect storm, footprint) and what seeing the link costs and shows (the
# trace of a cable pulled under load with the early warning, connect time on
# a dual-stack name beside curl, the longest call while DNS is dark, idle
# wake-ups with on_health). Not part of `make test` / `make check`.
#
# The bench installs its own Debian packages (root; otherwise it says what
# is missing and races without those contenders), builds with -O2 into
# build/bench/, runs bench/run.sh (root for the namespace lab; without it
# those rows say skipped) and writes BENCHMARKS.md and its pictures.
# BENCH_QUICK=1 make bench: a smoke run under 2 minutes, written to
# build/bench/BENCHMARKS.quick.md. BENCH_ONLY="race lab storm footprint
# trace eyeballs dns health tls" make bench: only those parts, written to
# build/bench/BENCHMARKS.only.md.
# None of these libraries is ever linked into libka_client.a.

BENCH_DIR    = build/bench
BENCH_CFLAGS = $(WARN) -Werror -O2 -I. -D_GNU_SOURCE
BENCH_PKGS   = libuv1-dev libevent-dev libhiredis-dev pkg-config strace gnuplot-nox \
               iproute2 nftables util-linux binutils curl libssl-dev libmbedtls-dev openssl socat
BENCH_PROGS  = $(BENCH_DIR)/kabench $(BENCH_DIR)/kaalloc $(BENCH_DIR)/raceserv \
               $(BENCH_DIR)/race-raw $(BENCH_DIR)/race-ka
# each needs its library's -dev package; a missing one leaves its column empty
BENCH_PEERS  = $(BENCH_DIR)/race-uv $(BENCH_DIR)/race-ev $(BENCH_DIR)/race-hiredis
RACE_DEPS    = bench/race.c bench/race.h
CLEAN       += $(BENCH_PROGS) $(BENCH_PEERS) $(BENCH_DIR)/kacat \
               $(BENCH_DIR)/ka_client-O2.o $(BENCH_DIR)/ka_client-Os.o \
               $(BENCH_DIR)/*.txt $(BENCH_DIR)/*.out $(BENCH_DIR)/*.dat $(BENCH_DIR)/*.svg \
               $(BENCH_DIR)/meta.sh $(BENCH_DIR)/BENCHMARKS.*.md $(BENCH_DIR)/lab/*.out \
               $(BENCH_DIR)/trace_marks.gp

# pkg-config when it knows the library, the plain -l otherwise
bench_libs = $(shell pkg-config --libs $(1) 2>/dev/null || echo $(2))

$(BENCH_DIR)/ka_client-O2.o: ka_client.c ka_client.h
	@mkdir -p $(BENCH_DIR)
	$(CC) $(WARN) -O2 -c ka_client.c -o $@

$(BENCH_DIR)/ka_client-Os.o: ka_client.c ka_client.h
	@mkdir -p $(BENCH_DIR)
	$(CC) $(WARN) -Os -c ka_client.c -o $@

$(BENCH_DIR)/kabench: bench/kabench.c $(BENCH_DIR)/ka_client-O2.o
	$(CC) $(BENCH_CFLAGS) -o $@ bench/kabench.c $(BENCH_DIR)/ka_client-O2.o -lpthread

# Allocation counting: --wrap catches ka_client.o's own malloc calls; the
# malloc defined in kaalloc.c catches everything else, libc's included.
$(BENCH_DIR)/kaalloc: bench/kaalloc.c $(BENCH_DIR)/ka_client-O2.o
	$(CC) $(BENCH_CFLAGS) -o $@ bench/kaalloc.c $(BENCH_DIR)/ka_client-O2.o \
		-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free

$(BENCH_DIR)/raceserv: bench/raceserv.c
	@mkdir -p $(BENCH_DIR)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/raceserv.c

$(BENCH_DIR)/race-raw: bench/race_raw.c $(RACE_DEPS)
	@mkdir -p $(BENCH_DIR)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/race.c bench/race_raw.c

$(BENCH_DIR)/race-ka: bench/race_ka.c $(RACE_DEPS) $(BENCH_DIR)/ka_client-O2.o
	$(CC) $(BENCH_CFLAGS) -o $@ bench/race.c bench/race_ka.c $(BENCH_DIR)/ka_client-O2.o

$(BENCH_DIR)/race-uv: bench/race_uv.c $(RACE_DEPS)
	@mkdir -p $(BENCH_DIR)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/race.c bench/race_uv.c $(call bench_libs,libuv,-luv)

$(BENCH_DIR)/race-ev: bench/race_ev.c $(RACE_DEPS)
	@mkdir -p $(BENCH_DIR)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/race.c bench/race_ev.c $(call bench_libs,libevent,-levent)

$(BENCH_DIR)/race-hiredis: bench/race_hiredis.c $(RACE_DEPS)
	@mkdir -p $(BENCH_DIR)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/race.c bench/race_hiredis.c $(call bench_libs,hiredis libevent,-lhiredis -levent)

# kacat (demo/kacat.c) at -O2 for its peak RSS, if present.
bench-kacat: $(BENCH_DIR)/ka_client-O2.o
	@if [ -f demo/kacat.c ]; then \
		$(CC) $(WARN) -O2 -I. -o $(BENCH_DIR)/kacat demo/kacat.c $(BENCH_DIR)/ka_client-O2.o \
		|| { rm -f $(BENCH_DIR)/kacat; echo "bench: demo/kacat.c did not build; no kacat RSS"; }; \
	else rm -f $(BENCH_DIR)/kacat; fi

bench-deps:
	@sh test/deps.sh $(BENCH_PKGS) || echo "bench: some packages did not install; those parts will say so"

# A peer whose library is missing does not stop the bench: its column says
# "not built" and the reason is in the build output above it. The trace
# borrows the lab's frame relay (mk/lab.mk) for its 20 ms each way.
bench-build: $(BENCH_PROGS) $(BENCH_DIR)/ka_client-Os.o test/lab/lab_relay
	@for p in $(BENCH_PEERS); do $(MAKE) --no-print-directory $$p || echo "bench: $$p not built"; done
	@$(MAKE) --no-print-directory bench-kacat || true
	@$(MAKE) --no-print-directory $(TLS_DIR)/tls_bench || echo "bench: the TLS bench not built (its rows will say so)"

bench: bench-deps
	@$(MAKE) --no-print-directory bench-build
	@bash bench/run.sh

.PHONY: bench bench-deps bench-build bench-kacat
