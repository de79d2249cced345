/* libFuzzer target: one client against a scripted peer on loopback, in one
 * thread. The input is a small config header followed by moves, one byte
 * each (plus operands): the peer accepts, sends odd-sized data, reads part
 * of what it was sent, half-closes (FIN), closes, resets (RST) or stalls;
 * the application sends, disconnects, retries, stops, restarts, frees,
 * drives the client through poll / select / process_events; and each
 * callback runs its own little script of the same application calls.
 *
 * Checked beyond "no crash, no sanitizer report": on every connection the
 * client's on_data sees exactly the bytes the peer sent on it, in order; the
 * queue never exceeds its bound; the state is always a valid one; and no
 * descriptor outlives an input.
 *
 * Each input is bounded: at most MAX_MOVES moves, waits of at most a few
 * milliseconds, connect timeout 40 ms, backoff 0-3 ms. Build: make
 * build/harden/fuzz/fuzz_session */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include "testlib.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define MAX_MOVES 48
#define MAX_CB_ACTIONS 64

/* ---- the input ---- */

typedef struct rd { const uint8_t *p; size_t n, i; } rd;
static unsigned u8(rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static unsigned u16(rd *r) { unsigned v = u8(r); return v | u8(r) << 8; }

/* ---- the peer's byte stream, checked by on_data ---- */

static unsigned char pat(size_t i) { return (unsigned char)(((unsigned)i * 2654435761u) >> 24 ^ (unsigned)(i >> 8)); }

/* ---- everything about one input ---- */

enum { A_NONE, A_SEND, A_SEND_BIG, A_DISCONNECT, A_RETRY, A_STOP, A_FREE, A_PENDING, A_READY, A_ACK, A_N };

typedef struct fz {
    ka_client *c;
    int freed;                  /* ka_client_free ran from a callback */
    int depth;                  /* our own count of nested callbacks */
    ka_socket peer;
    size_t peer_sent;           /* bytes of pat() the peer sent on this connection */
    size_t cli_got;             /* bytes on_data saw on the client's current connection */
    unsigned char script[4][8]; /* per callback kind: actions, cycled */
    unsigned turn[4];
    int cb_actions;
    ka_config cfg;
    size_t msg_counter;
} fz;

static ka_socket g_listen = KA_INVALID_SOCKET;
static char g_port[16], g_dead_port[16];
static unsigned char g_buf[70000];
static union { unsigned long long a; void *p; unsigned char b[1 << 18]; } g_arena;

/* Which descriptors below 4096 are open, from /proc/self/fd; 0 if unknown.
 * The one opendir() itself uses is open in both snapshots, at the same
 * number, since everything else is the same. */
#define FD_BITS 4096
static int fd_snapshot(unsigned char *bits)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    memset(bits, 0, FD_BITS / 8);
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        long fd = strtol(e->d_name, NULL, 10);
        if (e->d_name[0] != '.' && fd >= 0 && fd < FD_BITS) bits[fd / 8] |= (unsigned char)(1u << (fd % 8));
    }
    closedir(d);
    return 1;
}

static void check_client(const fz *f)
{
    ka_state st;
    if (!f->c) return;
    st = ka_client_state(f->c);
    if ((unsigned)st > KA_STATE_STOPPED) abort();
    /* the backlog within its bound, plus the session queue's own room */
    if (ka_client_pending(f->c) + ka_client_unacked(f->c) > f->cfg.send_buffer_size + 4096) abort();
    if (ka_client_unacked(f->c) > f->cfg.send_buffer_size) abort();
}

