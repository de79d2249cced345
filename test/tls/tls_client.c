/* tls_client: a ka_client over a TLS adapter (or plain TCP), for the tls
 * suite (test/tls/run.sh) and the TLS lab rows. It prints one line per
 * event, "<ms since start> <event> key=value...", reads commands on stdin
 * and exits when its job is done or its lifetime is over.
 *
 *   -a openssl|mbedtls|plain   the transport (plain: ka_client's own TCP)
 *   -h HOST -p PORT            the server
 *   --cafile F --cert F --key F --servername N --insecure
 *   -m lines|bulk|soak         what to do on each connection:
 *      lines   send -s TEXT (a line) on every connect; print each line received
 *      bulk    -b BYTES in -M byte messages with replay_until_acked to an echo
 *              server: each message is acknowledged once its echo is back and
 *              checked against what was sent (a partial echo is dropped with
 *              its connection); exit 0 when every byte came back, in order.
 *              -H BYTES: once that much is checked, hold the acknowledgements
 *              (the send window fills with unacknowledged messages, "held"
 *              says so) until the connection ends: what was held comes again
 *              on the next connection and is checked again
 *      soak    -n CYCLES times: connect, send a line, wait for its echo,
 *              disconnect; then check that descriptors and memory are flat
 *   -n N       lines mode: exit after N lines
 *   -T MS      lifetime (default 20000)
 *   -I -V -C   keepalive idle, interval (ms), count; -U user timeout (ms)
 *   -B MS      backoff initial (max 4x, jitter 0); -A N max attempts
 *   -t MS      connect timeout
 *   -N         TCP_NODELAY (from on_configure): TLS writes small records, and
 *              Nagle would hold the first request after the handshake for a
 *              delayed ACK (40 ms on Linux)
 *
 * Commands (stdin): "disconnect", "send TEXT", "mark WORD", "quit".
 * Exit: 0 done, 1 failed or lifetime over, 2 usage, 3 setup failed. */

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "ka_client.h"
#ifdef KA_HAVE_OPENSSL
#include "ka_openssl.h"
#endif
#ifdef KA_HAVE_MBEDTLS
#include "ka_mbedtls.h"
#endif

static struct {
    const char *adapter, *host, *port, *mode, *text;
    const char *cafile, *cert, *key, *servername;
    int insecure, nodelay;
    long lines_wanted, lifetime_ms;
    unsigned idle, intvl, cnt, uto, backoff, attempts, ctimeout;
    unsigned long long bulk_bytes;
    size_t msg_size;
    unsigned long long hold_at;
    long cycles;
} opt;

static ka_client *cli;
static ka_transport *tls;
static unsigned long long t_start;
static int done, failed;
static long lines, connects, losses, retries;
static char linebuf[4096];
static size_t linelen;

/* bulk: what was sent and what came back */
static unsigned long long sent_msgs, checked_msgs, acked_msgs, total_msgs, echo_part;
static int holding, held_once, held_full;
static unsigned char *msgbuf;

/* soak */
static long cycle, fds_at_start, rss_at_start;

static unsigned long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    printf("%llu ", now_ms() - t_start);
    va_start(ap, fmt);
    vprintf(fmt, ap);                   /* NOLINT(clang-analyzer-valist.Uninitialized): va_start is just above */
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void tls_stats(ka_tls_stats *st)
{
    memset(st, 0, sizeof *st);
#ifdef KA_HAVE_OPENSSL
    if (strcmp(opt.adapter, "openssl") == 0) ka_openssl_stats(tls, st);
#endif
#ifdef KA_HAVE_MBEDTLS
    if (strcmp(opt.adapter, "mbedtls") == 0) ka_mbedtls_stats(tls, st);
#endif
}

static const char *tls_text(void)
{
    const char *t = ka_client_transport_error(cli);
    return t ? t : "-";
}

