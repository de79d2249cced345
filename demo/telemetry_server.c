/* telemetry_server: the other end of demo/telemetry_client. It takes
 * numbered lines, answers each with "ACK N\n", and keeps a log that
 * survives its own death, so that across any number of restarts (clean or
 * killed) it can say how many lines arrived, how many never did, and how
 * many came twice.
 *
 *   telemetry_server --port N --log FILE [--host ADDR] [--ok-after MS]
 *                    [--ack-after MS] [--lines N]
 *   telemetry_server --log FILE --report [--lines N]
 *
 * The protocol, one line each way:
 *   client  "LOGIN name"      server  "OK" (after --ok-after ms; 0: at once)
 *   client  "17 temp=21.5"    server  "ACK 17", once the line is in the log
 * "ACK N" confirms every line up to N. With --ack-after MS the server
 * confirms in batches, at most every MS ms (as one that commits to disk
 * now and then would): a server killed in between has lines it took and
 * never confirmed, and those come again. On SIGTERM it confirms what it
 * has before it goes.
 *
 * The log (FILE, appended to, one write(2) per record, so a SIGKILL never
 * leaves half a record) holds what happened, in order:
 *   start PID             a server process began
 *   conn                  a client connected
 *   login NAME            its LOGIN line
 *   ok EARLY              OK sent; EARLY bytes had come after LOGIN and before it
 *   got N                 line N arrived (before its ACK is written)
 *   ack N                 "ACK N" was handed to the kernel: lines up to N confirmed
 *   eof                   the client closed
 *   stop SIGNAL           SIGTERM or SIGINT: the summary follows on stdout
 * A line that arrives again after an "ack" of it or a later line was
 * logged was resent although the server had confirmed it; ka_client's
 * replay_until_acked must never do that, and the summary counts it
 * separately. (The client sends its lines in order and again from its
 * oldest unconfirmed one, so what has been confirmed is always lines 1 to
 * the highest "ack".)
 *
 * --report reads the log and prints the summary without listening:
 *   "telemetry_server: 1000 lines received, 0 lost, 7 duplicated (0 after
 *   their ACK), 11 connections, 10 server starts"
 * --lines N says how many were sent (for "lost"); by default the highest
 * number seen.
 *
 * One client at a time; a new connection replaces the old one (the client
 * reconnected, the old one is dead). POSIX only.
 */
#include "demo_os.h"
#include <netinet/in.h>
#include <ctype.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_LEN 256
#define MAX_LINES    10000000ul     /* a bound on line numbers, so a bad one cannot blow up the tables */

/* What the log says about each line number, and about the run. */
typedef struct tally {
    unsigned char *seen;            /* per line: 0, 1, 2 (more than once) */
    unsigned long cap;              /* entries in it */
    unsigned long acked;            /* lines 1..acked are confirmed */
    unsigned long highest, distinct, dups, dups_after_ack;
    unsigned long conns, starts;
} tally;

typedef struct server {
    const char *host, *port, *log_path;
    unsigned ok_after_ms, ack_after_ms;
    unsigned long lines;            /* --lines: how many were sent; 0 = the highest seen */
    int lfd, cfd, logfd;
    char in[LINE_MAX_LEN];          /* a line being read */
    size_t inlen;
    int ok_pending;                 /* LOGIN seen, OK not sent yet */
    unsigned long long ok_at;
    unsigned long early;            /* bytes after LOGIN and before OK */
    unsigned long took, confirmed;  /* highest line taken, and confirmed, on this connection */
    unsigned long long ack_at;      /* when the next batch of ACKs is due; 0: none waiting */
    tally t;
} server;

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("telemetry_server: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* ---- the tally, fed by the log's records, old and new alike ---- */

static int tally_grow(tally *t, unsigned long n)
{
    unsigned long cap = t->cap ? t->cap : 4096;
    unsigned char *s;
    if (n < t->cap) return 0;
    if (n >= MAX_LINES) return -1;
    while (cap <= n) cap *= 2;
    s = (unsigned char *)realloc(t->seen, cap);
    if (!s) return -1;
    memset(s + t->cap, 0, cap - t->cap);
    t->seen = s;
    t->cap = cap;
    return 0;
}

static void tally_record(tally *t, const char *rec)
{
    unsigned long n;
    if (strncmp(rec, "start ", 6) == 0) { t->starts++; return; }
    if (strcmp(rec, "conn") == 0) { t->conns++; return; }
    if (sscanf(rec, "got %lu", &n) == 1 && n > 0 && tally_grow(t, n) == 0) {
        if (t->seen[n]) {
            t->dups++;
            if (n <= t->acked) t->dups_after_ack++;
        } else {
            t->distinct++;
        }
        if (t->seen[n] < 2) t->seen[n]++;
        if (n > t->highest) t->highest = n;
        return;
    }
    if (sscanf(rec, "ack %lu", &n) == 1 && n > t->acked) t->acked = n;
}

/* An earlier run's records, so the counts span every restart. */
static void tally_load(tally *t, const char *path)
{
    char rec[LINE_MAX_LEN + 32];
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(rec, sizeof rec, f)) {
        rec[strcspn(rec, "\n")] = 0;
        tally_record(t, rec);
    }
    fclose(f);
}