/* One application call, from the top level or from a callback. */
static void app_call(fz *f, int action)
{
    ka_client *c = f->c;
    int rc;
    if (!c) return;
    switch (action) {
    case A_SEND: {
        size_t n = 1 + (f->msg_counter * 131) % 3000;
        memset(g_buf, (int)(f->msg_counter & 0xff), n);
        rc = ka_client_send(c, g_buf, n);
        if (rc != 0 && rc != KA_EAGAIN && rc != KA_ENOTCONN && rc != KA_ESTATE && rc != KA_EMSGSIZE) abort();
        if (rc == KA_EMSGSIZE && n <= f->cfg.send_buffer_size && !f->cfg.session_buffer_size && f->cfg.send_buffer_size <= 4096) abort();
        f->msg_counter++;
        break;
    }
    case A_SEND_BIG: {      /* bigger than either queue: the backlog's and the session's own room */
        size_t room = f->cfg.send_buffer_size > f->cfg.session_buffer_size ? f->cfg.send_buffer_size : f->cfg.session_buffer_size;
        rc = ka_client_send(c, g_buf, room + 1 <= sizeof g_buf ? room + 1 : sizeof g_buf);
        if (rc == 0 && room + 1 <= sizeof g_buf) abort();
        break;
    }
    case A_DISCONNECT: ka_client_disconnect(c); break;
    case A_RETRY:
        rc = ka_client_retry_now(c);
        if (rc != 0 && rc != KA_ESTATE) abort();
        break;
    case A_STOP: ka_client_stop(c); break;
    case A_FREE:
        if (f->depth > 0 && !f->freed) { ka_client_free(c); f->freed = 1; }
        break;
    case A_PENDING: (void)ka_client_pending(c); (void)ka_client_timeout_ms(c); (void)ka_client_want(c); break;
    case A_READY:
        rc = ka_client_ready(c);
        if (rc != 0 && rc != KA_ESTATE) abort();
        break;
    case A_ACK: {
        size_t k = ka_client_unacked_messages(c);
        rc = ka_client_ack(c, k ? 1 + f->msg_counter % k : 0);
        if (rc != 0 && !(rc == KA_ESTATE && !f->cfg.replay_until_acked)) abort();
        break;
    }
    default: break;
    }
}

static void cb_script(fz *f, int kind)
{
    int a;
    if (f->cb_actions >= MAX_CB_ACTIONS) return;
    f->cb_actions++;
    a = f->script[kind][f->turn[kind]++ % 8] % A_N;
    f->depth++;
    app_call(f, a);
    f->depth--;
}

static void on_connect(ka_client *c, void *u)
{
    fz *f = (fz *)u;
    (void)c;
    f->cli_got = 0;             /* a new connection: the peer's stream starts over */
    cb_script(f, 0);
}

static void on_data(ka_client *c, const void *d, size_t n, void *u)
{
    fz *f = (fz *)u;
    const unsigned char *p = (const unsigned char *)d;
    size_t i;
    (void)c;
    if (n == 0 || n > f->cfg.recv_buffer_size) abort();
    for (i = 0; i < n; i++)
        if (p[i] != pat(f->cli_got + i)) abort();       /* lost, reordered or invented byte */
    f->cli_got += n;
    cb_script(f, 1);
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *u)
{
    (void)c;
    if ((unsigned)di->reason > KA_REASON_ERROR || di->reason == KA_REASON_NONE) abort();
    cb_script((fz *)u, 2);
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *u)
{
    fz *f = (fz *)u;
    (void)c;
    if (ri->delay_ms > f->cfg.backoff_max_ms || ri->attempt == 0) abort();
    cb_script(f, 3);
}

static void on_give_up(ka_client *c, const ka_retry_info *ri, void *u)
{
    (void)c; (void)ri;
    if (ka_client_state(c) != KA_STATE_STOPPED) abort();
    cb_script((fz *)u, 3);
}

/* After every top-level call: a client freed from a callback is gone. */
static void settle(fz *f)
{
    if (f->freed) { f->c = NULL; f->freed = 0; }
    check_client(f);
}

static void new_client(fz *f, int no_heap)
{
    int rc;
    if (no_heap) {
        size_t need = ka_client_size(&f->cfg);
        if (need == 0 || need > sizeof g_arena.b) abort();
        rc = ka_client_init(&f->c, g_arena.b, need, &f->cfg);
    } else {
        rc = ka_client_new(&f->c, &f->cfg);
    }
    if (rc != 0) abort();
}

