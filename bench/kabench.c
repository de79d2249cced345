/* kabench: ka_client's own measurements behind `make bench`, the ones no
 * other library has a counterpart for (the side-by-side race is race.c).
 *
 * One binary, one subcommand per measurement. Each prints its numbers as
 * "RESULT key value" lines on stdout (bench/run.sh collects them; everything
 * else it prints is commentary) and always ends within its -T / size bound.
 *
 *   detect  -h H -p P -i -v -c [-b] -T -t   one ka_client, measures detection
 *   rawbusy -h H -p P -i -v -c -T -t        plain socket, keepalive, no user timeout, busy
 *   storm   -n clients -j jitter [-o file]  reconnect storm against a restarting server
 *   rss     -- prog args...                 runs prog, prints its peak RSS
 *   trace   -h H -p P -u -r -T -o -e [-t]   streams, samples ka_client_stats and on_health
 *                                           through a cable pulled between SIGUSR1 and SIGUSR2
 *   acceptor -p P -T                        accepts on every address (IPv4 and IPv6) and
 *                                           closes at once: the connect-time server
 *   connect -h NAME -p P -n -C -t           time from ka_client_start to on_connect, n runs
 *   dnsout  -h NAME -p P -s -R -t           restart a client in a select() loop while its
 *                                           resolver is dark; the longest library call
 *   idle    -h H -p P -s [-w] -t            wake-ups of an idle healthy connection (on_health
 *                                           set with -w)
 *
 * Bench-only code: built with -D_GNU_SOURCE for pthreads and tcp_info. */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ka_client.h"

/* ---- helpers ---------------------------------------------------------------- */

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
    fprintf(stderr, "kabench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

/* Listening socket on addr:port (port 0 = ephemeral); *port_out gets the port. */
static int listen_on(const char *addr, int port, int backlog, int *port_out)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int on = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, addr, &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("bind");
    if (listen(fd, backlog) != 0) die("listen");
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    if (port_out) *port_out = ntohs(sa.sin_port);
    return fd;
}

static int connect_to(const char *addr, int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, addr, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
    return fd;
}

static const char *reason_name(ka_reason r)
{
    static const char *const n[] = { "NONE", "PEER_CLOSED", "PEER_RESET", "TIMEOUT", "UNREACHABLE", "REFUSED",
                                     "CONNECT_TIMEOUT", "RESOLVE", "HEARTBEAT", "LOCAL", "ERROR", "STALLED",
                                     "ABORTED", "TLS" };
    return (unsigned)r < sizeof n / sizeof n[0] ? n[r] : "?";
}

/* Options: -x value pairs, looked up by letter. */
static int g_argc;
static char **g_argv;
static const char *opt(char letter, const char *def)
{
    int i;
    for (i = 0; i + 1 < g_argc; i++)
        if (g_argv[i][0] == '-' && g_argv[i][1] == letter && g_argv[i][2] == '\0') return g_argv[i + 1];
    return def;
}
static int has_flag(char letter)
{
    int i;
    for (i = 0; i < g_argc; i++)
        if (g_argv[i][0] == '-' && g_argv[i][1] == letter && g_argv[i][2] == '\0') return 1;
    return 0;
}
static long optl(char letter, long def) { const char *s = opt(letter, NULL); return s ? strtol(s, NULL, 10) : def; }

/* ---- detect: one ka_client; kernel error (watcher thread) vs on_disconnect --------- */

static struct {
    int dupfd;
    pthread_t th;
    int th_started;
    volatile long long t_watch;       /* watcher thread saw POLLERR/POLLHUP */
    volatile long long last_ack_ms;   /* tcpi_last_ack_recv right then */
    volatile int watch_state;
    long long t_cb, t_select, t_rx;
    int ready, done, busy;
    ka_disconnect_info di;
} D;

