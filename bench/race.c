/* race.c: the driver every race-NAME program shares (see race.h).
 *
 *   race-NAME info
 *   race-NAME rtt -p PORT -s SIZE -n COUNT
 *   race-NAME bulk -p PORT -n BYTES
 *   race-NAME rss -p PORT -n CLIENTS [-a]   (-a: started all at once)
 *   race-NAME reconnect -p PORT -n CYCLES -d DELAY_MS [-q]
 *   race-NAME idle -p PORT -s SECONDS
 *   race-NAME detect -h HOST -p PORT -k default|tight -T BOUND_MS
 *
 * Every command also takes -t TAG, appended to its result keys. Results are
 * "RESULT key_TAG value" lines on stdout, commentary is "INFO ...", for
 * bench/run.sh to collect. Nothing is printed inside a timed or counted
 * loop: under `strace -c` an output line would be a system call of its own. */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "race.h"

long long race_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int race_addr(const char *host, int port, void *buf, unsigned *len)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
    memcpy(buf, &sa, sizeof sa);
    *len = sizeof sa;
    return 0;
}

int race_set_keepalive(int fd, int idle_s, int intvl_s, int cnt)
{
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0) return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s) != 0) return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s, sizeof intvl_s) != 0) return -1;
    return setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* ---- options: "-x value" pairs ---- */

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

static long long optll(char letter, long long def)
{
    const char *s = opt(letter, NULL);
    return s ? strtoll(s, NULL, 10) : def;
}

static const char *host(void) { return opt('h', "127.0.0.1"); }
static int port(void) { return (int)optll('p', 7000); }

/* "RESULT key_TAG value": -t TAG names the run (contender, size, ...) */
static void result(const char *key, double v)
{
    const char *tag = opt('t', NULL);
    printf("RESULT %s%s%s %.6g\n", key, tag ? "_" : "", tag ? tag : "", v);
}

static void na(const char *what)
{
    printf("INFO %s: %s does not apply to %s\n", race_name, what, race_name);
}

/* ---- rtt, bulk ---- */

static int cmd_rtt(void)
{
    double us = 0;
    int rc = race_rtt(host(), port(), (size_t)optll('s', 1), (long)optll('n', 10000), &us);
    if (rc == RACE_NA) { na("round trip"); return 0; }
    if (rc != 0) { printf("INFO %s: round trip run failed\n", race_name); return 1; }
    result("rtt_us", us);
    return 0;
}

static int cmd_bulk(void)
{
    long long bytes = optll('n', 256LL << 20);
    double secs = 0;
    int rc = race_bulk(host(), port(), bytes, &secs);
    if (rc == RACE_NA) { na("bulk transfer"); return 0; }
    if (rc != 0 || secs <= 0) { printf("INFO %s: bulk run failed\n", race_name); return 1; }
    result("bulk_MiBps", (double)bytes / 1048576.0 / secs);
    return 0;
}

/* ---- rss: the resident set before and after n more idle clients ---- */

static long rss_kib(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Rss: %ld kB", &v) == 1) break;
        fclose(f);
    }
    if (v >= 0) return v;
    f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1) break;
    fclose(f);
    return v;
}

static int cmd_rss(void)
{
    int n = (int)optll('n', 1000), all = has_flag('a');
    long before, after;
    /* One client first, so that the library's code and its once-only
     * allocations are in the baseline: what is left is per client. */
    if (race_hold(host(), port(), 1, 0) != 0) { printf("INFO %s: first client failed\n", race_name); return 1; }
    rss_kib();  /* the reader's own first-use allocations, outside the difference */
    before = rss_kib();
    if (race_hold(host(), port(), n, all) != 0) { printf("INFO %s: %d clients failed\n", race_name, n); return 1; }
    after = rss_kib();
    result("rss_kib_per_client", (double)(after - before) / n);
    printf("INFO %s: RSS %ld KiB with 1 client, %ld KiB with %d more (%s)\n", race_name, before, after, n,
           all ? "started all at once" : "one at a time");
    return 0;
}