/* The byte at stream offset o: deterministic, so the echo can be checked. */
static unsigned char stream_byte(unsigned long long o)
{
    unsigned long long x = o * 0x9E3779B97F4A7C15ull;
    return (unsigned char)(x >> 56 ^ x >> 23);
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;                       /* the directory's own */
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- bulk ---- */

static void bulk_fill(void)
{
    while (sent_msgs < total_msgs) {
        unsigned long long base = sent_msgs * opt.msg_size;
        size_t i;
        for (i = 0; i < opt.msg_size; i++) msgbuf[i] = stream_byte(base + i);
        if (ka_client_send(cli, msgbuf, opt.msg_size) != 0) {
            if (holding && !held_full++) say("held unacked=%lu", (unsigned long)ka_client_unacked(cli));
            return;
        }
        sent_msgs++;
    }
}

/* Checks the echo byte by byte; a message whose echo is complete is
 * acknowledged, unless held. */
static void bulk_data(const unsigned char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n && !done; i++) {
        unsigned long long o = checked_msgs * opt.msg_size + echo_part;
        if (checked_msgs >= total_msgs || p[i] != stream_byte(o)) {
            say("mismatch offset=%llu got=%u want=%u", o, p[i], stream_byte(o));
            failed = done = 1;
            return;
        }
        if (++echo_part < opt.msg_size) continue;
        echo_part = 0;
        checked_msgs++;
        if (opt.hold_at && !held_once && !holding && checked_msgs * opt.msg_size >= opt.hold_at) {
            holding = 1;
            say("hold checked=%llu", checked_msgs * opt.msg_size);
        }
        if (holding) continue;
        ka_client_ack(cli, (size_t)(checked_msgs - acked_msgs));
        acked_msgs = checked_msgs;
        if (acked_msgs % (total_msgs / 16 ? total_msgs / 16 : 1) == 0)
            say("progress acked=%llu", acked_msgs * opt.msg_size);
        if (acked_msgs == total_msgs) done = 1;
    }
}

/* ---- callbacks ---- */

static void on_connect(ka_client *c, void *u)
{
    ka_tls_stats st;
    (void)u;
    connects++;
    tls_stats(&st);
    say("connected n=%ld resumed=%d hs_us=%lu in=%lu out=%lu rtt=%u", connects, st.last_resumed, st.last_us,
        st.last_bytes_in, st.last_bytes_out, st.last_round_trips);
    linelen = 0;
    if (strcmp(opt.mode, "lines") == 0 || strcmp(opt.mode, "soak") == 0) {
        char l[600];
        int n = snprintf(l, sizeof l, "%s\n", opt.text);
        ka_client_send(c, l, (size_t)n);
    }
}

static void on_line(const char *l)
{
    lines++;
    if (strcmp(opt.mode, "soak") == 0) {
        if (++cycle == opt.cycles / 10) {
            fds_at_start = count_fds();
            rss_at_start = rss_kib();
        }
        if (cycle % (opt.cycles / 10 ? opt.cycles / 10 : 1) == 0) say("cycle %ld fds=%ld rss_kib=%ld", cycle, count_fds(), rss_kib());
        if (cycle >= opt.cycles) done = 1;
        else ka_client_disconnect(cli);
        return;
    }
    say("line %s", l);
    if (opt.lines_wanted && lines >= opt.lines_wanted) done = 1;
}

static void on_data(ka_client *c, const void *data, size_t len, void *u)
{
    const char *p = (const char *)data;
    size_t i;
    (void)c; (void)u;
    if (strcmp(opt.mode, "bulk") == 0) {
        bulk_data((const unsigned char *)data, len);
        return;
    }
    for (i = 0; i < len; i++) {
        if (p[i] == '\n' || linelen == sizeof linebuf - 1) {
            linebuf[linelen] = 0;
            if (linelen && linebuf[linelen - 1] == '\r') linebuf[linelen - 1] = 0;
            linelen = 0;
            on_line(linebuf);
            if (done) return;
            continue;
        }
        linebuf[linelen++] = p[i];
    }
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *u)
{
    (void)c; (void)u;
    losses++;
    echo_part = 0;                      /* a half-echoed message comes again whole, */
    checked_msgs = acked_msgs;          /* and so does every one not acknowledged */
    if (holding) held_once = 1;
    holding = 0;
    if (strcmp(opt.mode, "soak") == 0 && di->reason == KA_REASON_LOCAL) return;
    say("lost reason=\"%s\" err=%d after=%lu tls=%s", ka_reason_str(di->reason), di->sys_error, di->connected_ms,
        di->reason == KA_REASON_TLS ? tls_text() : "-");
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *u)
{
    (void)c; (void)u;
    retries++;
    if (strcmp(opt.mode, "soak") == 0 && ri->reason == KA_REASON_LOCAL) return;
    say("retry attempt=%u delay=%u reason=\"%s\" err=%d tls=%s", ri->attempt, ri->delay_ms, ka_reason_str(ri->reason),
        ri->sys_error, ri->reason == KA_REASON_TLS ? tls_text() : "-");
}

static void on_give_up(ka_client *c, const ka_retry_info *ri, void *u)
{
    (void)c; (void)u;
    say("giveup reason=\"%s\" err=%d tls=%s", ka_reason_str(ri->reason), ri->sys_error,
        ri->reason == KA_REASON_TLS ? tls_text() : "-");
    done = 1;
}