static void *watcher(void *arg)
{
    struct pollfd p;
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    (void)arg;
    p.fd = D.dupfd; p.events = 0; p.revents = 0;   /* ERR and HUP only */
    while (poll(&p, 1, 100) == 0 && !D.done) { }
    D.t_watch = now_us();
    memset(&ti, 0, sizeof ti);
    if (getsockopt(D.dupfd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0) {
        D.last_ack_ms = ti.tcpi_last_ack_recv;
        D.watch_state = ti.tcpi_state;
    }
    return NULL;
}

static void d_connect(ka_client *c, void *u)
{
    (void)u;
    if (D.th_started) return;
    D.dupfd = dup(ka_client_socket(c));
    if (pthread_create(&D.th, NULL, watcher, NULL) == 0) D.th_started = 1;
    ka_client_send(c, "hello\n", 6);
}

static void d_data(ka_client *c, const void *d, size_t n, void *u)
{
    (void)c; (void)d; (void)n; (void)u;
    D.t_rx = now_us();
    if (!D.ready) { D.ready = 1; printf("READY\n"); fflush(stdout); }
}

static void d_disconnect(ka_client *c, const ka_disconnect_info *di, void *u)
{
    (void)c; (void)u;
    D.t_cb = now_us();
    D.di = *di;
    D.done = 1;
}

static void fill_keepalive(ka_config *cfg)
{
    cfg->keepalive_idle_ms = (unsigned)optl('i', 1000);
    cfg->keepalive_interval_ms = (unsigned)optl('v', 1000);
    cfg->keepalive_count = (unsigned)optl('c', 3);
}

static int cmd_detect(void)
{
    ka_config cfg;
    ka_client *c;
    long long end = now_us() + optl('T', 30000) * 1000, next_send = 0;
    const char *tag = opt('t', "x");
    static char chunk[1024];
    long long deadline_ms;
    ka_config_init(&cfg);
    cfg.host = opt('h', "127.0.0.1");
    cfg.port = opt('p', "7000");
    fill_keepalive(&cfg);
    cfg.backoff_initial_ms = 60000;
    cfg.backoff_max_ms = 60000;
    cfg.send_buffer_size = 1 << 20;
    cfg.cb.on_connect = d_connect;
    cfg.cb.on_data = d_data;
    cfg.cb.on_disconnect = d_disconnect;
    D.busy = has_flag('b');
    memset(chunk, 'b', sizeof chunk);
    if (ka_client_new(&c, &cfg) != 0 || ka_client_start(c) != 0) { fprintf(stderr, "detect: start failed\n"); return 1; }
    while (!D.done && now_us() < end) {
        fd_set rd, wr;
        struct timeval tv;
        long t = ka_client_timeout_ms(c), left = (long)((end - now_us()) / 1000) + 1;
        int nfds, n;
        if (D.busy && D.ready) {
            long long now = now_us();
            if (now >= next_send) { ka_client_send(c, chunk, sizeof chunk); next_send = now + 10000; }
            if (t < 0 || t > 10) t = 10;
        }
        if (t < 0 || t > left) t = left;
        FD_ZERO(&rd); FD_ZERO(&wr);
        nfds = ka_client_fdset(c, &rd, &wr);
        tv.tv_sec = t / 1000; tv.tv_usec = (t % 1000) * 1000;
        n = select(nfds, &rd, &wr, NULL, &tv);
        D.t_select = now_us();
        if (n < 0 && errno != EINTR) break;
        ka_client_process(c, n > 0 ? &rd : NULL, n > 0 ? &wr : NULL);
    }
    D.done = 1;
    if (D.th_started) pthread_join(D.th, NULL);
    deadline_ms = (long long)cfg.keepalive_idle_ms + (long long)cfg.keepalive_interval_ms * cfg.keepalive_count;
    if (D.t_cb && D.t_watch) {
        /* detection: time since the last thing heard from the peer, at the
         * moment the kernel reported the error, plus our delay after that */
        double det_ms = (double)D.last_ack_ms + (double)(D.t_cb - D.t_watch) / 1000.0;
        printf("RESULT det_ratio_%s %.4f\n", tag, det_ms / (double)deadline_ms);
        printf("RESULT det_ms_%s %.1f\n", tag, det_ms);
        printf("RESULT det_overhead_us_%s %lld\n", tag, D.t_cb - D.t_watch);
        printf("RESULT det_libproc_us_%s %lld\n", tag, D.t_cb - D.t_select);
        printf("INFO %s reason=%s errno=%d since_rx_ms=%.1f last_ack_ms=%lld tcp_state=%d unsent=%lu\n", tag,
               reason_name(D.di.reason), D.di.sys_error, (double)(D.t_cb - D.t_rx) / 1000.0, D.last_ack_ms,
               D.watch_state, (unsigned long)D.di.unsent_bytes);
    } else {
        printf("INFO %s no detection within the time limit (ready=%d)\n", tag, D.ready);
    }
    if (D.dupfd > 0) close(D.dupfd);
    ka_client_free(c);
    return 0;
}

/* ---- rawbusy: what a plain socket does without TCP_USER_TIMEOUT ------------------ */

static int cmd_rawbusy(void)
{
    int fd = connect_to(opt('h', "127.0.0.1"), (int)optl('p', 7000));
    int on = 1, idle = (int)optl('i', 1000) / 1000, intvl = (int)optl('v', 1000) / 1000, cnt = (int)optl('c', 3);
    long long end = now_us() + optl('T', 30000) * 1000, next_send = 0, t_err = 0;
    const char *tag = opt('t', "raw");
    char chunk[1024], buf[65536];
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    int ready = 0, err = 0;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    nonblock(fd);
    memset(chunk, 'r', sizeof chunk);
    send(fd, "hello\n", 6, MSG_NOSIGNAL);
    while (now_us() < end) {
        struct pollfd p;
        long long now = now_us();
        p.fd = fd; p.events = POLLIN; p.revents = 0;
        if (ready && now >= next_send) {
            if (send(fd, chunk, sizeof chunk, MSG_NOSIGNAL) < 0 && errno != EAGAIN) { t_err = now_us(); err = errno; break; }
            next_send = now + 10000;
        }
        if (poll(&p, 1, 10) <= 0) continue;
        if (p.revents & (POLLERR | POLLHUP)) { t_err = now_us(); break; }
        if (p.revents & POLLIN) {
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0 && errno != EAGAIN) { t_err = now_us(); err = r < 0 ? errno : 0; break; }
            if (!ready) { ready = 1; printf("READY\n"); fflush(stdout); }
        }
    }
    memset(&ti, 0, sizeof ti);
    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl);
    if (t_err) {
        socklen_t el = sizeof err;
        if (!err) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        printf("RESULT det_ms_%s %u\n", tag, ti.tcpi_last_ack_recv);
        printf("INFO %s errno=%d (%s) last_ack_ms=%u retransmits=%u\n", tag, err, strerror(err), ti.tcpi_last_ack_recv,
               (unsigned)ti.tcpi_total_retrans);
    } else {
        printf("INFO %s no detection within the time limit (ready=%d)\n", tag, ready);
    }
    close(fd);
    return 0;
}

