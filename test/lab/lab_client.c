/* lab_client: one ka_client inside the lab's client namespace, as a program.
 *
 * It connects with the configuration given on the command line and prints
 * every event as one machine-readable line, "<monotonic ms> <event> key=value
 * ...", for test/lab/run.sh to parse. CLOCK_MONOTONIC is one clock for the
 * whole machine (the lab makes no time namespaces), so these stamps compare
 * directly with lab_server's.
 *
 * Commands arrive one per line on stdin, so the driver can put its faults on
 * the client's own timeline and make it send at a chosen moment:
 *   mark WORD       print "<ms> mark WORD"
 *   send N          queue N bytes ('x') with ka_client_send
 *   stream RATE MS  for MS ms, send the sequence pattern at RATE bytes/s:
 *                   records "%015llu\n" numbered from 0 (lab_server -m
 *                   verify checks them), in messages of whole records; a
 *                   message the queue refuses (KA_EAGAIN) is tried again
 *                   later, so the numbers never skip; "stream-end" says how
 *                   many records and bytes the library accepted
 *   info            print the socket's TCP_INFO (round trip, retransmissions,
 *                   the peer's window)
 *   calls           print how long the library's calls held this thread
 *   stats           print ka_client_stats: the counters and the kernel's
 *                   view of the connection as the library reports it
 *                   ("-" for a field the OS did not give)
 *   quit            stop and exit (so does end of input)
 * With -w it listens for the early warning (on_health) and prints each
 * report: "health degraded=1 cause=RETRANS,UNACKED ..." when the link turns
 * bad, "health degraded=0 ..." when it is good again.
 * While connected it also watches the peer's receive window (TCP_INFO
 * tcpi_snd_wnd) at every wake-up, every 10 ms while a stream runs, and says
 * "window-closed" when it drops to 0 and "window-open" when it opens again;
 * stream-end also gives the deepest RTO backoff seen during the stream and
 * the longest time the kernel went without an ACK while data was in flight.
 *
 * "connect" names the peer's address, the endpoint (ka_client_endpoint) and
 * the keepalive and user timeout the kernel really holds (read back with
 * getsockopt: whole seconds, and no TCP_USER_TIMEOUT).
 *
 * The loop is the application's own select() over stdin and the client's
 * sockets (ka_client_fdset / ka_client_timeout_ms / ka_client_process), and
 * the program always exits after -T milliseconds. Every library call is
 * timed: a call that held the thread longer than SLOW_US says so at once
 * ("slow-call"), and "calls" (on command and at exit) gives the longest
 * call of each kind, so that a lookup or anything else that blocks shows. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/tcp.h>          /* struct tcp_info with tcpi_snd_wnd (glibc's lacks it) */

#include "ka_client.h"
#include "testlib.h"

#define REC_LEN 16              /* one record of the sequence pattern: 15 digits and '\n' */
#define MSG_RECS 64             /* records per message at most */
#define TICK_MS 10              /* pace of a stream and of the window watch */
#define SLOW_US 10000           /* a library call longer than this is reported as it happens */

/* The names the driver parses; ka_reason_str's words are for people. */
static const char *reason_name(ka_reason r)
{
    switch (r) {
    case KA_REASON_NONE: return "NONE";
    case KA_REASON_PEER_CLOSED: return "PEER_CLOSED";
    case KA_REASON_PEER_RESET: return "PEER_RESET";
    case KA_REASON_TIMEOUT: return "TIMEOUT";
    case KA_REASON_UNREACHABLE: return "UNREACHABLE";
    case KA_REASON_REFUSED: return "REFUSED";
    case KA_REASON_CONNECT_TIMEOUT: return "CONNECT_TIMEOUT";
    case KA_REASON_RESOLVE: return "RESOLVE";
    case KA_REASON_HEARTBEAT: return "HEARTBEAT";
    case KA_REASON_LOCAL: return "LOCAL";
    case KA_REASON_ERROR: return "ERROR";
    case KA_REASON_STALLED: return "STALLED";
    case KA_REASON_ABORTED: return "ABORTED";
    case KA_REASON_TLS: return "TLS";
    default: return "UNKNOWN";  /* a reason newer than this program */
    }
}

/* ---- output ---- */