static int on_configure(ka_client *c, ka_socket s, void *u)
{
    int one = 1;
    (void)c; (void)u;
    return setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 ? 0 : errno;
}

/* ---- commands ---- */

static void command(char *l)
{
    l[strcspn(l, "\r\n")] = 0;
    if (strcmp(l, "disconnect") == 0) ka_client_disconnect(cli);
    else if (strncmp(l, "send ", 5) == 0) {
        char m[600];
        int n = snprintf(m, sizeof m, "%s\n", l + 5);
        say("send rc=%d", ka_client_send(cli, m, (size_t)n));
    } else if (strncmp(l, "mark ", 5) == 0) say("mark %s", l + 5);
    else if (strcmp(l, "quit") == 0) done = 1;
}

/* ---- setup ---- */

static int make_transport(void)
{
    char msg[300] = "";
    int rc = 0;
    if (strcmp(opt.adapter, "plain") == 0) return 0;
#ifdef KA_HAVE_OPENSSL
    if (strcmp(opt.adapter, "openssl") == 0)
        rc = ka_openssl_from_args(&tls, 1, opt.cafile, opt.cert, opt.key, opt.servername, opt.insecure, msg, sizeof msg);
    else
#endif
#ifdef KA_HAVE_MBEDTLS
    if (strcmp(opt.adapter, "mbedtls") == 0)
        rc = ka_mbedtls_from_args(&tls, 1, opt.cafile, opt.cert, opt.key, opt.servername, opt.insecure, msg, sizeof msg);
    else
#endif
    {
        say("setup adapter %s not built in", opt.adapter);
        return -1;
    }
    if (msg[0]) say("setup rc=%d msg=%s", rc, msg);
    if (rc < 0) return -1;
    say("setup transport=%s", tls->name);
    return 0;
}

static void free_transport(void)
{
#ifdef KA_HAVE_OPENSSL
    if (strcmp(opt.adapter, "openssl") == 0) ka_openssl_free(tls);
#endif
#ifdef KA_HAVE_MBEDTLS
    if (strcmp(opt.adapter, "mbedtls") == 0) ka_mbedtls_free(tls);
#endif
    tls = NULL;
}

static int parse(int argc, char **argv)
{
    int i;
    opt.adapter = "openssl";
    opt.mode = "lines";
    opt.text = "ping";
    opt.lifetime_ms = 20000;
    opt.bulk_bytes = 16u << 20;
    opt.msg_size = 16384;
    opt.cycles = 1000;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--insecure") == 0) { opt.insecure = 1; continue; }
        if (strcmp(a, "-N") == 0) { opt.nodelay = 1; continue; }
        if (!v) return -1;
        i++;
        if (strcmp(a, "-a") == 0) opt.adapter = v;
        else if (strcmp(a, "-h") == 0) opt.host = v;
        else if (strcmp(a, "-p") == 0) opt.port = v;
        else if (strcmp(a, "-m") == 0) opt.mode = v;
        else if (strcmp(a, "-s") == 0) opt.text = v;
        else if (strcmp(a, "--cafile") == 0) opt.cafile = v;
        else if (strcmp(a, "--cert") == 0) opt.cert = v;
        else if (strcmp(a, "--key") == 0) opt.key = v;
        else if (strcmp(a, "--servername") == 0) opt.servername = v;
        else if (strcmp(a, "-n") == 0) opt.lines_wanted = opt.cycles = atol(v);
        else if (strcmp(a, "-T") == 0) opt.lifetime_ms = atol(v);
        else if (strcmp(a, "-I") == 0) opt.idle = (unsigned)atol(v);
        else if (strcmp(a, "-V") == 0) opt.intvl = (unsigned)atol(v);
        else if (strcmp(a, "-C") == 0) opt.cnt = (unsigned)atol(v);
        else if (strcmp(a, "-U") == 0) opt.uto = (unsigned)atol(v);
        else if (strcmp(a, "-B") == 0) opt.backoff = (unsigned)atol(v);
        else if (strcmp(a, "-A") == 0) opt.attempts = (unsigned)atol(v);
        else if (strcmp(a, "-t") == 0) opt.ctimeout = (unsigned)atol(v);
        else if (strcmp(a, "-b") == 0) opt.bulk_bytes = strtoull(v, NULL, 10);
        else if (strcmp(a, "-M") == 0) opt.msg_size = (size_t)atol(v);
        else if (strcmp(a, "-H") == 0) opt.hold_at = strtoull(v, NULL, 10);
        else return -1;
    }
    return opt.host && opt.port && opt.msg_size ? 0 : -1;
}