/* ---- storm: N clients in one poll() loop, one server that restarts ----------------- */

#define STORM_MAX_EV 200000
static long long S_t0;
static int S_attempts[STORM_MAX_EV];   /* ms since restart of each connect attempt */
static int S_nattempts, S_connected, S_counting, S_lost;
static long long S_last_connect;

static void s_log(ka_client *c, int level, const char *msg, void *u)
{
    (void)c; (void)u;
    if (level == KA_LOG_DEBUG && strncmp(msg, "connecting", 10) == 0 && S_counting && S_nattempts < STORM_MAX_EV)
        S_attempts[S_nattempts++] = (int)((now_us() - S_t0) / 1000);
}
static void s_connect(ka_client *c, void *u) { (void)c; (void)u; S_connected++; S_last_connect = now_us(); }
static void s_disconnect(ka_client *c, const ka_disconnect_info *di, void *u) { (void)c; (void)di; (void)u; S_connected--; if (S_counting) S_lost++; }

static void storm_server(int l, int port, int ctl, int nmax, int down_ms)
{
    int *fds = calloc((size_t)nmax + 16, sizeof(int)), n = 0, i, restarted = 0;
    long long end = now_us() + 60 * 1000000LL;
    nonblock(l);
    while (now_us() < end) {
        struct pollfd p[2];
        p[0].fd = ctl; p[0].events = POLLIN; p[0].revents = 0;
        p[1].fd = l; p[1].events = POLLIN; p[1].revents = 0;
        if (poll(p, 2, 200) < 0) continue;
        if (p[0].revents) {
            char ch = 'q';
            if (read(ctl, &ch, 1) <= 0 || ch == 'q' || restarted) break;
            /* restart: every connection and the listener gone, back after down_ms */
            close(l);
            for (i = 0; i < n; i++) close(fds[i]);
            n = 0;
            usleep((useconds_t)down_ms * 1000);
            l = listen_on("127.0.0.1", port, 4096, NULL);
            nonblock(l);
            restarted = 1;
            continue;
        }
        if (p[1].revents) {
            int fd;
            while ((fd = accept(l, NULL, NULL)) >= 0) {
                if (n < nmax + 16) fds[n++] = fd; else close(fd);
            }
        }
    }
    _exit(0);
}

/* The picture's data: one line per 100 ms window, its start in seconds
 * since the restart and the connect attempts in it. */
static void storm_write_windows(const char *path, const long *win, long nwin)
{
    long i;
    FILE *f = fopen(path, "w");
    if (!f) { printf("INFO storm: cannot write %s\n", path); return; }
    for (i = 0; i <= nwin; i++) fprintf(f, "%.1f %ld\n", (double)i / 10.0, win[i]);
    fclose(f);
}