static void tally_print(const tally *t, unsigned long lines)
{
    unsigned long want = lines ? lines : t->highest, lost = 0, i;
    for (i = 1; i <= want; i++)
        if (i >= t->cap || !t->seen[i]) lost++;
    printf("telemetry_server: %lu lines received, %lu lost, %lu duplicated (%lu after their ACK), "
           "%lu connection%s, %lu server start%s\n",
           t->distinct, lost, t->dups, t->dups_after_ack, t->conns, t->conns == 1 ? "" : "s",
           t->starts, t->starts == 1 ? "" : "s");
    fflush(stdout);
}

/* ---- the log: one record per write(2), appended ---- */

static void log_rec(server *sv, const char *fmt, ...)
{
    char rec[LINE_MAX_LEN + 32];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(rec, sizeof rec - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof rec - 2) n = (int)sizeof rec - 2;
    tally_record(&sv->t, rec);
    rec[n++] = '\n';
    if (write(sv->logfd, rec, (size_t)n) != n) die("writing %s: %s", sv->log_path, strerror(errno));
}

/* ---- the connection ---- */

static void drop_client(server *sv, const char *why)
{
    if (sv->cfd < 0) return;
    close(sv->cfd);
    sv->cfd = -1;
    log_rec(sv, "%s", why);
}

/* Blocking, but bounded (SO_SNDTIMEO): the answers are short, and a client
 * that does not read them for that long is dropped; it will come back and
 * have its lines acknowledged then. */
static void send_text(server *sv, const char *text)
{
    size_t len = strlen(text), off = 0;
    while (off < len && sv->cfd >= 0) {
        ssize_t n = send(sv->cfd, text + off, len - off, MSG_NOSIGNAL);
        if (n > 0) { off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        drop_client(sv, "reset");
    }
}

static void send_ok(server *sv)
{
    sv->ok_pending = 0;
    send_text(sv, "OK\n");
    log_rec(sv, "ok %lu", sv->early);
}

/* "ACK N" for everything taken on this connection so far. */
static void send_ack(server *sv)
{
    char ack[40];
    sv->ack_at = 0;
    if (sv->took <= sv->confirmed) return;
    snprintf(ack, sizeof ack, "ACK %lu\n", sv->took);
    send_text(sv, ack);
    if (sv->cfd < 0) return;
    sv->confirmed = sv->took;
    log_rec(sv, "ack %lu", sv->took);
}

/* One whole line from the client. */
static void take_line(server *sv, char *line)
{
    unsigned long n;
    char *end;
    if (strncmp(line, "LOGIN ", 6) == 0) {
        log_rec(sv, "login %s", line + 6);
        sv->early = 0;
        sv->ok_pending = 1;
        sv->ok_at = now_ms() + sv->ok_after_ms;
        if (!sv->ok_after_ms) send_ok(sv);
        return;
    }
    n = strtoul(line, &end, 10);
    if (!isdigit((unsigned char)line[0]) || n == 0 || (*end && *end != ' ')) {
        log_rec(sv, "junk %.40s", line);
        return;
    }
    log_rec(sv, "got %lu", n);
    if (n > sv->took) sv->took = n;
    if (!sv->ack_after_ms) send_ack(sv);
    else if (!sv->ack_at) sv->ack_at = now_ms() + sv->ack_after_ms;
}

/* Splits what arrived into lines; a line longer than LINE_MAX_LEN is cut. */
static void take_bytes(server *sv, const char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n && sv->cfd >= 0; i++) {
        if (sv->ok_pending) sv->early++;
        if (p[i] != '\n') {
            if (sv->inlen < sizeof sv->in - 1) sv->in[sv->inlen++] = p[i];
            continue;
        }
        sv->in[sv->inlen] = 0;
        sv->inlen = 0;
        take_line(sv, sv->in);
    }
}

