/* race_ev.c: libevent, a socket bufferevent per connection, evtimer for
 * the reconnect delay, one event_base. Keepalive through setsockopt on
 * bufferevent_getfd(): libevent 2.1 has no keepalive call of its own. */
#include <sys/types.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "race.h"

const char race_name[] = "libevent";
const char race_keepalive_note[] =
    "off by default and no API for it in 2.1: setsockopt on bufferevent_getfd() gives every knob, whole seconds";

const char *race_version(void) { return event_get_version(); }

#define BULK_QUEUE (256 * 1024)
#define CHUNK (64 * 1024)

static struct event_base *base;
static struct sockaddr_storage dest;
static unsigned destlen;

static struct {
    struct event *timer;
    char msg[CHUNK];
    size_t size;
    long n, done;
    long long t0, t_end, due, *late, sent, bytes;
    int delay_ms, failed, tight, nconnected;
} E;

static void fail(void)
{
    E.failed = 1;
    event_base_loopbreak(base);
}

static int setup(const char *host, int port)
{
    if (!base) base = event_base_new();
    return base ? race_addr(host, port, &dest, &destlen) : -1;
}

static void keepalive(struct bufferevent *bev, int idle_s, int intvl_s, int cnt)
{
    race_set_keepalive((int)bufferevent_getfd(bev), idle_s, intvl_s, cnt);
}

static struct bufferevent *dial(bufferevent_data_cb rd, bufferevent_data_cb wr, bufferevent_event_cb ev)
{
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) return NULL;
    bufferevent_setcb(bev, rd, wr, ev, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(bev, (struct sockaddr *)&dest, (int)destlen) != 0) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

static int is_connected(struct bufferevent *bev, short what)
{
    if (what & BEV_EVENT_CONNECTED) return 1;
    bufferevent_free(bev);
    fail();
    return 0;
}

/* ---- round trips ---- */

static void rtt_read(struct bufferevent *bev, void *u)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    (void)u;
    if (evbuffer_get_length(in) < E.size) return;
    evbuffer_drain(in, E.size);
    if (++E.done == E.n) {
        E.t_end = race_now_us();
        bufferevent_free(bev);
        return;
    }
    bufferevent_write(bev, E.msg, E.size);
}

static void rtt_event(struct bufferevent *bev, short what, void *u)
{
    (void)u;
    if (!is_connected(bev, what)) return;
    keepalive(bev, RACE_KEEPALIVE_IDLE_S, RACE_KEEPALIVE_INTVL_S, RACE_KEEPALIVE_CNT);
    E.t0 = race_now_us();
    bufferevent_write(bev, E.msg, E.size);
}

int race_rtt(const char *host, int port, size_t size, long n, double *us)
{
    if (setup(host, port) != 0 || size > sizeof E.msg) return -1;
    memset(E.msg, 'p', size);
    E.size = size;
    E.n = n;
    if (!dial(rtt_read, NULL, rtt_event)) return -1;
    event_base_dispatch(base);
    *us = (double)(E.t_end - E.t0) / (double)n;
    return E.failed || E.done != n ? -1 : 0;
}

/* ---- bulk: refill to 256 KiB whenever 64 KiB of room opens ---- */

static void bulk_write(struct bufferevent *bev, void *u)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    (void)u;
    while (E.sent < E.bytes && evbuffer_get_length(out) + CHUNK <= BULK_QUEUE) {
        size_t n = E.bytes - E.sent < CHUNK ? (size_t)(E.bytes - E.sent) : CHUNK;
        bufferevent_write(bev, E.msg, n);
        E.sent += (long long)n;
    }
    /* all handed over and flushed: FIN, then wait for the server's close */
    if (E.sent == E.bytes && evbuffer_get_length(out) == 0) shutdown((int)bufferevent_getfd(bev), SHUT_WR);
}

static void bulk_event(struct bufferevent *bev, short what, void *u)
{
    (void)u;
    if (what & BEV_EVENT_CONNECTED) {
        keepalive(bev, RACE_KEEPALIVE_IDLE_S, RACE_KEEPALIVE_INTVL_S, RACE_KEEPALIVE_CNT);
        printf("INFO libevent: at most %ld bytes per write\n", (long)bufferevent_get_max_single_write(bev));
        E.t0 = race_now_us();
        bufferevent_setwatermark(bev, EV_WRITE, BULK_QUEUE - CHUNK, 0);
        bulk_write(bev, NULL);
        return;
    }
    if (what & BEV_EVENT_EOF) E.t_end = race_now_us();
    else E.failed = 1;
    bufferevent_free(bev);
}