static int cmd_storm(void)
{
    int nc = (int)optl('n', 1000), down = (int)optl('D', 1200), port, l, ctl[2], i, w;
    double jit = atof(opt('j', "0.5"));
    ka_client **cl;
    struct pollfd *pf;
    int *idx;
    pid_t srv;
    char portstr[16];
    ka_config cfg;
    struct rlimit rl;
    long long end;
    long total_ms, nwin, peak = 0, *win;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)(nc * 2 + 64)) {
        rl.rlim_cur = (rlim_t)(nc * 2 + 64);
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max) rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)(nc * 2 + 64)) { printf("INFO storm: RLIMIT_NOFILE %lu too low\n", (unsigned long)rl.rlim_cur); return 2; }
    l = listen_on("127.0.0.1", 0, 4096, &port);
    if (pipe(ctl) != 0) die("pipe");
    srv = fork();
    if (srv == 0) { close(ctl[1]); storm_server(l, port, ctl[0], nc, down); }
    close(ctl[0]);
    close(l);
    snprintf(portstr, sizeof portstr, "%d", port);
    ka_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = portstr;
    cfg.backoff_initial_ms = 500;
    cfg.backoff_max_ms = 4000;
    cfg.backoff_jitter = jit;
    cfg.backoff_reset_ms = 300;
    cfg.send_buffer_size = 256;
    cfg.recv_buffer_size = 256;
    cfg.cb.on_log = s_log;
    cfg.cb.on_connect = s_connect;
    cfg.cb.on_disconnect = s_disconnect;
    cl = calloc((size_t)nc, sizeof *cl);
    pf = calloc((size_t)nc, sizeof *pf);
    idx = calloc((size_t)nc, sizeof *idx);
    if (!cl || !pf || !idx) return 1;
    for (i = 0; i < nc; i++) {
        cfg.random_seed = (unsigned)(i * 2654435761u + 1u);
        if (ka_client_new(&cl[i], &cfg) != 0 || ka_client_start(cl[i]) != 0) { printf("INFO storm: client %d failed\n", i); return 1; }
    }
    end = now_us() + 60 * 1000000LL;
    for (;;) {
        long long now = now_us();
        int np = 0, rc;
        long tmo = 100;
        if (now > end) break;
        /* phase 1: everyone up for longer than backoff_reset_ms, then restart */
        if (!S_counting && S_connected == nc) {
            long long up_since = now;
            while (now_us() < up_since + 400000) { usleep(50000); }
            S_t0 = now_us();
            S_counting = 1;
            if (write(ctl[1], "r", 1) != 1) break;
        }
        /* done when every client has lost its connection and is back */
        if (S_counting && S_lost >= nc && S_connected == nc) break;
        if (S_counting && now - S_t0 > 20 * 1000000LL) break;
        for (i = 0; i < nc; i++) {
            int want = ka_client_want(cl[i]);
            long t = ka_client_timeout_ms(cl[i]);
            if (t >= 0 && t < tmo) tmo = t;
            if (!want) continue;
            pf[np].fd = ka_client_socket(cl[i]);
            pf[np].events = (short)(((want & KA_READ) ? POLLIN : 0) | ((want & KA_WRITE) ? POLLOUT : 0));
            pf[np].revents = 0;
            idx[np++] = i;
        }
        rc = poll(pf, (nfds_t)np, (int)tmo);
        if (rc < 0 && errno != EINTR) break;
        for (w = 0; w < np; w++) {
            short re = pf[w].revents;
            int ready = ((re & (POLLIN | POLLERR | POLLHUP)) ? KA_READ : 0) | ((re & (POLLOUT | POLLERR)) ? KA_WRITE : 0);
            if (ready) ka_client_process_events(cl[idx[w]], ready);
        }
        for (i = 0; i < nc; i++)
            if (ka_client_timeout_ms(cl[i]) == 0) ka_client_process_events(cl[i], 0);
    }
    if (write(ctl[1], "q", 1) != 1) { }
    for (i = 0; i < nc; i++) ka_client_free(cl[i]);
    waitpid(srv, NULL, 0);
    if (!S_counting || S_lost < nc || S_connected != nc) {
        printf("INFO storm: not all reconnected (%d of %d, %d lost)\n", S_connected, nc, S_lost);
        return 1;
    }
    if (S_nattempts == 0) {
        printf("INFO storm: no connect attempt seen (on_log gave no \"connecting\" line)\n");
        return 1;
    }
    /* 100 ms windows from the restart to the last reconnect */
    total_ms = (long)((S_last_connect - S_t0) / 1000) + 1;
    nwin = (total_ms + 99) / 100;
    win = calloc((size_t)nwin + 1, sizeof *win);
    for (i = 0; i < S_nattempts; i++) {
        long k = S_attempts[i] / 100;
        if (k > nwin) k = nwin;
        win[k]++;
    }
    for (i = 0; i <= nwin; i++) if (win[i] > peak) peak = win[i];
    if (opt('o', NULL)) storm_write_windows(opt('o', NULL), win, nwin);
    {
        double mean = (double)S_nattempts / (double)nwin;
        char tag[16];
        snprintf(tag, sizeof tag, "j%.1f", jit);
        printf("RESULT storm_peak_%s %ld\n", tag, peak);
        printf("RESULT storm_mean_%s %.1f\n", tag, mean);
        printf("RESULT storm_peak_mean_%s %.2f\n", tag, (double)peak / mean);
        printf("RESULT storm_attempts_%s %d\n", tag, S_nattempts);
        printf("RESULT storm_all_back_ms_%s %ld\n", tag, total_ms);
        printf("INFO storm %s: %d clients, %d attempts in %ld windows of 100 ms, peak %ld\n", tag, nc, S_nattempts, nwin, peak);
    }
    free(win);
    free(cl); free(pf); free(idx);
    return 0;
}

