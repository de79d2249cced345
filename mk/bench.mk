# make bench (issue 6): detection and reconnect latency, throughput, idle
# cost, footprint. Not part of `make test` / `make check`. Builds with -O2
# into build/bench/, runs bench/run.sh (root for the namespace lab; without
# it those rows are skipped), prints one table and writes BENCHMARKS.md.
# BENCH_QUICK=1 make bench: small sizes, writes build/bench/BENCHMARKS.quick.md.
# BENCH_ONLY="loopback ..." make bench: only those parts (lab, reconnect,
# loopback, storm), writes build/bench/BENCHMARKS.only.md.

BENCH_DIR    = build/bench
BENCH_CFLAGS = $(WARN) -Werror -O2 -I.
BENCH_PROGS  = $(BENCH_DIR)/kabench $(BENCH_DIR)/kaalloc
CLEAN       += $(BENCH_PROGS) $(BENCH_DIR)/kacat \
               $(BENCH_DIR)/ka_client-O2.o $(BENCH_DIR)/ka_client-Os.o \
               $(BENCH_DIR)/*.txt $(BENCH_DIR)/*.out $(BENCH_DIR)/table.md \
               $(BENCH_DIR)/BENCHMARKS.quick.md $(BENCH_DIR)/BENCHMARKS.only.md \
               $(BENCH_DIR)/lab/*.out

$(BENCH_DIR)/ka_client-O2.o: ka_client.c ka_client.h
	@mkdir -p $(BENCH_DIR)
	$(CC) $(WARN) -O2 -c ka_client.c -o $@

$(BENCH_DIR)/ka_client-Os.o: ka_client.c ka_client.h
	@mkdir -p $(BENCH_DIR)
	$(CC) $(WARN) -Os -c ka_client.c -o $@

$(BENCH_DIR)/kabench: bench/kabench.c $(BENCH_DIR)/ka_client-O2.o
	$(CC) $(BENCH_CFLAGS) -D_GNU_SOURCE -o $@ bench/kabench.c $(BENCH_DIR)/ka_client-O2.o -lpthread

# Allocation counting: --wrap catches ka_client.o's own malloc calls; the
# malloc defined in kaalloc.c catches everything else, libc's included.
$(BENCH_DIR)/kaalloc: bench/kaalloc.c $(BENCH_DIR)/ka_client-O2.o
	$(CC) $(BENCH_CFLAGS) -D_GNU_SOURCE -o $@ bench/kaalloc.c $(BENCH_DIR)/ka_client-O2.o \
		-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free

# kacat (demo/kacat.c, another issue's) at -O2 for its peak RSS, if present.
bench-kacat: $(BENCH_DIR)/ka_client-O2.o
	@if [ -f demo/kacat.c ]; then \
		$(CC) $(WARN) -O2 -I. -o $(BENCH_DIR)/kacat demo/kacat.c $(BENCH_DIR)/ka_client-O2.o \
		|| { rm -f $(BENCH_DIR)/kacat; echo "bench: demo/kacat.c did not build; no kacat RSS"; }; \
	else rm -f $(BENCH_DIR)/kacat; fi

bench: $(BENCH_PROGS) $(BENCH_DIR)/ka_client-Os.o
	@$(MAKE) --no-print-directory bench-kacat || true
	@bash bench/run.sh

.PHONY: bench bench-kacat