static void peer_close(fz *f, int rst)
{
    if (f->peer == KA_INVALID_SOCKET) return;
    if (rst) t_reset(f->peer);
    else t_close(f->peer);
    f->peer = KA_INVALID_SOCKET;
}

static void drive(fz *f, int how, int ms)
{
    if (!f->c) return;
    if (how == 0) {
        ka_client_poll(f->c, ms);
    } else if (how == 1) {
        fd_set rd, wr;
        struct timeval tv;
        int nfds;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        nfds = ka_client_fdset(f->c, &rd, &wr);
        if (nfds < 0) abort();
        tv.tv_sec = 0;
        tv.tv_usec = (long)ms * 1000;
        if (select(nfds, &rd, &wr, NULL, &tv) < 0) { FD_ZERO(&rd); FD_ZERO(&wr); }
        ka_client_process(f->c, &rd, &wr);
    } else {
        /* readiness the application claims, true or not */
        ka_client_process_events(f->c, ms & 3);
    }
    settle(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    g_listen = t_listen("127.0.0.1", g_port, sizeof g_port);
    if (g_listen == KA_INVALID_SOCKET || t_free_port(g_dead_port, sizeof g_dead_port) != 0) {
        fprintf(stderr, "fuzz_session: no loopback listener\n");
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    static const size_t sbuf[] = { 1, 7, 64, 4096, 65536 };
    static const size_t rbuf[] = { 1, 3, 16, 1000, 16384 };
    fz f;
    rd r;
    unsigned flags, moves, i, j;
    int no_heap;
    unsigned char fds_before[FD_BITS / 8], fds_after[FD_BITS / 8];
    int have_fds;
    r.p = data; r.n = n; r.i = 0;
    memset(&f, 0, sizeof f);
    f.peer = KA_INVALID_SOCKET;
    have_fds = fd_snapshot(fds_before);

    /* header: config and callback scripts */
    flags = u8(&r);
    t_config(&f.cfg, "127.0.0.1", (flags & 1) ? g_dead_port : g_port, NULL);
    f.cfg.cb.on_connect = on_connect;
    f.cfg.cb.on_data = on_data;
    f.cfg.cb.on_disconnect = on_disconnect;
    f.cfg.cb.on_retry = on_retry;
    f.cfg.cb.on_give_up = on_give_up;
    f.cfg.user = &f;
    f.cfg.connect_timeout_ms = 40;
    f.cfg.send_buffer_size = sbuf[u8(&r) % 5];
    f.cfg.recv_buffer_size = rbuf[u8(&r) % 5];
    f.cfg.backoff_initial_ms = 1 + u8(&r) % 3;
    f.cfg.backoff_max_ms = f.cfg.backoff_initial_ms + u8(&r) % 2;
    f.cfg.backoff_jitter = (flags & 2) ? 1.0 : 0.0;
    f.cfg.max_attempts = (flags & 4) ? 1 + u8(&r) % 3 : 0;
    f.cfg.backoff_reset_ms = (flags & 8) ? 0 : 5000;
    if (flags & 16) {
        f.cfg.heartbeat_interval_ms = 1 + u8(&r) % 4;
        f.cfg.heartbeat_data = "HB";
        f.cfg.heartbeat_len = 2;
        if (f.cfg.send_buffer_size < 2) f.cfg.send_buffer_size = 64;
    }
    if (flags & 32) f.cfg.idle_timeout_ms = 2 + u8(&r) % 20;
    {   /* the session flags */
        unsigned sess = u8(&r);
        f.cfg.hold_until_ready = (int)(sess & 1);
        f.cfg.replay_until_acked = (int)((sess >> 1) & 1);
        f.cfg.keep_writing_after_fin = (int)((sess >> 2) & 1);
        if (sess & 8) f.cfg.session_buffer_size = 1 + sess % 97;
    }
    no_heap = (flags & 64) != 0;
    for (i = 0; i < 4; i++) for (j = 0; j < 8; j++) f.script[i][j] = (unsigned char)u8(&r);
    /* callback scripts act only every few calls unless the input insists */
    if (!(flags & 128)) for (i = 0; i < 4; i++) for (j = 1; j < 8; j += 2) f.script[i][j] = A_NONE;

    new_client(&f, no_heap);
    if (ka_client_start(f.c) != 0) abort();
    settle(&f);

    for (moves = 0; moves < MAX_MOVES && r.i < r.n; moves++) {
        unsigned op = u8(&r) % 20;
        long k;
        switch (op) {
        case 0: case 1: drive(&f, 0, 0); break;
        case 2: drive(&f, 0, 1 + (int)(u8(&r) % 4)); break;        /* a short stall */
        case 3: drive(&f, 1, (int)(u8(&r) % 3)); break;
        case 4: drive(&f, 2, (int)u8(&r)); break;
        case 5: {                                                 /* peer accepts, dropping the old one */
            ka_socket s = accept(g_listen, NULL, NULL);
            if (s != KA_INVALID_SOCKET) {
                peer_close(&f, 1);
                t_nonblock(s);
                f.peer = s;
                f.peer_sent = 0;
                if (u8(&r) & 1) { int one = 1; setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
            }
            break;
        }
        case 6: case 7: {                                         /* peer sends an odd-sized piece */
            size_t len = op == 6 ? 1 + u8(&r) % 17 : 1 + u16(&r) % sizeof g_buf, x;
            unsigned char *b = g_buf;
            if (f.peer == KA_INVALID_SOCKET) break;
            for (x = 0; x < len; x++) b[x] = pat(f.peer_sent + x);
            k = (long)send(f.peer, (const char *)b, len, MSG_NOSIGNAL);
            if (k > 0) f.peer_sent += (size_t)k;                  /* partial writes: the rest is not sent */
            break;
        }
        case 8:                                                    /* peer reads part of what came */
            if (f.peer != KA_INVALID_SOCKET) (void)recv(f.peer, (char *)g_buf, 1 + u16(&r) % 4096, 0);
            break;
        case 9: if (f.peer != KA_INVALID_SOCKET) shutdown(f.peer, SHUT_WR); break;     /* FIN, keeps reading */
        case 10: peer_close(&f, 0); break;                         /* FIN */
        case 11: peer_close(&f, 1); break;                         /* RST */
        case 12: if (f.peer != KA_INVALID_SOCKET) t_set_rcvbuf(f.peer, 1); break;    /* the peer chokes */
        case 13: app_call(&f, A_SEND); settle(&f); break;
        case 14: app_call(&f, A_SEND_BIG); settle(&f); break;
        case 15: app_call(&f, A_DISCONNECT); settle(&f); break;
        case 16: app_call(&f, A_RETRY); settle(&f); break;
        case 17: app_call(&f, A_STOP); settle(&f); break;
        case 18:                                                   /* restart a stopped client */
            if (f.c) {
                int rc = ka_client_start(f.c);
                if (rc != 0 && rc != KA_ESTATE) abort();
                settle(&f);
            }
            break;
        default:                                                   /* free at the top level, and a new one */
            ka_client_free(f.c);
            f.c = NULL;
            new_client(&f, no_heap);
            if (ka_client_start(f.c) != 0) abort();
            settle(&f);
            break;
        }
    }

    /* clean up: client, peer, anything still in the listener's backlog */
    ka_client_free(f.c);
    peer_close(&f, 1);
    for (;;) {
        ka_socket s = accept(g_listen, NULL, NULL);
        if (s == KA_INVALID_SOCKET) break;
        t_reset(s);
    }
    if (have_fds && fd_snapshot(fds_after) && memcmp(fds_before, fds_after, sizeof fds_after) != 0) {
        for (i = 0; i < FD_BITS; i++)
            if ((fds_before[i / 8] ^ fds_after[i / 8]) & (1u << (i % 8)))
                fprintf(stderr, "fuzz_session: descriptor %u %s during the input\n", i,
                        (fds_after[i / 8] >> (i % 8)) & 1 ? "left open" : "closed");
        abort();
    }
    return 0;
}
