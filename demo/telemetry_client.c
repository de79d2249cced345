/* telemetry_client: numbered readings over one kept-alive connection, each
 * kept until the server has acknowledged it. What a sensor that must not
 * lose a reading builds on ka_client.
 *
 *   telemetry_client [options] HOST PORT
 *
 *   --lines N       readings to send (default 1000)
 *   --every MS      one reading every MS ms (default 10; 0: all at once)
 *   --login NAME    open every connection with "LOGIN NAME"
 *   --hold          with --login: send nothing else until the server says "OK"
 *   --deadline S    give up after S seconds (default 60): exit 1
 *   --verbose       every ACK and the library's diagnostics
 *
 * Reading N goes out as the line "N temp=..." and the server answers
 * "ACK N". The library keeps every line the kernel took until
 * ka_client_ack() says the server has it (replay_until_acked): when the
 * server restarts, crashes or is killed, what it had not acknowledged goes
 * again, whole and in order, at the start of the next connection. A reading
 * may so arrive twice (the server got it, its ACK did not come back), never
 * not at all; a reading the server acknowledged is never sent again.
 *
 * The LOGIN goes from on_connect, so it opens every connection, ahead of
 * the readings queued while the server was away. With --hold
 * (hold_until_ready) those wait until the server answers "OK" and the
 * client calls ka_client_ready(): a server that wants to check who is
 * calling sees nothing else first.
 *
 * Readings made while there is no connection are queued (send_buffer_size
 * bounds the queue together with what awaits its ACK); when it is full, the
 * sensor waits, as a real one would block or sample less often.
 *
 * Exit 0 once every reading is acknowledged and the server has seen the
 * end (ka_client_finish); 1 when --deadline passes first; 2 bad usage.
 * Status on stderr. Builds wherever ka_client does (demo_os.h).
 */
#include "demo_os.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "ka_client.h"

#define LINE_CAP 128

typedef struct app {
    ka_client *c;
    const char *host, *port, *login;
    unsigned long lines;            /* readings to send */
    unsigned every_ms, deadline_s;
    int hold, verbose;
    unsigned long made;             /* readings handed to ka_client_send */
    unsigned long acked;            /* readings 1..acked are confirmed */
    unsigned long long next_at;     /* when the next reading is due */
    unsigned connections;
    int session_ready;              /* this connection's OK came (or no --hold) */
    int finishing, failed, said_queued;
    char in[LINE_CAP];              /* a line from the server, being read */
    size_t inlen;
} app;

