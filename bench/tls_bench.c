/* tls_bench: TLS through ka_client and its adapters, timed.
 *
 *   tls_bench hs   -a ADAPTER -h HOST -p PORT --cafile F -n N -r 0|1
 *       N handshakes, each a new client that sends a line and waits for its
 *       echo (s_server -rev), so that TLS 1.3 tickets, which come after the
 *       handshake, are read; -r 1 keeps one transport (its session cache:
 *       resumed after the first), -r 0 a new transport each time (always
 *       full). Prints the medians of the adapter's own figures: time from
 *       open to the session being up, bytes each way, round trips.
 *   tls_bench probe -a ADAPTER -p 1
 *       exits 0 if the adapter is built in.
 *   tls_bench rtt  -a ADAPTER|plain|raw -h HOST -p PORT --cafile F -n N -s SIZE
 *       N round trips of SIZE bytes through an echo server, one at a time;
 *       prints the median and the 99th percentile. raw: a blocking
 *       OpenSSL loop (SSL_write, then SSL_read until the echo is back), the
 *       floor a select()-driven client is compared with.
 *   tls_bench rtt  -a cmd -p 1 -n N -s SIZE -- COMMAND [ARG...]
 *       the same through a client program that speaks TLS on its own
 *       (socat - OPENSSL:..., openssl s_client -quiet ...): SIZE bytes
 *       into its standard input, the echo read back from its standard
 *       output, so two pipe hops each way are part of the figure. Each
 *       message is a line (SIZE - 1 bytes and a newline).
 *   tls_bench bulk -a ADAPTER|plain -h HOST -p PORT --cafile F -b BYTES
 *       BYTES to a sink that closes once it has read everything; the time
 *       from start to the sink's close, in MiB/s.
 *
 * Every client sets TCP_NODELAY (on_configure), as request/response
 * programs over TLS should. Output: one line "key=value ...". */

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ka_client.h"
#ifdef KA_HAVE_OPENSSL
#include <openssl/ssl.h>
#include "ka_openssl.h"
#endif
#ifdef KA_HAVE_MBEDTLS
#include "ka_mbedtls.h"
#endif

static const char *adapter = "openssl", *host = "127.0.0.1", *port, *cafile;
static long count = 1000, size = 64, resume = 1;
static unsigned long long bulk_bytes = 256ull << 20;
static char **command;                  /* after "--": the client program of -a cmd */

static unsigned long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000u + (unsigned long long)ts.tv_nsec / 1000u;
}

static int cmp_ul(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return x < y ? -1 : x > y;
}

static unsigned long pct(unsigned long *v, long n, int p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_ul);
    return v[(n - 1) * p / 100];
}

/* ---- transports ---- */

static ka_transport *tp_new(void)
{
    ka_transport *t = NULL;
    char msg[300];
    int rc = -1;
#ifdef KA_HAVE_OPENSSL
    if (strcmp(adapter, "openssl") == 0) rc = ka_openssl_from_args(&t, 1, cafile, NULL, NULL, NULL, 0, msg, sizeof msg);
#endif
#ifdef KA_HAVE_MBEDTLS
    if (strcmp(adapter, "mbedtls") == 0) rc = ka_mbedtls_from_args(&t, 1, cafile, NULL, NULL, NULL, 0, msg, sizeof msg);
#endif
    if (strcmp(adapter, "plain") == 0) return NULL;
    if (rc != 0) {
        fprintf(stderr, "tls_bench: %s: %s\n", adapter, rc == -1 ? "adapter not built in" : msg);
        exit(3);
    }
    return t;
}

static void tp_free(ka_transport *t)
{
#ifdef KA_HAVE_OPENSSL
    if (strcmp(adapter, "openssl") == 0) ka_openssl_free(t);
#endif
#ifdef KA_HAVE_MBEDTLS
    if (strcmp(adapter, "mbedtls") == 0) ka_mbedtls_free(t);
#endif
    (void)t;
}

static void tp_stats(ka_transport *t, ka_tls_stats *st)
{
    memset(st, 0, sizeof *st);
#ifdef KA_HAVE_OPENSSL
    if (strcmp(adapter, "openssl") == 0) ka_openssl_stats(t, st);
#endif
#ifdef KA_HAVE_MBEDTLS
    if (strcmp(adapter, "mbedtls") == 0) ka_mbedtls_stats(t, st);
#endif
    (void)t;
}

/* ---- one client ---- */

static struct {
    int connected, closed;
    unsigned long long got;             /* bytes echoed */
} ev;

static void on_connect(ka_client *c, void *u) { (void)c; (void)u; ev.connected++; }
static void on_data(ka_client *c, const void *d, size_t n, void *u) { (void)c; (void)d; (void)u; ev.got += n; }
static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *u) { (void)c; (void)di; (void)u; ev.closed++; }

static int on_configure(ka_client *c, ka_socket s, void *u)
{
    int one = 1;
    (void)c; (void)u;
    return setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 ? 0 : errno;
}