/* ---- rss: peak resident set of a child ------------------------------------------- */

static int cmd_rss(int argc, char **argv)
{
    int i, st;
    struct rusage ru;
    pid_t pid;
    for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) { }
    if (i + 1 >= argc) return 2;
    pid = fork();
    if (pid == 0) { execvp(argv[i + 1], argv + i + 1); _exit(127); }
    if (wait4(pid, &st, 0, &ru) < 0) die("wait4");
    printf("RESULT rss_kib_%s %ld\n", opt('t', "prog"), ru.ru_maxrss);
    printf("INFO rss exit status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

/* ---- trace: a cable pulled under load, as the library reports it ----------------------
 * One client streams RATE bytes/s in 1 KiB messages through the lab and
 * samples ka_client_stats every 20 ms; on_health and on_disconnect are
 * stamped. The driver sends SIGUSR1 just before it pulls the cable and
 * SIGUSR2 once the pull has returned, so the picture's zero is the pull.
 * Writes the samples (-o: seconds from the pull, RTT and its variation in
 * ms, retransmissions of the oldest data, segments retransmitted, KiB
 * unacknowledged, KiB in the kernel's send queue) and the marks as gnuplot
 * assignments (-e). */

#define TRACE_MAX 4096

static struct {
    volatile sig_atomic_t pull, pulled;
    long long t_pull, t_pulled;          /* read after the flags are seen */
    long long t_start, t_warn, t_good, t_end;
    ka_health warn;
    ka_disconnect_info di;
    int connected, ended, n;
    struct { long long t; ka_stats st; } s[TRACE_MAX];
} TR;

static void tr_usr1(int sig) { (void)sig; TR.pull = 1; }
static void tr_usr2(int sig) { (void)sig; TR.pulled = 1; }

static void tr_connect(ka_client *c, void *u) { (void)c; (void)u; TR.connected = 1; }

static void tr_health(ka_client *c, const ka_health *h, void *u)
{
    (void)c; (void)u;
    if (h->degraded && !TR.t_warn && TR.pull) { TR.t_warn = now_us(); TR.warn = *h; }
    if (!h->degraded && TR.t_warn && !TR.t_good) TR.t_good = now_us();
    printf("INFO trace: %.3f s health degraded=%d cause=%u unacked_ms=%lu rtt_us=%lu retransmits=%lu deadline_ms=%lu\n",
           (double)(now_us() - TR.t_start) / 1e6, h->degraded, h->cause, h->unacked_ms, h->rtt_us, h->retransmits,
           h->deadline_ms);
}

static void tr_disconnect(ka_client *c, const ka_disconnect_info *di, void *u)
{
    (void)c; (void)u;
    if (!TR.ended) { TR.ended = 1; TR.t_end = now_us(); TR.di = *di; }
}

static void tr_sample(ka_client *c)
{
    if (TR.n == TRACE_MAX || ka_client_state(c) != KA_STATE_CONNECTED) return;
    TR.s[TR.n].st.size = sizeof TR.s[TR.n].st;
    if (ka_client_stats(c, &TR.s[TR.n].st) != 0) return;
    TR.s[TR.n++].t = now_us();
}

static double tr_sec(long long t) { return (double)(t - TR.t_pull) / 1e6; }

static void tr_write(const char *data, const char *marks, unsigned busy_ms)
{
    FILE *f;
    int i;
    if (data && (f = fopen(data, "w")) != NULL) {
        fprintf(f, "# s_from_pull rtt_ms rttvar_ms retransmits total_retrans unacked_kib send_queue_kib\n");
        for (i = 0; i < TR.n; i++) {
            const ka_stats *st = &TR.s[i].st;
            fprintf(f, "%.3f %.3f %.3f %lu %lu %.1f %.1f\n", tr_sec(TR.s[i].t), st->rtt_us / 1000.0,
                    st->rttvar_us / 1000.0, st->retransmits, st->total_retrans, st->unacked_bytes / 1024.0,
                    st->send_queue_bytes / 1024.0);
        }
        fclose(f);
    }
    if (marks && (f = fopen(marks, "w")) != NULL) {
        fprintf(f, "pulled = %.3f\nwarn = %.3f\ndeadline = %.3f\nended = %.3f\nbusy = %u\ntmin = %.3f\n",
                tr_sec(TR.t_pulled), tr_sec(TR.t_warn), tr_sec(TR.t_warn) + TR.warn.deadline_ms / 1000.0,
                tr_sec(TR.t_end), busy_ms, TR.n ? tr_sec(TR.s[0].t) : -2.0);
        fclose(f);
    }
}

static int cmd_trace(void)
{
    ka_config cfg;
    ka_client *c;
    struct sigaction sa;
    static char chunk[1024];
    const char *tag = opt('t', "trace");
    double rate = (double)optl('r', 100000), credit = 0;
    long long end, last = 0, next_sample = 0, ready_at = 0;
    ka_config_init(&cfg);
    cfg.host = opt('h', "127.0.0.1");
    cfg.port = opt('p', "7000");
    cfg.user_timeout_ms = (unsigned)optl('u', 8000);
    cfg.backoff_initial_ms = cfg.backoff_max_ms = 60000;
    cfg.send_buffer_size = 1 << 20;
    cfg.cb.on_connect = tr_connect;
    cfg.cb.on_health = tr_health;
    cfg.cb.on_disconnect = tr_disconnect;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = tr_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = tr_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    memset(chunk, 't', sizeof chunk);
    TR.t_start = now_us();
    end = TR.t_start + optl('T', 30000) * 1000;
    if (ka_client_new(&c, &cfg) != 0 || ka_client_start(c) != 0) { fprintf(stderr, "trace: start failed\n"); return 1; }
    while (!TR.ended && now_us() < end) {
        fd_set rd, wr;
        struct timeval tv;
        long long now = now_us();
        int nfds, n;
        /* the signals' moments, stamped here: the handlers only set flags */
        if (TR.pull && !TR.t_pull) TR.t_pull = now;
        if (TR.pulled && !TR.t_pulled) TR.t_pulled = now;
        if (TR.connected) {
            credit += last ? rate * (double)(now - last) / 1e6 : 0;
            if (credit > rate) credit = rate;
            while (credit >= sizeof chunk && ka_client_send(c, chunk, sizeof chunk) == KA_OK) credit -= sizeof chunk;
            last = now;
            if (!ready_at) ready_at = now + 1000000;
            if (ready_at > 0 && now >= ready_at) { printf("READY\n"); ready_at = -1; }
        }
        if (now >= next_sample) { tr_sample(c); next_sample = now + 20000; }
        FD_ZERO(&rd); FD_ZERO(&wr);
        nfds = ka_client_fdset(c, &rd, &wr);
        tv.tv_sec = 0; tv.tv_usec = 10000;
        n = select(nfds, &rd, &wr, NULL, &tv);
        if (n < 0 && errno != EINTR) break;
        ka_client_process(c, n > 0 ? &rd : NULL, n > 0 ? &wr : NULL);
    }
    if (!TR.t_pull || !TR.t_warn || !TR.ended) {
        printf("INFO %s: incomplete (pull %d, warning %d, end %d)\n", tag, TR.t_pull != 0, TR.t_warn != 0, TR.ended);
        ka_client_free(c);
        return 1;
    }
    tr_write(opt('o', NULL), opt('e', NULL), cfg.user_timeout_ms);
    printf("RESULT %s_warn_ms %.1f\n", tag, (double)(TR.t_warn - TR.t_pull) / 1000.0);
    printf("RESULT %s_end_ms %.1f\n", tag, (double)(TR.t_end - TR.t_pull) / 1000.0);
    printf("RESULT %s_left_at_warn_ms %lu\n", tag, TR.warn.deadline_ms);
    printf("RESULT %s_pull_cmd_ms %.1f\n", tag, (double)(TR.t_pulled - TR.t_pull) / 1000.0);
    printf("INFO %s: warning cause %u after %.0f ms (retransmits %lu, rtt %lu us, %lu ms left); %s after %.0f ms\n", tag,
           TR.warn.cause, (double)(TR.t_warn - TR.t_pull) / 1000.0, TR.warn.retransmits, TR.warn.rtt_us,
           TR.warn.deadline_ms, reason_name(TR.di.reason), (double)(TR.t_end - TR.t_pull) / 1000.0);
    ka_client_free(c);
    return 0;
}

/* ---- acceptor: the connect-time server ---------------------------------------------- */

static int cmd_acceptor(void)
{
    struct sockaddr_in6 sa;
    int on = 1, off = 0, fd = socket(AF_INET6, SOCK_STREAM, 0);
    long long end = now_us() + optl('T', 600) * 1000000;
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);    /* IPv4 too, as ::ffff:a.b.c.d */
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((unsigned short)optl('p', 7001));
    sa.sin6_addr = in6addr_any;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) die("bind/listen");
    printf("LISTENING\n");
    nonblock(fd);
    while (now_us() < end) {
        struct pollfd p;
        int s;
        p.fd = fd; p.events = POLLIN; p.revents = 0;
        if (poll(&p, 1, 200) <= 0) continue;
        while ((s = accept(fd, NULL, NULL)) >= 0) close(s);
    }
    return 0;
}