static void say(const char *fmt, ...)
{
    char t[32];
    va_list ap;
    clock_text(t, sizeof t);
    fprintf(stderr, "telemetry: %s ", t);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- the server's answers ---- */

/* "ACK N" confirms every reading up to N: the server answers in order, so
 * N - acked readings are done, the oldest the library holds. */
static void take_ack(app *a, unsigned long n)
{
    int rc;
    if (n <= a->acked) return;              /* an answer to a reading sent twice */
    if (n > a->made) { say("ACK %lu for a reading not made yet: ignored", n); return; }
    rc = ka_client_ack(a->c, (size_t)(n - a->acked));
    if (rc != 0) { say("ACK %lu: ka_client_ack: %s", n, ka_strerror(rc)); return; }
    a->acked = n;
    if (a->verbose) say("ACK %lu", n);
}

static void take_line(app *a, const char *line)
{
    if (strncmp(line, "ACK ", 4) == 0) {
        take_ack(a, strtoul(line + 4, NULL, 10));
    } else if (strcmp(line, "OK") == 0) {
        if (a->hold) say("the server said OK: the backlog goes now (%lu bytes)", (unsigned long)ka_client_pending(a->c));
        ka_client_ready(a->c);
        a->session_ready = 1;
    } else {
        say("the server said '%s'", line);
    }
}

static void on_data(ka_client *c, const void *data, size_t len, void *user)
{
    app *a = (app *)user;
    const char *p = (const char *)data;
    size_t i;
    (void)c;
    for (i = 0; i < len; i++) {
        if (p[i] == '\r') continue;
        if (p[i] != '\n') {
            if (a->inlen < sizeof a->in - 1) a->in[a->inlen++] = p[i];
            continue;
        }
        a->in[a->inlen] = 0;
        a->inlen = 0;
        take_line(a, a->in);
    }
}

/* ---- the connection ---- */

static void on_connect(ka_client *c, void *user)
{
    app *a = (app *)user;
    char line[LINE_CAP];
    a->connections++;
    a->inlen = 0;
    a->session_ready = !a->hold;
    say("connected (connection %u); %lu bytes queued", a->connections, (unsigned long)ka_client_pending(c));
    if (!a->login) return;
    snprintf(line, sizeof line, "LOGIN %s\n", a->login);
    if (ka_client_send(c, line, strlen(line)) != 0) say("cannot send LOGIN");
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *user)
{
    app *a = (app *)user;
    if (a->finishing && ka_client_state(c) == KA_STATE_STOPPED) {
        say("the server closed after our end: done (%s)", ka_reason_str(di->reason));
        return;
    }
    if (a->acked < a->made)
        say("connection lost after %lu ms: %s (%s); readings %lu..%lu not acknowledged: they go again",
            di->connected_ms, ka_reason_str(di->reason), ka_sys_strerror(di->reason, di->sys_error), a->acked + 1, a->made);
    else
        say("connection lost after %lu ms: %s (%s); every reading so far acknowledged",
            di->connected_ms, ka_reason_str(di->reason), ka_sys_strerror(di->reason, di->sys_error));
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *user)
{
    (void)c; (void)user;
    say("reconnecting in %u ms (%s)", ri->delay_ms, ka_reason_str(ri->reason));
}

static void on_log(ka_client *c, int level, const char *msg, void *user)
{
    app *a = (app *)user;
    (void)c;
    if (level >= KA_LOG_WARN || a->verbose) say("%s", msg);
}

/* ---- the sensor ---- */

/* Makes the readings that are due. A full queue holds the sensor back:
 * that reading is made again on the next round. So does a connection
 * whose OK has not come yet: what is sent then belongs to the session's
 * handshake (ka_client_send puts it ahead of the backlog and does not keep
 * it for replay), so readings wait for the OK, or for the connection to
 * go, which makes them backlog again. */
static void make_readings(app *a)
{
    char line[LINE_CAP];
    unsigned long long now = now_ms();
    if (ka_client_state(a->c) == KA_STATE_CONNECTED && !a->session_ready) return;
    while (a->made < a->lines && (a->every_ms == 0 || now >= a->next_at)) {
        unsigned long n = a->made + 1;
        int rc;
        snprintf(line, sizeof line, "%lu temp=%d.%d\n", n, 18 + (int)(n % 7), (int)(n % 10));
        rc = ka_client_send(a->c, line, strlen(line));
        if (rc == KA_EAGAIN) return;
        if (rc != 0) { say("ka_client_send: %s", ka_strerror(rc)); a->failed = 1; return; }
        a->made = n;
        a->next_at = (a->next_at ? a->next_at : now) + a->every_ms;
    }
    if (a->made == a->lines && !a->said_queued && ka_client_state(a->c) != KA_STATE_CONNECTED) {
        say("all %lu readings made; %lu bytes wait for the server", a->made, (unsigned long)ka_client_pending(a->c));
        a->said_queued = 1;
    }
}

/* The end: every reading confirmed. ka_client_finish sends the FIN; the
 * server closes in turn and the client stops. */
static void finish_when_done(app *a)
{
    int rc;
    if (a->finishing || a->acked < a->lines) return;
    say("all %lu readings acknowledged, over %u connection%s", a->lines, a->connections, a->connections == 1 ? "" : "s");
    rc = ka_client_finish(a->c);
    if (rc != 0) say("ka_client_finish: %s", ka_strerror(rc));
    a->finishing = 1;
}

static long wait_ms(const app *a)
{
    long t = ka_client_timeout_ms(a->c);
    if (a->made < a->lines && a->every_ms) {
        unsigned long long now = now_ms();
        long d = a->next_at > now ? (long)(a->next_at - now) : 0;
        if (t < 0 || d < t) t = d;
    }
    if (t < 0 || t > 200) t = 200;      /* the deadline is checked at least this often */
    return t;
}

/* ---- start-up ---- */

static int usage(void)
{
    fputs("usage: telemetry_client [--lines N] [--every MS] [--login NAME] [--hold] [--deadline S] [--verbose] HOST PORT\n", stderr);
    return 2;
}

static int parse_args(app *a, int argc, char **argv)
{
    int i, npos = 0;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(o, "--hold") == 0) a->hold = 1;
        else if (strcmp(o, "--verbose") == 0) a->verbose = 1;
        else if (strcmp(o, "--lines") == 0 && has_value) a->lines = strtoul(argv[++i], NULL, 10);
        else if (strcmp(o, "--every") == 0 && has_value) a->every_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(o, "--deadline") == 0 && has_value) a->deadline_s = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(o, "--login") == 0 && has_value) a->login = argv[++i];
        else if (o[0] == '-') return -1;
        else if (npos == 0) { a->host = o; npos++; }
        else if (npos == 1) { a->port = o; npos++; }
        else return -1;
    }
    if (npos != 2 || a->lines == 0 || (a->hold && !a->login)) return -1;
    return 0;
}