static ka_client *client_new(ka_transport *t, size_t sndbuf)
{
    ka_config cfg;
    ka_client *c;
    ka_config_init(&cfg);
    cfg.host = host;
    cfg.port = port;
    cfg.transport = t;
    cfg.backoff_initial_ms = 10;
    cfg.max_attempts = 3;
    if (sndbuf) cfg.send_buffer_size = sndbuf;
    cfg.recv_buffer_size = 65536;
    cfg.cb.on_connect = on_connect;
    cfg.cb.on_data = on_data;
    cfg.cb.on_disconnect = on_disconnect;
    cfg.cb.on_configure = on_configure;
    memset(&ev, 0, sizeof ev);
    if (ka_client_new(&c, &cfg) != 0 || ka_client_start(c) != 0) {
        fprintf(stderr, "tls_bench: client setup failed\n");
        exit(3);
    }
    return c;
}

static void poll_until(ka_client *c, const int *flag, int want)
{
    unsigned long long end = now_us() + 10000000u;
    while (*flag < want) {
        if (now_us() > end || ka_client_state(c) == KA_STATE_STOPPED) {
            fprintf(stderr, "tls_bench: no connection\n");
            exit(1);
        }
        ka_client_poll(c, 100);
    }
}

/* ---- hs ---- */

static void bench_hs(void)
{
    unsigned long *us = calloc((size_t)count, sizeof *us), *in = calloc((size_t)count, sizeof *in);
    unsigned long *out = calloc((size_t)count, sizeof *out), *rt = calloc((size_t)count, sizeof *rt);
    ka_transport *t = NULL;
    ka_tls_stats st;
    long i, resumed = 0;
    for (i = 0; i < count; i++) {
        ka_client *c;
        if (!t) t = tp_new();
        c = client_new(t, 0);
        poll_until(c, &ev.connected, 1);
        tp_stats(t, &st);
        ka_client_send(c, "x\n", 2);
        while (ev.got < 2 && ka_client_state(c) == KA_STATE_CONNECTED) ka_client_poll(c, 100);
        us[i] = st.last_us;
        in[i] = st.last_bytes_in;
        out[i] = st.last_bytes_out;
        rt[i] = st.last_round_trips;
        resumed += st.last_resumed;
        ka_client_free(c);
        if (!resume) {
            tp_free(t);
            t = NULL;
        }
    }
    /* the first handshake of a resuming run is a full one: leave it out */
    i = resume && count > 1 ? 1 : 0;
    printf("mode=hs adapter=%s resume=%ld n=%ld resumed=%ld median_us=%lu p99_us=%lu bytes_in=%lu bytes_out=%lu round_trips=%lu\n",
           adapter, resume, count - i, resumed, pct(us + i, count - i, 50), pct(us + i, count - i, 99),
           pct(in + i, count - i, 50), pct(out + i, count - i, 50), pct(rt + i, count - i, 50));
    tp_free(t);
    free(us); free(in); free(out); free(rt);
}

/* ---- rtt ---- */

static void report_rtt(const char *who, unsigned long *v)
{
    printf("mode=rtt adapter=%s size=%ld n=%ld median_us=%lu p99_us=%lu\n", who, size, count, pct(v, count, 50), pct(v, count, 99));
}

static void bench_rtt(void)
{
    unsigned long *v = calloc((size_t)count, sizeof *v);
    char *msg = malloc((size_t)size);
    ka_transport *t = tp_new();
    ka_client *c = client_new(t, 0);
    long i;
    memset(msg, 'x', (size_t)size);
    poll_until(c, &ev.connected, 1);
    for (i = -50; i < count; i++) {     /* 50 rounds of warm-up */
        unsigned long long t0 = now_us(), want = ev.got + (unsigned long long)size, end = t0 + 5000000u;
        ka_client_send(c, msg, (size_t)size);
        while (ev.got < want && now_us() < end) ka_client_poll(c, 100);
        if (ev.got < want) { fprintf(stderr, "tls_bench: echo lost\n"); exit(1); }
        if (i >= 0) v[i] = (unsigned long)(now_us() - t0);
    }
    report_rtt(adapter, v);
    ka_client_free(c);
    tp_free(t);
    free(v); free(msg);
}

#ifdef KA_HAVE_OPENSSL
/* The floor: one blocking socket, SSL_write then SSL_read until the echo is back. */
static void bench_rtt_raw(void)
{
    struct addrinfo hints, *ai;
    unsigned long *v = calloc((size_t)count, sizeof *v);
    char *msg = malloc((size_t)size), *buf = malloc((size_t)size);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl;
    long i;
    int s, one = 1;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0) exit(3);
    s = socket(ai->ai_family, SOCK_STREAM, 0);
    if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) != 0) { perror("tls_bench: connect"); exit(3); }
    freeaddrinfo(ai);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL_CTX_load_verify_locations(ctx, cafile, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, s);
    SSL_set1_host(ssl, host);
    if (SSL_connect(ssl) != 1) { fprintf(stderr, "tls_bench: raw handshake failed\n"); exit(3); }
    memset(msg, 'x', (size_t)size);
    for (i = -50; i < count; i++) {
        unsigned long long t0 = now_us();
        long got = 0;
        if (SSL_write(ssl, msg, (int)size) != size) exit(1);
        while (got < size) {
            int n = SSL_read(ssl, buf, (int)(size - got));
            if (n <= 0) exit(1);
            got += n;
        }
        if (i >= 0) v[i] = (unsigned long)(now_us() - t0);
    }
    report_rtt("raw-openssl", v);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(s);
    free(v); free(msg); free(buf);
}
#endif

