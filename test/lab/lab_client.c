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
 *   mark WORD   print "<ms> mark WORD"
 *   send N      queue N bytes ('x') with ka_client_send
 *   quit        stop and exit (so does end of input)
 *
 * The loop is the application's own select() over stdin and the client's
 * socket (ka_client_fdset / ka_client_timeout_ms / ka_client_process), and
 * the program always exits after -T milliseconds. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/select.h>
#include <sys/time.h>

#include "ka_client.h"
#include "testlib.h"

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
    }
    return "UNKNOWN";
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

/* ---- callbacks: each prints one line ---- */

static void on_connect(ka_client *c, void *u)
{
    (void)c; (void)u;
    event("connect");
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

static void on_log(ka_client *c, int level, const char *msg, void *u)
{
    (void)c; (void)u;
    if (level >= KA_LOG_WARN) event("warning %s", msg);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: lab_client -h HOST -p PORT [-i idle_ms] [-v interval_ms] [-c count]\n"
            "                  [-u user_timeout_ms] [-C connect_timeout_ms] [-b backoff_initial_ms]\n"
            "                  [-B backoff_max_ms] [-j jitter] [-I idle_timeout_ms]\n"
            "                  [-H heartbeat_interval_ms] [-T lifetime_ms]\n"
            "commands on stdin: mark WORD | send N | quit\n");
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
    unsigned n;
    line[strcspn(line, "\r\n")] = '\0';
    if (strncmp(line, "mark ", 5) == 0) { event("mark %s", line + 5); return 0; }
    if (strncmp(line, "send ", 5) == 0) {
        n = num(line + 5);
        if (n > sizeof payload) n = sizeof payload;
        memset(payload, 'x', n);
        event("send n=%u rc=%d", n, ka_client_send(c, payload, n));
        return 0;
    }
    if (strcmp(line, "quit") == 0) return 1;
    event("unknown-command %s", line);
    return 0;
}

int main(int argc, char **argv)
{
    ka_config cfg;
    ka_client *c = NULL;
    unsigned lifetime_ms = 30000;
    unsigned long long end;
    char line[256];
    size_t llen = 0;
    int opt, in_open = 1, quit = 0;

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
    while ((opt = getopt(argc, argv, "h:p:i:v:c:u:C:b:B:j:I:H:T:")) != -1) {
        switch (opt) {
        case 'h': cfg.host = optarg; break;
        case 'p': cfg.port = optarg; break;
        case 'i': cfg.keepalive_idle_ms = num(optarg); break;
        case 'v': cfg.keepalive_interval_ms = num(optarg); break;
        case 'c': cfg.keepalive_count = num(optarg); break;
        case 'u': cfg.user_timeout_ms = num(optarg); break;
        case 'C': cfg.connect_timeout_ms = num(optarg); break;
        case 'b': cfg.backoff_initial_ms = num(optarg); break;
        case 'B': cfg.backoff_max_ms = num(optarg); break;
        case 'j': cfg.backoff_jitter = atof(optarg); break;
        case 'I': cfg.idle_timeout_ms = num(optarg); break;
        case 'H': cfg.heartbeat_interval_ms = num(optarg); cfg.heartbeat_data = "hb\n"; cfg.heartbeat_len = 3; break;
        case 'T': lifetime_ms = num(optarg); break;
        default: usage();
        }
    }
    if (!cfg.host || !cfg.port) usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_net_init();

    if (ka_client_new(&c, &cfg) != KA_OK) { event("error ka_client_new"); return 1; }
    event("start");
    if (ka_client_start(c) != KA_OK) { event("error ka_client_start"); ka_client_free(c); return 1; }

    end = t_now_ms() + lifetime_ms;
    while (!quit && t_now_ms() < end) {
        fd_set rd, wr;
        struct timeval tv;
        long t = ka_client_timeout_ms(c), left = (long)(end - t_now_ms());
        int nfds, n;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        if (in_open) FD_SET(STDIN_FILENO, &rd);
        nfds = ka_client_fdset(c, &rd, &wr);
        if (nfds < STDIN_FILENO + 1) nfds = STDIN_FILENO + 1;
        if (t < 0 || t > left) t = left;
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
        if (ka_client_process(c, &rd, &wr) == KA_ESTATE) break;
    }
    ka_client_stop(c);
    ka_client_free(c);
    event("exit");
    return 0;
}