/* Fast reconnects, for a demo whose server restarts every second: a
 * connection up 300 ms starts the backoff over. (A fleet of sensors would
 * start at seconds and cap at minutes, so that a server coming back is not
 * met by all of them at once.) A dead server is found within 2 + 1 * 3 s. */
static void configure(app *a, ka_config *cfg)
{
    ka_config_init(cfg);
    cfg->host = a->host;
    cfg->port = a->port;
    cfg->replay_until_acked = 1;
    cfg->hold_until_ready = a->hold;
    cfg->send_buffer_size = 256 * 1024;
    cfg->backoff_initial_ms = 100;
    cfg->backoff_max_ms = 1000;
    cfg->backoff_reset_ms = 300;
    cfg->keepalive_idle_ms = 2000;
    cfg->keepalive_interval_ms = 1000;
    cfg->keepalive_count = 3;
    cfg->cb.on_connect = on_connect;
    cfg->cb.on_data = on_data;
    cfg->cb.on_disconnect = on_disconnect;
    cfg->cb.on_retry = on_retry;
    cfg->cb.on_log = on_log;
    cfg->user = a;
}

int main(int argc, char **argv)
{
    app a;
    ka_config cfg;
    unsigned long long give_up_at;
    int rc;
    memset(&a, 0, sizeof a);
    a.lines = 1000;
    a.every_ms = 10;
    a.deadline_s = 60;
    if (parse_args(&a, argc, argv) != 0) return usage();
    configure(&a, &cfg);
    if ((rc = ka_client_new(&a.c, &cfg)) != 0 || (rc = ka_client_start(a.c)) != 0) {
        fprintf(stderr, "telemetry: %s (%s)\n", ka_strerror(rc), ka_config_error(&cfg) ? ka_config_error(&cfg) : "start");
        return rc == KA_EINVAL ? 2 : 1;
    }
    give_up_at = now_ms() + a.deadline_s * 1000ull;
    while (ka_client_state(a.c) != KA_STATE_STOPPED && !a.failed && now_ms() < give_up_at) {
        make_readings(&a);
        finish_when_done(&a);
        ka_client_poll(a.c, (int)wait_ms(&a));
    }
    rc = a.acked == a.lines ? 0 : 1;
    if (rc) say("gave up: %lu of %lu readings acknowledged (%lu made)", a.acked, a.lines, a.made);
    ka_client_free(a.c);
    return rc;
}
