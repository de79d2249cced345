/* lab_stress: start and stop clients while their name lookups hang.
 *
 * Meant for the lab's client namespace with a resolver that never answers
 * (its queries are dropped), so that every lookup the library starts sits on
 * its helper thread until glibc's own resolver timeout. Two modes:
 *   restart  one client, ka_client_start / ka_client_stop CYCLES times: a
 *            stopped lookup is abandoned, and the next start of the same
 *            name joins it, so threads must not pile up
 *   fresh    ka_client_new / start / stop / free CYCLES times: each client
 *            has its own lookup, which outlives it and frees itself
 * Each cycle also runs one ka_client_process with nothing ready, and may
 * pause -P ms (outside any call): paced, the restart cycles outlast
 * several lookups, so that new ones start while old ones end. Every
 * library call is timed; none may hold the thread long (a lookup in the
 * caller's thread would hold it for the resolver's timeout). Threads
 * (/proc/self/task) and descriptors (/proc/self/fd) are counted before the
 * cycles, at their peak (sampled every few cycles) and afterwards, waiting
 * up to -W ms for both to come back down to where they were.
 *
 * Output: one line per mode, "<monotonic ms> stress mode=... key=value ...",
 * then "N passed, N failed, N skipped" (a mode passes when its counts came
 * back and no call held the thread -M ms or longer). Exit status 0 when all
 * passed. Linux only (/proc). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/resource.h>
#include <pthread.h>

#include "ka_client.h"
#include "testlib.h"

#define SAMPLE_EVERY 10         /* cycles between two counts of threads and descriptors */

static unsigned long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000u + (unsigned long long)ts.tv_nsec / 1000u;
}

/* Entries of a /proc/self directory, without "." and "..". */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int threads_now(void) { return count_entries("/proc/self/task"); }
static int fds_now(void) { return count_entries("/proc/self/fd") - 1; }   /* less opendir's own */

/* The longest call of each kind. */
enum { CALL_NEW, CALL_START, CALL_PROCESS, CALL_STOP, CALL_FREE, NCALLS };
static const char *const call_name[NCALLS] = { "new", "start", "process", "stop", "free" };
static unsigned long long call_max[NCALLS], call_t0;

static void call_begin(void) { call_t0 = now_us(); }
static void call_end(int k)
{
    unsigned long long d = now_us() - call_t0;
    if (d > call_max[k]) call_max[k] = d;
}

struct tally { int base_threads, base_fds, peak_threads, peak_fds, end_threads, end_fds; };

static void sample(struct tally *t)
{
    int th = threads_now(), fd = fds_now();
    if (th > t->peak_threads) t->peak_threads = th;
    if (fd > t->peak_fds) t->peak_fds = fd;
}

/* One cycle's work after start: a process round with nothing ready (the
 * lookup's signal cannot have fired: the resolver never answers). */
static void one_round(ka_client *c)
{
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    call_begin();
    ka_client_process(c, &rd, &wr);
    call_end(CALL_PROCESS);
}

/* Returns the number of failed calls. */
static unsigned run_cycles(const ka_config *cfg, int fresh, unsigned cycles, unsigned pause_ms, struct tally *t)
{
    ka_client *c = NULL;
    unsigned i, bad = 0;
    if (!fresh && ka_client_new(&c, cfg) != KA_OK) return cycles;
    for (i = 0; i < cycles; i++) {
        if (fresh) {
            call_begin();
            if (ka_client_new(&c, cfg) != KA_OK) c = NULL;
            call_end(CALL_NEW);
            if (!c) { bad++; continue; }
        }
        call_begin();
        if (ka_client_start(c) != KA_OK) bad++;
        call_end(CALL_START);
        one_round(c);
        if (i % SAMPLE_EVERY == 0) sample(t);
        call_begin();
        ka_client_stop(c);
        call_end(CALL_STOP);
        if (pause_ms) t_sleep_ms((int)pause_ms);
        if (fresh) {
            call_begin();
            ka_client_free(c);
            call_end(CALL_FREE);
            c = NULL;
        }
    }
    sample(t);
    if (c) {
        call_begin();
        ka_client_free(c);
        call_end(CALL_FREE);
    }
    return bad;
}