static void event(const char *fmt, ...)
{
    va_list ap;
    printf("%llu ", t_now_ms());
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* ---- how long each library call held the thread ---- */

enum { CALL_START, CALL_PROCESS, CALL_FDSET, CALL_TIMEOUT, CALL_SEND, CALL_STOP, CALL_FREE, CALL_STATS, NCALLS };
static const char *const call_name[NCALLS] = { "start", "process", "fdset", "timeout", "send", "stop", "free", "stats" };
static struct { unsigned long n; unsigned long long max_us; } calls[NCALLS];
static unsigned long long call_t0;

static unsigned long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000u + (unsigned long long)ts.tv_nsec / 1000u;
}

/* Around every ka_client_* call that may do work: call_begin(); the call;
 * call_end(CALL_...). The time includes our own callbacks, which only
 * print. */
static void call_begin(void) { call_t0 = now_us(); }

static void call_end(int k)
{
    unsigned long long d = now_us() - call_t0;
    calls[k].n++;
    if (d > calls[k].max_us) calls[k].max_us = d;
    if (d > SLOW_US) event("slow-call name=%s us=%llu", call_name[k], d);
}

static void print_calls(void)
{
    unsigned long n = 0;
    unsigned long long max = 0;
    int k, worst = 0;
    char per[256];
    size_t at = 0;
    for (k = 0; k < NCALLS; k++) {
        n += calls[k].n;
        if (calls[k].max_us > max) { max = calls[k].max_us; worst = k; }
        at += (size_t)snprintf(per + at, sizeof per - at, " %s=%llu", call_name[k], calls[k].max_us);
    }
    event("calls n=%lu max_us=%llu max_call=%s%s", n, max, call_name[worst], per);
}

/* ---- TCP_INFO of the client's current socket ---- */

/* 0 and *ti filled, or -1 (no socket). *has_wnd says whether the kernel
 * reported tcpi_snd_wnd (Linux 6.2 and later). */
static int tcp_info_of(ka_client *c, struct tcp_info *ti, int *has_wnd)
{
    socklen_t len = sizeof *ti;
    ka_socket s = ka_client_socket(c);
    memset(ti, 0, sizeof *ti);
    if (s == KA_INVALID_SOCKET || getsockopt(s, IPPROTO_TCP, TCP_INFO, ti, &len) != 0) return -1;
    *has_wnd = len >= offsetof(struct tcp_info, tcpi_snd_wnd) + sizeof ti->tcpi_snd_wnd;
    return 0;
}

static void print_info(ka_client *c)
{
    struct tcp_info ti;
    int has_wnd;
    if (tcp_info_of(c, &ti, &has_wnd) != 0) { event("info none"); return; }
    event("info rtt_us=%u min_rtt_us=%u rttvar_us=%u rto_us=%u retrans=%u total_retrans=%u "
          "unacked=%u probes=%u backoff=%u snd_wnd=%ld last_data_sent=%u last_ack_recv=%u",
          ti.tcpi_rtt, ti.tcpi_min_rtt, ti.tcpi_rttvar, ti.tcpi_rto, ti.tcpi_retransmits,
          ti.tcpi_total_retrans, ti.tcpi_unacked, ti.tcpi_probes, ti.tcpi_backoff,
          has_wnd ? (long)ti.tcpi_snd_wnd : -1L, ti.tcpi_last_data_sent, ti.tcpi_last_ack_recv);
}

/* Once per wake-up: the peer's receive window, reported each time it closes
 * and opens; and, for stream-end, the deepest retransmission backoff and the
 * longest time without an ACK while data was in flight. */
static int window_closed;
static unsigned max_backoff, max_ack_gap;

static void watch_socket(ka_client *c)
{
    struct tcp_info ti;
    int has_wnd;
    if (ka_client_state(c) != KA_STATE_CONNECTED || tcp_info_of(c, &ti, &has_wnd) != 0) {
        window_closed = 0;
        return;
    }
    if (ti.tcpi_backoff > max_backoff) max_backoff = ti.tcpi_backoff;
    if (ti.tcpi_unacked > 0 && ti.tcpi_last_ack_recv > max_ack_gap) max_ack_gap = ti.tcpi_last_ack_recv;
    if (!has_wnd) return;
    if (ti.tcpi_snd_wnd == 0 && !window_closed) {
        window_closed = 1;
        event("window-closed probes=%u", ti.tcpi_probes);
    } else if (ti.tcpi_snd_wnd > 0 && window_closed) {
        window_closed = 0;
        event("window-open snd_wnd=%u", ti.tcpi_snd_wnd);
    }
}

/* ---- the sequence stream ---- */