static void configure(ka_config *cfg)
{
    ka_config_init(cfg);
    cfg->host = opt.host;
    cfg->port = opt.port;
    cfg->transport = tls;
    if (opt.idle) cfg->keepalive_idle_ms = opt.idle;
    if (opt.intvl) cfg->keepalive_interval_ms = opt.intvl;
    if (opt.cnt) cfg->keepalive_count = opt.cnt;
    if (opt.uto) cfg->user_timeout_ms = opt.uto;
    if (opt.ctimeout) cfg->connect_timeout_ms = opt.ctimeout;
    if (opt.backoff) {
        cfg->backoff_initial_ms = opt.backoff;
        cfg->backoff_max_ms = opt.backoff * 4;
        cfg->backoff_jitter = 0;
    }
    cfg->max_attempts = opt.attempts;
    cfg->cb.on_connect = on_connect;
    cfg->cb.on_data = on_data;
    cfg->cb.on_disconnect = on_disconnect;
    cfg->cb.on_retry = on_retry;
    cfg->cb.on_give_up = on_give_up;
    if (opt.nodelay) cfg->cb.on_configure = on_configure;
    if (strcmp(opt.mode, "bulk") == 0) {
        cfg->replay_until_acked = 1;
        cfg->send_buffer_size = opt.msg_size * 32;
    }
    if (strcmp(opt.mode, "soak") == 0) {
        cfg->backoff_initial_ms = cfg->backoff_max_ms = 1;    /* reconnect at once, every time */
        cfg->backoff_jitter = 0;
    }
}

/* select() on the client and stdin, until done or the lifetime is over. */
static void run(void)
{
    int in_open = 1;
    unsigned long long end = t_start + (unsigned long long)opt.lifetime_ms;
    while (!done && now_ms() < end && ka_client_state(cli) != KA_STATE_STOPPED) {
        fd_set rd, wr;
        struct timeval tv;
        long wait = ka_client_timeout_ms(cli), left = (long)(end - now_ms());
        int nfds;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        nfds = ka_client_fdset(cli, &rd, &wr);
        if (in_open) {
            FD_SET(0, &rd);
            if (nfds < 1) nfds = 1;
        }
        if (wait < 0 || wait > left) wait = left;
        if (wait > 100) wait = 100;
        tv.tv_sec = wait / 1000;
        tv.tv_usec = (wait % 1000) * 1000;
        if (select(nfds, &rd, &wr, NULL, &tv) < 0 && errno != EINTR) break;
        if (in_open && FD_ISSET(0, &rd)) {
            char l[700];
            if (fgets(l, sizeof l, stdin)) command(l);
            else in_open = 0;
        }
        ka_client_process(cli, &rd, &wr);
        if (strcmp(opt.mode, "bulk") == 0 && !done) bulk_fill();
    }
}

int main(int argc, char **argv)
{
    ka_config cfg;
    int rc;
    t_start = now_ms();
    setvbuf(stdin, NULL, _IONBF, 0);
    if (parse(argc, argv) != 0) {
        fprintf(stderr, "usage: tls_client -a openssl|mbedtls|plain -h HOST -p PORT [options]; see the source\n");
        return 2;
    }
    if (make_transport() != 0) return 3;
    configure(&cfg);
    if (strcmp(opt.mode, "bulk") == 0) {
        total_msgs = opt.bulk_bytes / opt.msg_size;
        msgbuf = (unsigned char *)malloc(opt.msg_size);
    }
    if ((rc = ka_client_new(&cli, &cfg)) != 0 || (rc = ka_client_start(cli)) != 0) {
        say("setup client rc=%d %s", rc, ka_strerror(rc));
        return 3;
    }
    run();
    if (strcmp(opt.mode, "bulk") == 0)
        say("bulk verified=%llu of=%llu connects=%ld", acked_msgs * opt.msg_size, total_msgs * opt.msg_size, connects);
    if (strcmp(opt.mode, "soak") == 0)
        say("soak cycles=%ld fds=%ld..%ld rss_kib=%ld..%ld", cycle, fds_at_start, count_fds(), rss_at_start, rss_kib());
    {
        ka_tls_stats st;
        tls_stats(&st);
        say("exit done=%d failed=%d lines=%ld connects=%ld losses=%ld retries=%ld handshakes=%lu resumed=%lu tls_failed=%lu",
            done, failed, lines, connects, losses, retries, st.handshakes, st.resumed, st.failed);
    }
    ka_client_free(cli);
    free_transport();
    free(msgbuf);
    return done && !failed ? 0 : 1;
}