/* ---- connect: ka_client_start to on_connect ------------------------------------------- */

static int cn_connected;
static void cn_connect(ka_client *c, void *u) { (void)c; (void)u; cn_connected = 1; }

static int cmd_connect(void)
{
    int i, n = (int)optl('n', 5);
    const char *tag = opt('t', "x");
    for (i = 0; i < n; i++) {
        ka_config cfg;
        ka_client *c;
        long long t0, end;
        ka_config_init(&cfg);
        cfg.host = opt('h', "localhost");
        cfg.port = opt('p', "7001");
        cfg.connect_timeout_ms = (unsigned)optl('C', 5000);
        cfg.cb.on_connect = cn_connect;
        cn_connected = 0;
        if (ka_client_new(&c, &cfg) != 0) { fprintf(stderr, "connect: bad config\n"); return 1; }
        t0 = now_us();
        end = t0 + (long long)cfg.connect_timeout_ms * 1000 + 1000000;
        if (ka_client_start(c) != 0) { ka_client_free(c); return 1; }
        while (!cn_connected && now_us() < end) ka_client_poll(c, 50);
        if (cn_connected) printf("RESULT connect_ms_%s %.2f\n", tag, (double)(now_us() - t0) / 1000.0);
        else printf("INFO connect %s: not connected within %u ms\n", tag, cfg.connect_timeout_ms);
        ka_client_free(c);
    }
    return 0;
}

