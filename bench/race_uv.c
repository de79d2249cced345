/* race_uv.c: libuv, uv_tcp_t with uv_read_start, uv_write and uv_timer,
 * one default loop, the way libuv's own examples write a client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "race.h"

const char race_name[] = "libuv";
const char race_keepalive_note[] =
    "off by default; uv_tcp_keepalive(handle, 1, delay) takes only the idle time (whole seconds) and picks interval and count itself";

const char *race_version(void) { return uv_version_string(); }

static uv_loop_t *loop;
static struct sockaddr_storage dest;

static struct {
    uv_tcp_t *tcp;
    uv_connect_t creq;
    uv_write_t wreq[8];      /* a write's callback always runs before its echo arrives */
    unsigned nw;
    uv_shutdown_t sreq;
    uv_timer_t timer;
    char msg[65536];
    size_t size, got;
    long n, done;
    long long t0, t_end, due, *late;
    int delay_ms, failed, detect, tight, nconnected, outstanding;
    long long sent, bytes;
} U;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[65536];
    (void)h; (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_closed(uv_handle_t *h) { free(h); }

static void fail(void)
{
    U.failed = 1;
    uv_stop(loop);
}

static int setup(const char *host, int port)
{
    unsigned len;
    loop = uv_default_loop();
    return race_addr(host, port, &dest, &len);
}

/* A new handle, connecting to dest; cb runs once it is connected. */
static int dial(uv_connect_cb cb)
{
    uv_tcp_t *t = malloc(sizeof *t);
    uv_connect_t *req = t ? malloc(sizeof *req) : NULL;
    if (!req) { free(t); return -1; }
    uv_tcp_init(loop, t);
    t->data = NULL;
    req->data = t;
    return uv_tcp_connect(req, t, (const struct sockaddr *)&dest, cb);
}

static void write_msg(uv_stream_t *s, char *p, size_t n, uv_write_cb cb)
{
    uv_buf_t b = uv_buf_init(p, (unsigned)n);
    uv_write(&U.wreq[U.nw++ % 8], s, &b, 1, cb);
}

/* ---- round trips ---- */

static void rtt_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0) { fail(); return; }
    U.got += (size_t)nread;
    if (U.got < U.size) return;
    U.got = 0;
    if (++U.done == U.n) {
        U.t_end = race_now_us();
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    write_msg(s, U.msg, U.size, NULL);
}

static void rtt_connected(uv_connect_t *req, int status)
{
    uv_stream_t *s = req->handle;
    free(req);
    if (status != 0) { fail(); return; }
    uv_tcp_keepalive((uv_tcp_t *)s, 1, RACE_KEEPALIVE_IDLE_S);
    uv_read_start(s, on_alloc, rtt_read);
    U.t0 = race_now_us();
    write_msg(s, U.msg, U.size, NULL);
}

int race_rtt(const char *host, int port, size_t size, long n, double *us)
{
    if (setup(host, port) != 0 || size > sizeof U.msg) return -1;
    memset(U.msg, 'p', size);
    U.size = size;
    U.n = n;
    if (dial(rtt_connected) != 0) return -1;
    uv_run(loop, UV_RUN_DEFAULT);
    *us = (double)(U.t_end - U.t0) / (double)n;
    return U.failed || U.done != n ? -1 : 0;
}

/* ---- bulk: at most 256 KiB queued in libuv at a time ---- */

static void bulk_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread >= 0) return;
    if (nread == UV_EOF) U.t_end = race_now_us();
    else fail();
    uv_close((uv_handle_t *)s, on_closed);
}

static void bulk_more(uv_stream_t *s);

static void bulk_written(uv_write_t *req, int status)
{
    U.outstanding--;
    if (status != 0) { fail(); return; }
    bulk_more(req->handle);
}

static void bulk_more(uv_stream_t *s)
{
    while (U.outstanding < 4 && U.sent < U.bytes) {
        size_t n = U.bytes - U.sent < (long long)sizeof U.msg ? (size_t)(U.bytes - U.sent) : sizeof U.msg;
        U.outstanding++;
        U.sent += (long long)n;
        write_msg(s, U.msg, n, bulk_written);
    }
    if (U.outstanding == 0 && U.sent == U.bytes) uv_shutdown(&U.sreq, s, NULL);
}

static void bulk_connected(uv_connect_t *req, int status)
{
    uv_stream_t *s = req->handle;
    free(req);
    if (status != 0) { fail(); return; }
    uv_tcp_keepalive((uv_tcp_t *)s, 1, RACE_KEEPALIVE_IDLE_S);
    uv_read_start(s, on_alloc, bulk_read);
    U.t0 = race_now_us();
    bulk_more(s);
}