static struct {
    int on;
    unsigned long long end_ms, last_ms;
    double rate;                        /* bytes per second */
    double credit;                      /* bytes it may send now */
    unsigned long long seq;             /* next record number: never reset */
    unsigned long long records, bytes;  /* accepted by ka_client_send in this stream */
    unsigned long eagain;
} st;

static void stream_start(unsigned rate, unsigned ms)
{
    st.on = 1;
    st.rate = rate;
    st.credit = 0;
    st.last_ms = t_now_ms();
    st.end_ms = st.last_ms + ms;
    st.records = st.bytes = 0;
    st.eagain = 0;
    max_backoff = max_ack_gap = 0;
    event("stream-start rate=%u ms=%u first=%llu", rate, ms, st.seq);
}

/* Sends what the rate allows since the last call, in messages of whole
 * records. Credit is capped at one second's worth (at least one message), so
 * a closed window does not turn into a burst when it opens. */
static void stream_tick(ka_client *c)
{
    static char msg[MSG_RECS * REC_LEN + 1];
    unsigned long long now = t_now_ms();
    double cap = st.rate > MSG_RECS * REC_LEN ? st.rate : MSG_RECS * REC_LEN;
    if (!st.on) return;
    st.credit += st.rate * (double)(now - st.last_ms) / 1000.0;
    if (st.credit > cap) st.credit = cap;
    st.last_ms = now;
    while (st.credit >= REC_LEN) {
        unsigned k, n = (unsigned)(st.credit / REC_LEN);
        int rc;
        if (n > MSG_RECS) n = MSG_RECS;
        for (k = 0; k < n; k++) snprintf(msg + k * REC_LEN, REC_LEN + 1, "%015llu\n", st.seq + k);
        call_begin();
        rc = ka_client_send(c, msg, (size_t)n * REC_LEN);
        call_end(CALL_SEND);
        if (rc != KA_OK) {
            if (rc == KA_EAGAIN) st.eagain++;
            else event("stream-error rc=%d", rc);
            break;
        }
        st.seq += n;
        st.records += n;
        st.bytes += (unsigned long long)n * REC_LEN;
        st.credit -= (double)n * REC_LEN;
    }
    if (now >= st.end_ms) {
        st.on = 0;
        event("stream-end records=%llu bytes=%llu next=%llu eagain=%lu max_backoff=%u max_ack_gap_ms=%u",
              st.records, st.bytes, st.seq, st.eagain, max_backoff, max_ack_gap);
    }
}

/* ---- callbacks: each prints one line ---- */

static unsigned local_port(ka_client *c)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(ka_client_socket(c), (struct sockaddr *)&ss, &sl) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* The connected peer's address, as text ("-" if unknown). */
static const char *peer_name(ka_client *c, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    const void *a = NULL;
    if (getpeername(ka_client_socket(c), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) a = &((struct sockaddr_in *)&ss)->sin_addr;
        else if (ss.ss_family == AF_INET6) a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    }
    if (!a || !inet_ntop(ss.ss_family, a, out, (socklen_t)len)) snprintf(out, len, "-");
    return out;
}

/* An option the kernel holds for the socket, -1 if it cannot say. */
static int tcp_opt(ka_client *c, int opt)
{
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(ka_client_socket(c), IPPROTO_TCP, opt, &v, &len) != 0) return -1;
    return v;
}

static void on_connect(ka_client *c, void *u)
{
    char peer[64];
    (void)u;
    event("connect lport=%u peer=%s ep=%d ka=%d/%d/%d uto=%d", local_port(c), peer_name(c, peer, sizeof peer),
          ka_client_endpoint(c), tcp_opt(c, TCP_KEEPIDLE), tcp_opt(c, TCP_KEEPINTVL), tcp_opt(c, TCP_KEEPCNT),
          tcp_opt(c, TCP_USER_TIMEOUT));
}

static void on_data(ka_client *c, const void *d, size_t n, void *u)
{
    (void)c; (void)d; (void)u;
    event("data n=%lu", (unsigned long)n);
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *u)
{
    (void)c; (void)u;
    event("disconnect reason=%s errno=%d errname=%s up_ms=%lu unsent=%lu", reason_name(di->reason),
          di->sys_error, di->sys_error ? strerror(di->sys_error) : "-", di->connected_ms,
          (unsigned long)di->unsent_bytes);
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *u)
{
    (void)c; (void)u;
    event("retry attempt=%u delay=%u reason=%s errno=%d", ri->attempt, ri->delay_ms,
          reason_name(ri->reason), ri->sys_error);
}

