/* race_hiredis.c: hiredis, the blocking redisContext for round trips,
 * idle clients and reconnects (redisReconnect), the async context on
 * hiredis' own libevent adapter where a loop has to notice things (idle,
 * detection).
 *
 * It talks to the same echo server as everyone else: "PING <payload>" goes
 * out as a RESP array, and the echo of a RESP array is a valid RESP array
 * reply, parsed by hiredis' own reader. The request on the wire is the
 * payload plus 22 to 23 bytes of framing. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "race.h"

const char race_name[] = "hiredis";
const char race_keepalive_note[] =
    "off by default; redisEnableKeepAlive() is the public call and fixes idle 15 s, interval 5 s, 3 probes";

#define STR2(x) #x
#define STR(x) STR2(x)
const char *race_version(void) { return STR(HIREDIS_MAJOR) "." STR(HIREDIS_MINOR) "." STR(HIREDIS_PATCH); }

static redisContext *dial(const char *host, int port)
{
    redisContext *c = redisConnect(host, port);
    if (!c || c->err) { redisFree(c); return NULL; }
    if (redisEnableKeepAlive(c) != REDIS_OK) { redisFree(c); return NULL; }
    return c;
}

static int ping(redisContext *c, const char *msg, size_t size)
{
    redisReply *r = redisCommand(c, "PING %b", msg, size);
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->len == size;
    freeReplyObject(r);
    return ok ? 0 : -1;
}

int race_rtt(const char *host, int port, size_t size, long n, double *us)
{
    static char msg[65536];
    redisContext *c = dial(host, port);
    long i;
    long long t0;
    if (!c || size > sizeof msg) return -1;
    memset(msg, 'p', size);
    t0 = race_now_us();
    for (i = 0; i < n; i++)
        if (ping(c, msg, size) != 0) break;
    *us = (double)(race_now_us() - t0) / (double)n;
    redisFree(c);
    return i == n ? 0 : -1;
}

int race_bulk(const char *host, int port, long long bytes, double *secs)
{
    /* a request/reply client: it has no call that streams bytes one way */
    (void)host; (void)port; (void)bytes; (void)secs;
    return RACE_NA;
}

int race_hold(const char *host, int port, int n, int all)
{
    int i;
    (void)all;                  /* redisConnect blocks: one at a time */
    for (i = 0; i < n; i++)
        if (!dial(host, port)) return -1;
    return 0;
}

/* hiredis has no timer: the delay is the application's poll(), the
 * reconnect is redisReconnect (which closes the old socket first) */
int race_reconnect(const char *host, int port, int n, int delay_ms, long long *late_us)
{
    redisContext *c = dial(host, port);
    int i;
    if (!c) return -1;
    for (i = 0; i < n; i++) {
        long long due = race_now_us() + (long long)delay_ms * 1000;
        poll(NULL, 0, delay_ms);
        if (redisReconnect(c) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) break;
        late_us[i] = race_now_us() - due;
    }
    redisFree(c);
    return i == n ? 0 : -1;
}

/* ---- the async context on libevent ---- */

static struct event_base *base;
static int connected, tight;

static void on_connect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    if (status == REDIS_OK) connected = 1;
    else event_base_loopbreak(base);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    race_detected(status == REDIS_OK ? "closed" : ac->c.errstr);
    event_base_loopbreak(base);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    if (reply) race_ready(ac->c.fd);
}

static redisAsyncContext *dial_async(const char *host, int port)
{
    redisAsyncContext *ac;
    base = event_base_new();
    ac = base ? redisAsyncConnect(host, port) : NULL;
    if (!ac || ac->err) return NULL;
    redisLibeventAttach(ac, base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

int race_idle(const char *host, int port, int secs)
{
    struct timeval tv;
    redisAsyncContext *ac = dial_async(host, port);
    if (!ac) return -1;
    redisEnableKeepAlive(&ac->c);
    while (!connected) if (event_base_loop(base, EVLOOP_ONCE) != 0) return -1;
    tv.tv_sec = secs;
    tv.tv_usec = 0;
    race_idle_begin();
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    race_idle_end();
    return 0;
}

int race_detect(const char *host, int port, int tight_, int bound_ms)
{
    struct timeval tv;
    redisAsyncContext *ac = dial_async(host, port);
    if (!ac) return -1;
    tight = tight_;
    if (tight) redisEnableKeepAlive(&ac->c);
    redisAsyncCommand(ac, on_reply, NULL, "PING");
    tv.tv_sec = bound_ms / 1000;
    tv.tv_usec = (bound_ms % 1000) * 1000;
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    return 0;
}