/* A client program of its own, driven through pipes; its stderr is ours. */
static void bench_rtt_cmd(void)
{
    unsigned long *v = calloc((size_t)count, sizeof *v);
    char *msg = malloc((size_t)size), *buf = malloc((size_t)size);
    int in[2], out[2];
    long i;
    pid_t pid;
    if (!command || pipe(in) != 0 || pipe(out) != 0) exit(2);
    if ((pid = fork()) < 0) exit(3);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execvp(command[0], command);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    memset(msg, 'x', (size_t)size);
    msg[size - 1] = '\n';              /* a line: s_client forwards its input line by line */
    for (i = -50; i < count; i++) {     /* the first round waits for the handshake too */
        unsigned long long t0 = now_us();
        long got = 0;
        if (write(in[1], msg, (size_t)size) != size) { fprintf(stderr, "tls_bench: %s: write failed\n", command[0]); exit(1); }
        while (got < size) {
            ssize_t n = read(out[0], buf, (size_t)(size - got));
            if (n <= 0) { fprintf(stderr, "tls_bench: %s: no echo\n", command[0]); exit(1); }
            got += n;
        }
        if (i >= 0) v[i] = (unsigned long)(now_us() - t0);
    }
    report_rtt(command[0], v);
    close(in[1]);
    close(out[0]);
    kill(pid, SIGTERM);                 /* s_client -quiet ignores the end of its input */
    waitpid(pid, NULL, 0);
    free(v); free(msg); free(buf);
}

/* ---- bulk ---- */

static void bench_bulk(void)
{
    static char chunk[65536];
    ka_transport *t = tp_new();
    ka_client *c;
    unsigned long long sent = 0, t0;
    double secs;
    memset(chunk, 'z', sizeof chunk);
    t0 = now_us();
    c = client_new(t, 1u << 20);
    while (sent < bulk_bytes && ka_client_state(c) != KA_STATE_STOPPED) {
        size_t n = bulk_bytes - sent < sizeof chunk ? (size_t)(bulk_bytes - sent) : sizeof chunk;
        if (ka_client_send(c, chunk, n) == 0) sent += n;
        else ka_client_poll(c, 100);
    }
    ka_client_finish(c);                /* close_notify and FIN once all is out; the sink then closes */
    while (ka_client_state(c) != KA_STATE_STOPPED && now_us() - t0 < 120000000u) ka_client_poll(c, 100);
    secs = (double)(now_us() - t0) / 1e6;
    printf("mode=bulk adapter=%s bytes=%llu seconds=%.3f mib_s=%.1f\n", adapter, sent, secs, (double)sent / secs / 1048576.0);
    ka_client_free(c);
    tp_free(t);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int i;
    for (i = 2; i < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--") == 0) { command = argv + i + 1; break; }
        if (i + 1 >= argc) break;
        if (strcmp(a, "-a") == 0) adapter = v;
        else if (strcmp(a, "-h") == 0) host = v;
        else if (strcmp(a, "-p") == 0) port = v;
        else if (strcmp(a, "--cafile") == 0) cafile = v;
        else if (strcmp(a, "-n") == 0) count = atol(v);
        else if (strcmp(a, "-s") == 0) size = atol(v);
        else if (strcmp(a, "-r") == 0) resume = atol(v);
        else if (strcmp(a, "-b") == 0) bulk_bytes = strtoull(v, NULL, 10);
    }
    if (!port || count < 1 || size < 1) {
        fprintf(stderr, "usage: tls_bench hs|rtt|bulk -a ADAPTER -h HOST -p PORT --cafile F [-n N] [-s SIZE] [-r 0|1] [-b BYTES] [-- COMMAND...]\n");
        return 2;
    }
    if (strcmp(mode, "probe") == 0) tp_free(tp_new());
    else if (strcmp(mode, "hs") == 0) bench_hs();
#ifdef KA_HAVE_OPENSSL
    else if (strcmp(mode, "rtt") == 0 && strcmp(adapter, "raw") == 0) bench_rtt_raw();
#endif
    else if (strcmp(mode, "rtt") == 0 && strcmp(adapter, "cmd") == 0) bench_rtt_cmd();
    else if (strcmp(mode, "rtt") == 0) bench_rtt();
    else if (strcmp(mode, "bulk") == 0) bench_bulk();
    else return 2;
    return 0;
}