static void on_give_up(ka_client *c, const ka_retry_info *ri, void *u)
{
    (void)c; (void)u;
    event("giveup attempt=%u reason=%s", ri->attempt, reason_name(ri->reason));
}

static int log_all;             /* -L: every on_log line, not just warnings */

static void on_log(ka_client *c, int level, const char *msg, void *u)
{
    (void)c; (void)u;
    if (level >= KA_LOG_WARN) event("warning %s", msg);
    else if (log_all) event("log level=%d %s", level, msg);
}

/* "RETRANS,UNACKED": the KA_HEALTH_* bits by name, "-" for none. */
static const char *cause_names(unsigned cause, char *out, size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    if (cause & KA_HEALTH_UNACKED) at += (size_t)snprintf(out + at, len - at, "%sUNACKED", at ? "," : "");
    if (cause & KA_HEALTH_RETRANS) at += (size_t)snprintf(out + at, len - at, "%sRETRANS", at ? "," : "");
    if (cause & KA_HEALTH_STALLED) at += (size_t)snprintf(out + at, len - at, "%sSTALLED", at ? "," : "");
    if (!at) snprintf(out, len, "-");
    return out;
}

static void on_health(ka_client *c, const ka_health *h, void *u)
{
    char cause[64];
    (void)c; (void)u;
    event("health degraded=%d cause=%s unacked_ms=%lu rtt_us=%lu retransmits=%lu deadline_ms=%lu", h->degraded,
          cause_names(h->cause, cause, sizeof cause), h->unacked_ms, h->rtt_us, h->retransmits, h->deadline_ms);
}

/* KEY=value for a kernel field of ka_stats, or KEY=- when valid lacks BIT. */
static int kfield(char *out, size_t len, const ka_stats *st, unsigned bit, const char *key, unsigned long v)
{
    if (st->valid & bit) return snprintf(out, len, " %s=%lu", key, v);
    return snprintf(out, len, " %s=-", key);
}

static void print_stats(ka_client *c)
{
    ka_stats st;
    char k[512];
    size_t at = 0;
    int rc;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    call_begin();
    rc = ka_client_stats(c, &st);
    call_end(CALL_STATS);
    if (rc != KA_OK) { event("stats error rc=%d", rc); return; }
    at += (size_t)kfield(k + at, sizeof k - at, &st, KA_STATS_RTT, "rtt_us", st.rtt_us);
    at += (size_t)kfield(k + at, sizeof k - at, &st, KA_STATS_RTTVAR, "rttvar_us", st.rttvar_us);
    at += (size_t)kfield(k + at, sizeof k - at, &st, KA_STATS_RETRANS, "retransmits", st.retransmits);
    at += (size_t)kfield(k + at, sizeof k - at, &st, KA_STATS_RETRANS, "total_retrans", st.total_retrans);
    at += (size_t)kfield(k + at, sizeof k - at, &st, KA_STATS_UNACKED, "unacked_bytes", st.unacked_bytes);
    at += (size_t)kfield(k + at, sizeof k - at, &st, KA_STATS_SENDQ, "send_queue_bytes", st.send_queue_bytes);
    at += (size_t)kfield(k + at, sizeof k - at, &st, KA_STATS_PEER_WND, "peer_window", st.peer_window);
    kfield(k + at, sizeof k - at, &st, KA_STATS_PROBES, "probes", st.probes);
    event("stats valid=0x%x%s attempts=%llu connections=%llu bytes_sent=%llu bytes_received=%llu "
          "messages_sent=%llu queue_high_water=%llu connected_ms=%llu",
          st.valid, k, st.attempts, st.connections, st.bytes_sent, st.bytes_received, st.messages_sent,
          st.queue_high_water, st.connected_ms);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: lab_client -h HOST -p PORT [-d] [-i idle_ms] [-v interval_ms] [-c count]\n"
            "                  [-u user_timeout_ms] [-S stall_timeout_ms] [-C connect_timeout_ms]\n"
            "                  [-b backoff_initial_ms] [-B backoff_max_ms] [-j jitter]\n"
            "                  [-I idle_timeout_ms] [-H heartbeat_interval_ms] [-T lifetime_ms]\n"
            "                  [-R resolve_timeout_ms] [-A connection_attempt_delay_ms] [-r backoff_reset_ms]\n"
            "                  [-e HOST:PORT]... [-s bind_address] [-n bind_interface] [-f 0|4|6] [-L]\n"
            "                  [-w health_threshold_ms]\n"
            "Keepalive is 1 s / 1 s / 3 unless -d puts back the library's default deadlines\n"
            "(ka_config_init: keepalive, user timeout); later options override either.\n"
            "-e, once per server, fills endpoints[] in order (host and port are then\n"
            "ignored; an IPv6 host in brackets); -L logs every on_log line; -w listens\n"
            "for on_health (0: the library's default threshold).\n"
            "commands on stdin: mark WORD | send N | stream RATE MS | info | calls | stats | quit\n");
    exit(2);
}