static void accept_client(server *sv)
{
    struct timeval tv;
    int fd = accept(sv->lfd, NULL, NULL);
    if (fd < 0) return;
    tv.tv_sec = 2;
    tv.tv_usec = 0;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    drop_client(sv, "replaced");
    sv->cfd = fd;
    sv->inlen = 0;
    sv->ok_pending = 0;
    sv->took = sv->confirmed = 0;
    sv->ack_at = 0;
    log_rec(sv, "conn");
}

static void read_client(server *sv)
{
    char buf[4096];
    ssize_t n = recv(sv->cfd, buf, sizeof buf, 0);
    if (n > 0) take_bytes(sv, buf, (size_t)n);
    else if (n == 0) drop_client(sv, "eof");
    else if (errno != EINTR) drop_client(sv, "reset");
}

/* ---- start-up ---- */

static int open_listener(const char *host, const char *port)
{
    struct addrinfo hints, *ai = NULL;
    int fd, one = 1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    if (getaddrinfo(host, port, &hints, &ai) != 0) return -1;
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void usage(void)
{
    fputs("usage: telemetry_server --port N --log FILE [--host ADDR] [--ok-after MS] [--ack-after MS] [--lines N]\n"
          "       telemetry_server --log FILE --report [--lines N]\n", stderr);
    exit(2);
}

static void parse_args(server *sv, int argc, char **argv, int *report)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--report") == 0) { *report = 1; continue; }
        if (i + 1 >= argc) usage();
        if (strcmp(o, "--port") == 0) sv->port = argv[++i];
        else if (strcmp(o, "--host") == 0) sv->host = argv[++i];
        else if (strcmp(o, "--log") == 0) sv->log_path = argv[++i];
        else if (strcmp(o, "--ok-after") == 0) sv->ok_after_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(o, "--ack-after") == 0) sv->ack_after_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(o, "--lines") == 0) sv->lines = strtoul(argv[++i], NULL, 10);
        else usage();
    }
    if (!sv->log_path || (!*report && !sv->port)) usage();
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;          /* no SA_RESTART: select() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Milliseconds until `at`, folded into the wait t (-1: none yet). */
static long sooner(long t, unsigned long long at)
{
    unsigned long long now = now_ms();
    long d = at > now ? (long)(at - now) : 0;
    return t < 0 || d < t ? d : t;
}

/* Waits for the listener, the client, the OK's time or the ACKs'. */
static void serve_once(server *sv)
{
    fd_set rd;
    long t = -1;
    int nfds = sv->lfd + 1;
    FD_ZERO(&rd);
    FD_SET(sv->lfd, &rd);
    if (sv->cfd >= 0) {
        FD_SET(sv->cfd, &rd);
        if (sv->cfd + 1 > nfds) nfds = sv->cfd + 1;
        if (sv->ok_pending) t = sooner(t, sv->ok_at);
        if (sv->ack_at) t = sooner(t, sv->ack_at);
    }
    if (wait_sockets(nfds, &rd, NULL, NULL, t) < 0) return;     /* a signal: the loop looks */
    if (sv->cfd >= 0 && FD_ISSET(sv->cfd, &rd)) read_client(sv);
    if (FD_ISSET(sv->lfd, &rd)) accept_client(sv);
    if (sv->cfd >= 0 && sv->ok_pending && now_ms() >= sv->ok_at) send_ok(sv);
    if (sv->cfd >= 0 && sv->ack_at && now_ms() >= sv->ack_at) send_ack(sv);
}

int main(int argc, char **argv)
{
    server sv;
    int report = 0;
    memset(&sv, 0, sizeof sv);
    sv.host = "127.0.0.1";
    sv.cfd = -1;
    parse_args(&sv, argc, argv, &report);
    tally_load(&sv.t, sv.log_path);
    if (report) { tally_print(&sv.t, sv.lines); return 0; }
    catch_signals();
    sv.logfd = open(sv.log_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (sv.logfd < 0) die("cannot open %s: %s", sv.log_path, strerror(errno));
    sv.lfd = open_listener(sv.host, sv.port);
    if (sv.lfd < 0) die("cannot listen on %s port %s: %s", sv.host, sv.port, strerror(errno));
    log_rec(&sv, "start %ld", (long)getpid());
    printf("telemetry_server: listening on %s:%s\n", sv.host, sv.port);
    fflush(stdout);
    while (!got_signal) serve_once(&sv);
    if (sv.cfd >= 0) send_ack(&sv);     /* a clean stop confirms what it took */
    log_rec(&sv, "stop %d", (int)got_signal);
    tally_print(&sv.t, sv.lines);
    return 0;
}