/* ---- reconnect lateness ---- */

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static int cmd_reconnect(void)
{
    int n = (int)optll('n', 20), d = (int)optll('d', 100), i, rc;
    long long *late = calloc((size_t)n, sizeof *late);
    if (!late) return 1;
    rc = race_reconnect(host(), port(), n, d, late);
    if (rc == RACE_NA) { na("reconnect"); free(late); return 0; }
    if (rc != 0) { printf("INFO %s: reconnect run failed\n", race_name); free(late); return 1; }
    if (!has_flag('q'))
        for (i = 0; i < n; i++) result("late_us", (double)late[i]);
    qsort(late, (size_t)n, sizeof *late, cmp_ll);
    printf("INFO %s: %d reconnects after %d ms: lateness min %lld, median %lld, max %lld us\n", race_name, n, d,
           late[0], late[n / 2], late[n - 1]);
    free(late);
    return 0;
}

/* ---- idle: wake-ups of a connected client with nothing to do ---- */

static struct rusage idle_r0, idle_r1;
void race_idle_begin(void) { getrusage(RUSAGE_SELF, &idle_r0); }
void race_idle_end(void) { getrusage(RUSAGE_SELF, &idle_r1); }

static int cmd_idle(void)
{
    int secs = (int)optll('s', 30);
    int rc = race_idle(host(), port(), secs);
    if (rc == RACE_NA) { na("idle"); return 0; }
    if (rc != 0) { printf("INFO %s: idle run failed\n", race_name); return 1; }
    /* the wake-up that ends the period is the bench's own timer */
    result("idle_nvcsw", (double)(idle_r1.ru_nvcsw - idle_r0.ru_nvcsw - 1));
    printf("INFO %s: idle %d s: %ld voluntary, %ld involuntary context switches\n", race_name, secs,
           idle_r1.ru_nvcsw - idle_r0.ru_nvcsw, idle_r1.ru_nivcsw - idle_r0.ru_nivcsw);
    return 0;
}

/* ---- detect: the pulled cable, in the namespace lab ---- */

static long long det_t_rx, det_t;

static int sockopt_int(int fd, int level, int name)
{
    int v = 0;
    socklen_t l = sizeof v;
    return getsockopt(fd, level, name, &v, &l) == 0 ? v : -1;
}

/* The deadline is read back from the socket, whatever the library set or
 * left at the kernel's default, so no contender is taken at its word. */
void race_ready(int fd)
{
    int ka = sockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE);
    int idle = sockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE);
    int intvl = sockopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL);
    int cnt = sockopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT);
    int ut = sockopt_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
    if (det_t_rx) return;
    det_t_rx = race_now_us();
    printf("READY\n");
    printf("INFO %s: SO_KEEPALIVE %d, idle %d s, interval %d s, count %d, TCP_USER_TIMEOUT %d ms\n", race_name, ka,
           idle, intvl, cnt, ut);
    result("det_deadline_ms", ka > 0 ? (idle + (double)intvl * cnt) * 1000 : 0);
    fflush(stdout);
}

void race_detected(const char *what)
{
    if (det_t || !det_t_rx) return;
    det_t = race_now_us();
    result("det_ms", (double)(det_t - det_t_rx) / 1000.0);
    printf("INFO %s: reported %s\n", race_name, what);
}

static int cmd_detect(void)
{
    int tight = strcmp(opt('k', "default"), "tight") == 0;
    int bound = (int)optll('T', 60000);
    int rc = race_detect(host(), port(), tight, bound);
    result("det_bound_ms", bound);
    if (rc == RACE_NA) { na("detection"); return 0; }
    if (!det_t_rx) { printf("INFO %s: never ready\n", race_name); return 1; }
    if (!det_t) printf("INFO %s: nothing reported within %d ms\n", race_name, bound);
    return 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_nofile();
    g_argc = argc - 2;
    g_argv = argv + 2;
    if (strcmp(cmd, "info") == 0) {
        printf("NAME %s\nVERSION %s\nKEEPALIVE %s\n", race_name, race_version(), race_keepalive_note);
        return 0;
    }
    if (strcmp(cmd, "rtt") == 0) return cmd_rtt();
    if (strcmp(cmd, "bulk") == 0) return cmd_bulk();
    if (strcmp(cmd, "rss") == 0) return cmd_rss();
    if (strcmp(cmd, "reconnect") == 0) return cmd_reconnect();
    if (strcmp(cmd, "idle") == 0) return cmd_idle();
    if (strcmp(cmd, "detect") == 0) return cmd_detect();
    fprintf(stderr, "usage: %s info|rtt|bulk|rss|reconnect|idle|detect [options]\n", argv[0]);
    return 2;
}