/* ---- dnsout: how long a library call holds the thread while DNS is dark ------------------
 * One client for a name whose resolver never answers, in the application's
 * own select() loop (waits of 20 ms at most) that, every 100 ms, stops and
 * starts it again and queues a message, for -s seconds. Every library call
 * is timed; select() itself, the loop's own sleep, is not. */

enum { DNS_START, DNS_STOP, DNS_SEND, DNS_FDSET, DNS_TIMEOUT, DNS_PROCESS, DNS_FREE, DNS_NCALLS };
static const char *const dns_call[DNS_NCALLS] = { "start", "stop", "send", "fdset", "timeout", "process", "free" };
static long long dns_max_us[DNS_NCALLS], dns_calls, dns_t0;

static void dns_begin(void) { dns_t0 = now_us(); }
static void dns_end(int k)
{
    long long d = now_us() - dns_t0;
    dns_calls++;
    if (d > dns_max_us[k]) dns_max_us[k] = d;
}

static int cmd_dnsout(void)
{
    long long end, next_restart;
    int k, worst = 0;
    const char *tag = opt('t', "dns");
    ka_config cfg;
    ka_client *c;
    ka_config_init(&cfg);
    cfg.host = opt('h', "dark.bench");
    cfg.port = opt('p', "7000");
    cfg.resolve_timeout_ms = (unsigned)optl('R', 1000);
    cfg.backoff_initial_ms = 100;
    cfg.backoff_max_ms = 400;
    if (ka_client_new(&c, &cfg) != 0) return 1;
    dns_begin(); ka_client_start(c); dns_end(DNS_START);
    end = now_us() + optl('s', 10) * 1000000;
    next_restart = now_us() + 100000;
    while (now_us() < end) {
        fd_set rd, wr;
        struct timeval tv;
        long t;
        int nfds, n;
        FD_ZERO(&rd); FD_ZERO(&wr);
        dns_begin(); t = ka_client_timeout_ms(c); dns_end(DNS_TIMEOUT);
        dns_begin(); nfds = ka_client_fdset(c, &rd, &wr); dns_end(DNS_FDSET);
        if (t < 0 || t > 20) t = 20;
        tv.tv_sec = 0; tv.tv_usec = t * 1000;
        n = select(nfds > 0 ? nfds : 0, &rd, &wr, NULL, &tv);
        dns_begin(); ka_client_process(c, n > 0 ? &rd : NULL, n > 0 ? &wr : NULL); dns_end(DNS_PROCESS);
        if (now_us() >= next_restart) {
            dns_begin(); ka_client_stop(c); dns_end(DNS_STOP);
            dns_begin(); ka_client_send(c, "x", 1); dns_end(DNS_SEND);
            dns_begin(); ka_client_start(c); dns_end(DNS_START);
            next_restart = now_us() + 100000;
        }
    }
    dns_begin(); ka_client_stop(c); dns_end(DNS_STOP);
    dns_begin(); ka_client_free(c); dns_end(DNS_FREE);
    for (k = 1; k < DNS_NCALLS; k++) if (dns_max_us[k] > dns_max_us[worst]) worst = k;
    printf("RESULT %s_max_call_us %lld\n", tag, dns_max_us[worst]);
    printf("INFO %s: %lld calls, longest %lld us (%s);", tag, dns_calls, dns_max_us[worst], dns_call[worst]);
    for (k = 0; k < DNS_NCALLS; k++) printf(" %s %lld", dns_call[k], dns_max_us[k]);
    printf(" us\n");
    return 0;
}

