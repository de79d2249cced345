/* race.h: one interface, five contenders, for the side-by-side part of
 * `make bench`.
 *
 * Each contender (race_raw.c, race_ka.c, race_uv.c, race_ev.c,
 * race_hiredis.c) implements the race_* functions below with its own
 * library, in that library's ordinary style, and is linked with race.c (the
 * driver: options, clocks, RSS, output) into its own program,
 * build/bench/race-NAME. One program per library, so that none of them pays
 * for another's code in its RSS or its system calls.
 *
 * Every contender talks to the same server (raceserv.c): an echo port and a
 * sink port. Every connection has TCP keepalive on, set through the
 * library's own API where it has one (RACE_KEEPALIVE_* below).
 *
 * A function returns 0, RACE_NA when the measurement does not apply to the
 * library (the driver prints why), or -1 on failure. */
#ifndef RACE_H
#define RACE_H

#include <stddef.h>

#define RACE_NA 1

/* The keepalive every loopback connection asks for, where the API can say
 * it: idle 5 s, interval 5 s, 3 probes (ka_client's defaults). */
#define RACE_KEEPALIVE_IDLE_S  5
#define RACE_KEEPALIVE_INTVL_S 5
#define RACE_KEEPALIVE_CNT     3

/* ---- what each contender provides ---- */

extern const char race_name[];                  /* "libuv", ... */
const char *race_version(void);                 /* the version linked in */
/* One line: what "out of the box" and "tightest" mean for this API. */
extern const char race_keepalive_note[];

/* n round trips of size bytes through the echo port; *us = µs per round
 * trip, timed from the first send to the last reply (connect excluded). */
int race_rtt(const char *host, int port, size_t size, long n, double *us);

/* bytes to the sink port in 64 KiB writes, then end the connection (FIN)
 * and wait for the server's close; *secs from the first write to that. */
int race_bulk(const char *host, int port, long long bytes, double *secs);

/* Connects n more clients to the echo port and returns when every one is
 * connected and idle; they stay open until the process ends. all = 0: one
 * at a time, each connected before the next starts; all = 1: every one
 * started, then all waited for together, so that whatever each holds
 * only while connecting is held by all of them at once (a blocking API
 * connects one at a time either way). */
int race_hold(const char *host, int port, int n, int all);

/* n cycles: disconnect at t0, reconnect meant for t0 + delay_ms through the
 * library's timer; late_us[i] = connected - (t0 + delay_ms). */
int race_reconnect(const char *host, int port, int n, int delay_ms, long long *late_us);

/* Connects, then sits idle in the library's loop for secs; calls
 * race_idle_begin() once connected and race_idle_end() when the loop
 * returns. The driver counts the process's voluntary context switches in
 * between: every time it slept and was woken. */
int race_idle(const char *host, int port, int secs);

/* Namespace lab: connect to host:port with keepalive out of the box
 * (tight = 0) or at the tightest the API allows (tight = 1), exchange one
 * message, call race_ready(fd) when its echo arrives, then wait up to
 * bound_ms for the library to report the connection dead and call
 * race_detected(what) when it does. */
int race_detect(const char *host, int port, int tight, int bound_ms);

/* ---- what the driver (race.c) provides ---- */

long long race_now_us(void);
void race_idle_begin(void);
void race_idle_end(void);
void race_ready(int fd);
void race_detected(const char *what);
/* Fills a sockaddr_in for host:port into buf (at least 16 bytes); 0 or -1. */
int race_addr(const char *host, int port, void *buf, unsigned *len);
/* setsockopt SO_KEEPALIVE and the three times, whole seconds; 0 or -1. */
int race_set_keepalive(int fd, int idle_s, int intvl_s, int cnt);

#endif