int race_bulk(const char *host, int port, long long bytes, double *secs)
{
    if (setup(host, port) != 0) return -1;
    memset(E.msg, 'z', sizeof E.msg);
    E.bytes = bytes;
    if (!dial(NULL, bulk_write, bulk_event)) return -1;
    event_base_dispatch(base);
    *secs = (double)(E.t_end - E.t0) / 1e6;
    return E.failed || !E.t_end ? -1 : 0;
}

/* ---- idle clients ---- */

static void hold_event(struct bufferevent *bev, short what, void *u)
{
    (void)u;
    if (!is_connected(bev, what)) return;
    keepalive(bev, RACE_KEEPALIVE_IDLE_S, RACE_KEEPALIVE_INTVL_S, RACE_KEEPALIVE_CNT);
    E.nconnected++;
}

int race_hold(const char *host, int port, int n, int all)
{
    int i, want;
    if (setup(host, port) != 0) return -1;
    want = E.nconnected + n;
    for (i = 0; i < n; i++) {
        if (!dial(NULL, NULL, hold_event)) return -1;
        while (!all && E.nconnected < want - n + i + 1 && !E.failed) event_base_loop(base, EVLOOP_ONCE);
    }
    while (E.nconnected < want && !E.failed) event_base_loop(base, EVLOOP_ONCE);
    return E.failed ? -1 : 0;
}

/* ---- reconnect: bufferevent_free, an evtimer, a new bufferevent ---- */

static void rc_event(struct bufferevent *bev, short what, void *u);

static void rc_timer(evutil_socket_t fd, short what, void *u)
{
    (void)fd; (void)what; (void)u;
    if (!dial(NULL, NULL, rc_event)) fail();
}

static void rc_event(struct bufferevent *bev, short what, void *u)
{
    struct timeval tv;
    (void)u;
    if (!is_connected(bev, what)) return;
    keepalive(bev, RACE_KEEPALIVE_IDLE_S, RACE_KEEPALIVE_INTVL_S, RACE_KEEPALIVE_CNT);
    if (E.due) E.late[E.done++] = race_now_us() - E.due;
    bufferevent_free(bev);
    if (E.done == E.n) return;
    E.due = race_now_us() + (long long)E.delay_ms * 1000;
    tv.tv_sec = E.delay_ms / 1000;
    tv.tv_usec = (E.delay_ms % 1000) * 1000;
    evtimer_add(E.timer, &tv);
}

int race_reconnect(const char *host, int port, int n, int delay_ms, long long *late_us)
{
    if (setup(host, port) != 0) return -1;
    E.n = n;
    E.delay_ms = delay_ms;
    E.late = late_us;
    E.timer = evtimer_new(base, rc_timer, NULL);
    if (!E.timer || !dial(NULL, NULL, rc_event)) return -1;
    event_base_dispatch(base);
    return E.failed || E.done != n ? -1 : 0;
}

/* ---- idle ---- */

int race_idle(const char *host, int port, int secs)
{
    struct timeval tv;
    if (race_hold(host, port, 1, 0) != 0) return -1;
    tv.tv_sec = secs;
    tv.tv_usec = 0;
    race_idle_begin();
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    race_idle_end();
    return 0;
}

/* ---- detect ---- */

static void det_read(struct bufferevent *bev, void *u)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    (void)u;
    evbuffer_drain(in, evbuffer_get_length(in));
    race_ready((int)bufferevent_getfd(bev));
}

static void det_event(struct bufferevent *bev, short what, void *u)
{
    (void)u;
    if (what & BEV_EVENT_CONNECTED) {
        if (E.tight) keepalive(bev, 1, 1, 1);
        bufferevent_write(bev, "hello\n", 6);
        return;
    }
    race_detected((what & BEV_EVENT_EOF) ? "end of file" : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    bufferevent_free(bev);
    event_base_loopbreak(base);
}

int race_detect(const char *host, int port, int tight, int bound_ms)
{
    struct timeval tv;
    if (setup(host, port) != 0) return -1;
    E.tight = tight;
    if (!dial(det_read, NULL, det_event)) return -1;
    tv.tv_sec = bound_ms / 1000;
    tv.tv_usec = (bound_ms % 1000) * 1000;
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    return E.failed ? -1 : 0;
}