/* ---- idle: wake-ups of a healthy idle connection ------------------------------------------
 * Connects, exchanges one message (so that the link was looked at while data
 * was outstanding), waits until the client has no timer left, then lets the
 * library's loop run alone for -s seconds; the voluntary context switches
 * in between, less the one that ends the period, are its wake-ups. */

static int id_connected;
static size_t id_got;
static void id_connect(ka_client *c, void *u) { (void)u; id_connected = 1; ka_client_send(c, "hello\n", 6); }
static void id_data(ka_client *c, const void *d, size_t n, void *u) { (void)c; (void)d; (void)u; id_got += n; }
static void id_health(ka_client *c, const ka_health *h, void *u)
{
    (void)c; (void)u;
    printf("INFO idle: health degraded=%d cause=%u\n", h->degraded, h->cause);
}

static int cmd_idle(void)
{
    ka_config cfg;
    ka_client *c;
    struct rusage r0, r1;
    long long end, settle;
    const char *tag = opt('t', "idle");
    ka_config_init(&cfg);
    cfg.host = opt('h', "127.0.0.1");
    cfg.port = opt('p', "7000");
    cfg.cb.on_connect = id_connect;
    cfg.cb.on_data = id_data;
    if (has_flag('w')) cfg.cb.on_health = id_health;
    if (ka_client_new(&c, &cfg) != 0 || ka_client_start(c) != 0) return 1;
    settle = now_us() + 5000000;
    while (id_got < 6 && now_us() < settle) ka_client_poll(c, 100);
    if (id_got < 6) { printf("INFO %s: no echo\n", tag); ka_client_free(c); return 1; }
    /* the library's last look at the link (an eighth of the busy deadline
     * after the send, or 250 ms with on_health): then it has no timer */
    settle = now_us() + 10000000;
    while (ka_client_timeout_ms(c) >= 0 && now_us() < settle) ka_client_poll(c, 100);
    if (ka_client_timeout_ms(c) >= 0) printf("INFO %s: a timer is still armed (%ld ms)\n", tag, ka_client_timeout_ms(c));
    getrusage(RUSAGE_SELF, &r0);
    end = now_us() + optl('s', 30) * 1000000;
    while (now_us() < end) ka_client_poll(c, (int)((end - now_us()) / 1000) + 1);
    getrusage(RUSAGE_SELF, &r1);
    printf("RESULT %s_nvcsw %ld\n", tag, r1.ru_nvcsw - r0.ru_nvcsw - 1);
    printf("INFO %s: %ld voluntary, %ld involuntary context switches in %ld s; on_health %s\n", tag,
           r1.ru_nvcsw - r0.ru_nvcsw, r1.ru_nivcsw - r0.ru_nivcsw, optl('s', 30), cfg.cb.on_health ? "set" : "not set");
    ka_client_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) { fprintf(stderr, "usage: kabench detect|rawbusy|storm|rss|trace|acceptor|connect|dnsout|idle ...\n"); return 2; }
    g_argc = argc - 2;
    g_argv = argv + 2;
    if (strcmp(argv[1], "detect") == 0) return cmd_detect();
    if (strcmp(argv[1], "rawbusy") == 0) return cmd_rawbusy();
    if (strcmp(argv[1], "storm") == 0) return cmd_storm();
    if (strcmp(argv[1], "rss") == 0) return cmd_rss(argc - 2, argv + 2);
    if (strcmp(argv[1], "trace") == 0) return cmd_trace();
    if (strcmp(argv[1], "acceptor") == 0) return cmd_acceptor();
    if (strcmp(argv[1], "connect") == 0) return cmd_connect();
    if (strcmp(argv[1], "dnsout") == 0) return cmd_dnsout();
    if (strcmp(argv[1], "idle") == 0) return cmd_idle();
    fprintf(stderr, "kabench: unknown command %s\n", argv[1]);
    return 2;
}