static unsigned num(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0') usage();
    return (unsigned)v;
}

/* One command line from the driver. Returns 0 to go on, 1 to quit. */
static int command(ka_client *c, char *line)
{
    static char payload[65536];
    unsigned n, ms;
    line[strcspn(line, "\r\n")] = '\0';
    if (strncmp(line, "mark ", 5) == 0) { event("mark %s", line + 5); return 0; }
    if (strncmp(line, "send ", 5) == 0) {
        int rc;
        n = num(line + 5);
        if (n > sizeof payload) n = sizeof payload;
        memset(payload, 'x', n);
        call_begin();
        rc = ka_client_send(c, payload, n);
        call_end(CALL_SEND);
        event("send n=%u rc=%d", n, rc);
        return 0;
    }
    if (sscanf(line, "stream %u %u", &n, &ms) == 2) { stream_start(n, ms); return 0; }
    if (strcmp(line, "info") == 0) { print_info(c); return 0; }
    if (strcmp(line, "calls") == 0) { print_calls(); return 0; }
    if (strcmp(line, "stats") == 0) { print_stats(c); return 0; }
    if (strcmp(line, "quit") == 0) return 1;
    event("unknown-command %s", line);
    return 0;
}

/* -e HOST:PORT: split at the last colon, so "[fd77::2]:7000" works too. */
static ka_endpoint endpoints[KA_MAX_ENDPOINTS];
static char endpoint_text[KA_MAX_ENDPOINTS][300];

static void add_endpoint(ka_config *cfg, const char *arg)
{
    size_t i = cfg->endpoint_count;
    char *colon;
    if (i == KA_MAX_ENDPOINTS || strlen(arg) >= sizeof endpoint_text[i]) usage();
    strcpy(endpoint_text[i], arg);
    if ((colon = strrchr(endpoint_text[i], ':')) == NULL) usage();
    *colon = '\0';
    endpoints[i].host = endpoint_text[i];
    endpoints[i].port = colon + 1;
    cfg->endpoints = endpoints;
    cfg->endpoint_count = i + 1;
}

/* The library's own deadlines, as ka_config_init sets them. */
static void default_deadlines(ka_config *cfg)
{
    ka_config d;
    ka_config_init(&d);
    cfg->keepalive_idle_ms = d.keepalive_idle_ms;
    cfg->keepalive_interval_ms = d.keepalive_interval_ms;
    cfg->keepalive_count = d.keepalive_count;
    cfg->user_timeout_ms = d.user_timeout_ms;
}