/* Waits (bounded) for threads and descriptors to come back to the
 * baseline; returns how long it took, or -1 if they did not. */
static long settle(struct tally *t, unsigned wait_ms)
{
    unsigned long long t0 = t_now_ms();
    for (;;) {
        t->end_threads = threads_now();
        t->end_fds = fds_now();
        if (t->end_threads <= t->base_threads && t->end_fds <= t->base_fds) return (long)(t_now_ms() - t0);
        if (t_now_ms() - t0 >= wait_ms) return -1;
        t_sleep_ms(20);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: lab_stress -h HOST -p PORT [-n cycles] [-m restart|fresh|both]\n"
                    "                  [-P pause_ms] [-W settle_ms] [-M max_call_ms]\n");
    exit(2);
}

/* One thread started and joined before the first count: ThreadSanitizer's
 * runtime starts a helper thread of its own with the program's first
 * thread, which would otherwise look like a lookup thread left behind. */
static void *nothing(void *arg) { return arg; }
static void warm_up_threads(void)
{
    pthread_t th;
    if (pthread_create(&th, NULL, nothing, NULL) == 0) pthread_join(th, NULL);
}

int main(int argc, char **argv)
{
    ka_config cfg;
    const char *mode = "both";
    unsigned cycles = 1000, wait_ms = 20000, max_call_ms = 50, pause_ms = 0;
    unsigned pass = 0, fail = 0;
    struct rlimit rl;
    int opt, m;

    ka_config_init(&cfg);
    while ((opt = getopt(argc, argv, "h:p:n:m:P:W:M:")) != -1) {
        switch (opt) {
        case 'h': cfg.host = optarg; break;
        case 'p': cfg.port = optarg; break;
        case 'n': cycles = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'm': mode = optarg; break;
        case 'W': wait_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'M': max_call_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'P': pause_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (!cfg.host || !cfg.port) usage();
    if (strcmp(mode, "restart") && strcmp(mode, "fresh") && strcmp(mode, "both")) usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_net_init();
    /* fresh mode may hold one thread, one resolver socket and one signal
     * pair per cycle at once: room for them, as far as the hard limit
     * allows. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    warm_up_threads();
    for (m = 0; m < 2; m++) {
        int fresh = m == 1;
        struct tally t;
        unsigned long long t0, max = 0;
        unsigned bad;
        long settled;
        int k, worst = 0;
        if (strcmp(mode, "both") && strcmp(mode, fresh ? "fresh" : "restart")) continue;
        memset(&t, 0, sizeof t);
        memset(call_max, 0, sizeof call_max);
        t.base_threads = t.peak_threads = threads_now();
        t.base_fds = t.peak_fds = fds_now();
        t0 = t_now_ms();
        bad = run_cycles(&cfg, fresh, cycles, pause_ms, &t);
        t0 = t_now_ms() - t0;
        settled = settle(&t, wait_ms);
        for (k = 0; k < NCALLS; k++)
            if (call_max[k] > max) { max = call_max[k]; worst = k; }
        printf("%llu stress mode=%s cycles=%u ms=%llu failed_calls=%u max_call_us=%llu max_call=%s "
               "threads=%d/%d/%d fds=%d/%d/%d settle_ms=%ld\n",
               t_now_ms(), fresh ? "fresh" : "restart", cycles, t0, bad, max, call_name[worst],
               t.base_threads, t.peak_threads, t.end_threads, t.base_fds, t.peak_fds, t.end_fds, settled);
        if (bad == 0 && settled >= 0 && max < (unsigned long long)max_call_ms * 1000u) pass++;
        else fail++;
    }
    printf("%u passed, %u failed, 0 skipped\n", pass, fail);
    return fail ? 1 : 0;
}
