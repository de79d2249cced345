/* Soak: many connect/reset cycles on loopback must not leak a
 * descriptor or grow memory. KA_SOAK_CYCLES sets the count (default 10000;
 * the valgrind and sanitizer suites run fewer and check leaks instead of
 * RSS, since their allocators keep freed memory on purpose).
 *
 * Each cycle: the client connects, the peer accepts and resets (RST), the
 * client sees PEER_RESET and goes straight back (zero backoff). Every 100th
 * cycle frees the client and makes a new one, every 7th the client ends the
 * connection itself, so allocation and local close paths are soaked too.
 * Every 50th starts with a burst that fills the send queue (the kernel's
 * buffers first when connected), so the queue's memory grows to its bound
 * and must come back down: RSS stays flat across bursts, not just idle. */
#ifndef _WIN32
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testlib.h"

#ifdef __linux__
static long rss_kib(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
    fclose(f);
    return res < 0 ? -1 : res * 4;          /* pages of 4 KiB */
}
#else
static long rss_kib(void) { return -1; }
#endif

static int cycles(void)
{
    const char *s = getenv("KA_SOAK_CYCLES");
    int n = s ? atoi(s) : 10000;
    return n > 0 ? n : 10000;
}

static int under_a_tool(void)
{
    return getenv("ASAN_OPTIONS") != NULL || getenv("KA_SOAK_NO_RSS") != NULL || getenv("LD_PRELOAD") != NULL;
}

/* Sends 1 KiB messages until the client takes no more (at most 4 MiB);
 * returns the most the client's queues have held. */
static unsigned long long burst(ka_client *c)
{
    static const char msg[1024];
    ka_stats st;
    int i;
    for (i = 0; i < 4096 && ka_client_send(c, msg, sizeof msg) == 0; i++) { }
    st.size = sizeof st;
    return ka_client_stats(c, &st) == 0 ? st.queue_high_water : 0;
}

static int new_client(ka_client **c, const char *port, t_rec *rec)
{
    ka_config k;
    t_config(&k, "127.0.0.1", port, rec);
    k.backoff_initial_ms = 1;               /* straight back (1 ms is the least): a cycle is pure connect/reset */
    k.backoff_max_ms = 1;
    k.cb.on_log = NULL;
    if (ka_client_new(c, &k) != 0) return -1;
    return ka_client_start(*c);
}

/* A connection the freed client made in its last retry but that was never
 * accepted still waits in the listener's queue; accepted by the next cycle
 * it would be taken for the new client's and reset in its place (seen under
 * valgrind: a cycle that never saw its reset). */
static void drain_backlog(ka_socket l)
{
    ka_socket p;
    while ((p = t_accept(l, NULL, 20)) != KA_INVALID_SOCKET) t_reset(p);
}

/* One cycle; 0 when the client connected, the peer reset it and the client
 * saw it. */
static int cycle(ka_client *c, ka_socket l, t_rec *rec, int local)
{
    int want = rec->connects + 1;
    ka_socket p = t_accept(l, c, 3000);
    if (p == KA_INVALID_SOCKET) return -1;
    if (t_poll_until(c, &rec->connects, want, 3000) != 0) { t_reset(p); return -2; }
    if (local) {
        ka_client_disconnect(c);
        t_reset(p);
        return rec->last_di.reason == KA_REASON_LOCAL ? 0 : -3;
    }
    t_reset(p);
    if (t_poll_until(c, &rec->disconnects, want, 3000) != 0) return -4;
    return rec->last_di.reason == KA_REASON_PEER_RESET ? 0 : -5;
}

static void connect_reset_cycles_leak_nothing(void)
{
    ka_client *c = NULL;
    t_rec rec;
    char port[16];
    ka_socket l = t_listen("127.0.0.1", port, sizeof port);
    int n = cycles(), i, rc = 0, warm = n / 10 < 100 ? n / 10 : 100;
    long fd0 = 0, fd1, rss0 = 0, rss1;
    unsigned long long high = 0, h;
    unsigned long long t0 = t_now_ms();
    CHECK(l != KA_INVALID_SOCKET);
    fd0 = t_open_fds();                     /* the listener, stdio, the harness: no client yet */
    CHECK(new_client(&c, port, &rec) == 0);
    for (i = 0; i < n && rc == 0; i++) {
        if (i == warm) rss0 = rss_kib();      /* after libc's first-use allocations */
        if (i % 50 == 25 && (h = burst(c)) > high) high = h;
        rc = cycle(c, l, &rec, i % 7 == 6);
        if (rc == 0 && i % 100 == 99) {        /* between connections: nothing left in the backlog */
            ka_client_free(c);
            c = NULL;
            drain_backlog(l);
            rc = new_client(&c, port, &rec);
        }
    }
    ka_client_free(c);
    fd1 = t_open_fds();
    rss1 = rss_kib();
    t_close(l);
    printf("    %d cycles in %llu ms: open fds %ld -> %ld, RSS %ld -> %ld KiB; bursts filled the queue to %llu bytes\n",
           i, t_now_ms() - t0, fd0, fd1, rss0, rss1, high);
    if (rc != 0) printf("    cycle %d failed with %d\n", i - 1, rc);
    CHECK_EQ(rc, 0);
    CHECK_EQ(i, n);
    CHECK_EQ(fd1, fd0);
    if (under_a_tool()) { printf("    RSS not judged under a sanitizer/valgrind\n"); return; }
    CHECK(rss1 <= rss0 + 512);              /* 512 KiB: malloc arena noise, not a per-cycle leak */
}

static const t_case cases[] = {
    { "connect/reset cycles leak no descriptor and no memory", connect_reset_cycles_leak_nothing },
};

int main(int argc, char **argv)
{
    return t_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