int race_bulk(const char *host, int port, long long bytes, double *secs)
{
    if (setup(host, port) != 0) return -1;
    memset(U.msg, 'z', sizeof U.msg);
    U.bytes = bytes;
    if (dial(bulk_connected) != 0) return -1;
    uv_run(loop, UV_RUN_DEFAULT);
    *secs = (double)(U.t_end - U.t0) / 1e6;
    return U.failed || !U.t_end ? -1 : 0;
}

/* ---- idle clients ---- */

static void hold_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)s; (void)nread; (void)buf;
}

static void hold_connected(uv_connect_t *req, int status)
{
    uv_stream_t *s = req->handle;
    free(req);
    if (status != 0) { fail(); return; }
    uv_tcp_keepalive((uv_tcp_t *)s, 1, RACE_KEEPALIVE_IDLE_S);
    uv_read_start(s, on_alloc, hold_read);
    U.nconnected++;
}

int race_hold(const char *host, int port, int n, int all)
{
    int i, want;
    if (setup(host, port) != 0) return -1;
    want = U.nconnected + n;
    for (i = 0; i < n; i++) {
        if (dial(hold_connected) != 0) return -1;
        while (!all && U.nconnected < want - n + i + 1 && !U.failed) uv_run(loop, UV_RUN_ONCE);
    }
    while (U.nconnected < want && !U.failed) uv_run(loop, UV_RUN_ONCE);
    return U.failed ? -1 : 0;
}

/* ---- reconnect: uv_close, a uv_timer, uv_tcp_connect ---- */

static void rc_connected(uv_connect_t *req, int status);

static void rc_timer(uv_timer_t *t)
{
    (void)t;
    if (dial(rc_connected) != 0) fail();
}

static void rc_cycle(uv_stream_t *s)
{
    U.due = race_now_us() + (long long)U.delay_ms * 1000;
    uv_close((uv_handle_t *)s, on_closed);
    uv_timer_start(&U.timer, rc_timer, (uint64_t)U.delay_ms, 0);
}

static void rc_connected(uv_connect_t *req, int status)
{
    uv_stream_t *s = req->handle;
    free(req);
    if (status != 0) { fail(); return; }
    uv_tcp_keepalive((uv_tcp_t *)s, 1, RACE_KEEPALIVE_IDLE_S);
    uv_read_start(s, on_alloc, hold_read);
    if (U.due) U.late[U.done++] = race_now_us() - U.due;
    if (U.done < U.n) { rc_cycle(s); return; }
    uv_close((uv_handle_t *)s, on_closed);
    uv_close((uv_handle_t *)&U.timer, NULL);
}

int race_reconnect(const char *host, int port, int n, int delay_ms, long long *late_us)
{
    if (setup(host, port) != 0) return -1;
    U.n = n;
    U.delay_ms = delay_ms;
    U.late = late_us;
    uv_timer_init(loop, &U.timer);
    if (dial(rc_connected) != 0) return -1;
    uv_run(loop, UV_RUN_DEFAULT);
    return U.failed || U.done != n ? -1 : 0;
}

/* ---- idle: one connection, the loop alone for secs ---- */

static void idle_over(uv_timer_t *t)
{
    (void)t;
    uv_stop(loop);
}

int race_idle(const char *host, int port, int secs)
{
    if (race_hold(host, port, 1, 0) != 0) return -1;
    uv_timer_init(loop, &U.timer);
    race_idle_begin();
    uv_timer_start(&U.timer, idle_over, (uint64_t)secs * 1000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    race_idle_end();
    return 0;
}

/* ---- detect ---- */

static void det_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    uv_os_fd_t fd;
    (void)buf;
    if (nread > 0) {
        if (uv_fileno((uv_handle_t *)s, &fd) == 0) race_ready(fd);
        return;
    }
    if (nread == 0) return;
    race_detected(uv_strerror((int)nread));
    uv_stop(loop);
}

static void det_connected(uv_connect_t *req, int status)
{
    uv_stream_t *s = req->handle;
    free(req);
    if (status != 0) { fail(); return; }
    if (U.tight) uv_tcp_keepalive((uv_tcp_t *)s, 1, 1);   /* the delay is whole seconds, 1 the least */
    uv_read_start(s, on_alloc, det_read);
    write_msg(s, "hello\n", 6, NULL);
}

int race_detect(const char *host, int port, int tight, int bound_ms)
{
    if (setup(host, port) != 0) return -1;
    U.tight = tight;
    uv_timer_init(loop, &U.timer);
    uv_timer_start(&U.timer, idle_over, (uint64_t)bound_ms, 0);
    if (dial(det_connected) != 0) return -1;
    uv_run(loop, UV_RUN_DEFAULT);
    return U.failed ? -1 : 0;
}