int main(int argc, char **argv)
{
    ka_config cfg;
    ka_client *c = NULL;
    unsigned lifetime_ms = 30000;
    unsigned long long end;
    char line[256];
    size_t llen = 0;
    int opt, rc, in_open = 1, quit = 0;

    ka_config_init(&cfg);
    cfg.keepalive_idle_ms = cfg.keepalive_interval_ms = 1000;
    cfg.keepalive_count = 3;
    cfg.connect_timeout_ms = 2000;
    cfg.backoff_initial_ms = 200;
    cfg.backoff_max_ms = 1000;
    cfg.backoff_jitter = 0;
    cfg.cb.on_connect = on_connect;
    cfg.cb.on_data = on_data;
    cfg.cb.on_disconnect = on_disconnect;
    cfg.cb.on_retry = on_retry;
    cfg.cb.on_give_up = on_give_up;
    cfg.cb.on_log = on_log;
    while ((opt = getopt(argc, argv, "h:p:di:v:c:u:S:C:b:B:j:I:H:T:R:A:r:e:s:n:f:Lw:")) != -1) {
        switch (opt) {
        case 'h': cfg.host = optarg; break;
        case 'p': cfg.port = optarg; break;
        case 'd': default_deadlines(&cfg); break;
        case 'i': cfg.keepalive_idle_ms = num(optarg); break;
        case 'v': cfg.keepalive_interval_ms = num(optarg); break;
        case 'c': cfg.keepalive_count = num(optarg); break;
        case 'u': cfg.user_timeout_ms = num(optarg); break;
        case 'S': cfg.stall_timeout_ms = num(optarg); break;
        case 'C': cfg.connect_timeout_ms = num(optarg); break;
        case 'b': cfg.backoff_initial_ms = num(optarg); break;
        case 'B': cfg.backoff_max_ms = num(optarg); break;
        case 'j': cfg.backoff_jitter = atof(optarg); break;
        case 'I': cfg.idle_timeout_ms = num(optarg); break;
        case 'H': cfg.heartbeat_interval_ms = num(optarg); cfg.heartbeat_data = "hb\n"; cfg.heartbeat_len = 3; break;
        case 'T': lifetime_ms = num(optarg); break;
        case 'R': cfg.resolve_timeout_ms = num(optarg); break;
        case 'A': cfg.connection_attempt_delay_ms = num(optarg); break;
        case 'r': cfg.backoff_reset_ms = num(optarg); break;
        case 'e': add_endpoint(&cfg, optarg); break;
        case 's': cfg.bind_address = optarg; break;
        case 'n': cfg.bind_interface = optarg; break;
        case 'f': cfg.family = (int)num(optarg); break;
        case 'L': log_all = 1; break;
        case 'w': cfg.cb.on_health = on_health; cfg.health_threshold_ms = num(optarg); break;
        default: usage();
        }
    }
    if (!cfg.endpoint_count && (!cfg.host || !cfg.port)) usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_net_init();

    if (ka_client_new(&c, &cfg) != KA_OK) {
        const char *bad = ka_config_error(&cfg);
        event("error ka_client_new field=%s", bad ? bad : "-");
        return 1;
    }
    event("start");
    call_begin();
    rc = ka_client_start(c);
    call_end(CALL_START);
    if (rc != KA_OK) { event("error ka_client_start"); ka_client_free(c); return 1; }

    end = t_now_ms() + lifetime_ms;
    while (!quit && t_now_ms() < end) {
        fd_set rd, wr;
        struct timeval tv;
        long t, left = (long)(end - t_now_ms());
        int nfds, n;
        call_begin();
        t = ka_client_timeout_ms(c);
        call_end(CALL_TIMEOUT);
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        if (in_open) FD_SET(STDIN_FILENO, &rd);
        call_begin();
        nfds = ka_client_fdset(c, &rd, &wr);
        call_end(CALL_FDSET);
        if (nfds < STDIN_FILENO + 1) nfds = STDIN_FILENO + 1;
        if (t < 0 || t > left) t = left;
        if (st.on && t > TICK_MS) t = TICK_MS;
        tv.tv_sec = t / 1000;
        tv.tv_usec = (t % 1000) * 1000;
        n = select(nfds, &rd, &wr, NULL, &tv);
        if (n < 0) {
            if (errno == EINTR) continue;
            event("error select errno=%d", errno);
            break;
        }
        if (n > 0 && in_open && FD_ISSET(STDIN_FILENO, &rd)) {
            /* Read what is there (the pipe never blocks us for long: the
             * driver writes whole lines) and run each complete line. */
            ssize_t got = read(STDIN_FILENO, line + llen, sizeof line - 1 - llen);
            if (got <= 0) in_open = 0;
            else {
                char *nl;
                llen += (size_t)got;
                line[llen] = '\0';
                while (!quit && (nl = strchr(line, '\n')) != NULL) {
                    size_t used = (size_t)(nl - line) + 1;
                    *nl = '\0';
                    quit = command(c, line);
                    memmove(line, line + used, llen - used + 1);
                    llen -= used;
                }
                if (llen == sizeof line - 1) llen = 0;      /* an overlong line: drop it */
            }
            if (!in_open) quit = 1;
        }
        call_begin();
        n = ka_client_process(c, &rd, &wr);
        call_end(CALL_PROCESS);
        if (n == KA_ESTATE) break;
        stream_tick(c);
        watch_socket(c);
    }
    call_begin();
    ka_client_stop(c);
    call_end(CALL_STOP);
    call_begin();
    ka_client_free(c);
    call_end(CALL_FREE);
    print_calls();
    event("exit");
    return 0;
}
