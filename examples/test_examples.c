/* The examples' tests (suite "examples"): the two retry policies through a
 * real client against a refused loopback port and a flapping server, and
 * ka_client_retry_in called from on_data, on_disconnect and on_retry. Then
 * the two example programs, run as a user would.
 *
 * Everything talks TCP on 127.0.0.1; each wait polls the client until a
 * condition holds or a deadline passes. Timing bounds are wide (other work
 * shares the machine): a delay may come late by up to LATE_MS, never
 * early. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "ka_client.h"
#include "testlib.h"
#include "retry.h"

#ifndef EX_DIR
#define EX_DIR "build/examples"     /* where mk/examples.mk puts the programs */
#endif

#define LATE_MS 300             /* how late an attempt may start on a busy machine */
#define MAX_EV 32

/* What the client did, stamped: each attempt's start (on_log "connecting"),
 * each on_retry, connects and disconnects. */
typedef struct rec {
    int attempts, retries, connects, disconnects, give_ups;
    unsigned long long attempt_ms[MAX_EV], retry_ms[MAX_EV];
    unsigned delay[MAX_EV], attempt_no[MAX_EV];
    ka_reason reason[MAX_EV];
    ka_disconnect_info last_di;
    /* the policy under test and what it handed out */
    int use_schedule;
    decorrelated_jitter jitter;
    fixed_schedule schedule;
    unsigned drawn[MAX_EV];
    int ndrawn;
    /* retry_in from callbacks: -1 = do not call */
    long retry_in_on_data, retry_in_on_disconnect, retry_in_on_retry;
    int retry_in_on_retry_times;    /* how many on_retry calls use it */
    int rc_on_data, rc_on_disconnect, rc_on_retry;
    char data[256];
    size_t dlen;
} rec;

static unsigned next_delay(ka_client *c, const ka_retry_info *ri, unsigned proposed_ms, void *user)
{
    rec *r = user;
    unsigned d;
    (void)c; (void)proposed_ms;
    d = r->use_schedule ? fixed_schedule_next(&r->schedule, ri->attempt) : decorrelated_jitter_next(&r->jitter, ri->attempt);
    if (r->ndrawn < MAX_EV) r->drawn[r->ndrawn++] = d;
    return d;
}

static void on_log(ka_client *c, int level, const char *msg, void *user)
{
    rec *r = user;
    (void)c; (void)level;
    if (strncmp(msg, "connecting", 10) == 0 && r->attempts < MAX_EV) r->attempt_ms[r->attempts++] = t_now_ms();
}

static void on_connect(ka_client *c, void *user) { (void)c; ((rec *)user)->connects++; }

static void on_data(ka_client *c, const void *data, size_t len, void *user)
{
    rec *r = user;
    unsigned ms;
    size_t room = sizeof r->data - 1 - r->dlen;
    memcpy(r->data + r->dlen, data, len < room ? len : room);
    r->dlen += len < room ? len : room;
    if (r->retry_in_on_data >= 0 && retry_after_scan(data, len, &ms)) {
        r->retry_in_on_data = ms;
        r->rc_on_data = ka_client_retry_in(c, ms);
    }
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *user)
{
    rec *r = user;
    r->disconnects++;
    r->last_di = *di;
    if (r->retry_in_on_disconnect >= 0) r->rc_on_disconnect = ka_client_retry_in(c, (unsigned)r->retry_in_on_disconnect);
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *user)
{
    rec *r = user;
    if (r->retries < MAX_EV) {
        r->retry_ms[r->retries] = t_now_ms();
        r->delay[r->retries] = ri->delay_ms;
        r->attempt_no[r->retries] = ri->attempt;
        r->reason[r->retries] = ri->reason;
    }
    r->retries++;
    if (r->retry_in_on_retry >= 0 && r->retry_in_on_retry_times > 0) {
        r->retry_in_on_retry_times--;
        r->rc_on_retry = ka_client_retry_in(c, (unsigned)r->retry_in_on_retry);
    }
}

static void on_give_up(ka_client *c, const ka_retry_info *ri, void *user) { (void)c; (void)ri; ((rec *)user)->give_ups++; }

/* A client for 127.0.0.1:port recording into r, with a policy set. */
static void config(ka_config *cfg, rec *r, const char *port)
{
    memset(r, 0, sizeof *r);
    r->retry_in_on_data = r->retry_in_on_disconnect = r->retry_in_on_retry = -1;
    ka_config_init(cfg);
    cfg->host = "127.0.0.1";
    cfg->port = port;
    cfg->connect_timeout_ms = 2000;
    cfg->backoff_reset_ms = 400;
    cfg->cb.on_log = on_log;
    cfg->cb.on_connect = on_connect;
    cfg->cb.on_data = on_data;
    cfg->cb.on_disconnect = on_disconnect;
    cfg->cb.on_retry = on_retry;
    cfg->cb.on_give_up = on_give_up;
    cfg->user = r;
}

static void use_jitter(ka_config *cfg, rec *r, unsigned base, unsigned cap, unsigned seed)
{
    decorrelated_jitter_init(&r->jitter, base, cap, seed);
    cfg->next_delay = next_delay;
    cfg->backoff_max_ms = cap;
    cfg->backoff_initial_ms = base;     /* the config must stay valid: initial <= max */
}

static void use_schedule(ka_config *cfg, rec *r, const unsigned *table, size_t n)
{
    r->use_schedule = 1;
    r->schedule.delays_ms = table;
    r->schedule.count = n;
    cfg->next_delay = next_delay;
    cfg->backoff_max_ms = fixed_schedule_max(&r->schedule);
    cfg->backoff_initial_ms = table[0];
}

/* Attempt i+1 started delay[i] after on_retry i: never early, at most
 * LATE_MS late. 0 if every one of the first n did. */
static int attempts_follow_delays(const rec *r, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        long long gap = (long long)r->attempt_ms[i + 1] - (long long)r->retry_ms[i];
        if (gap < (long long)r->delay[i] - 1 || gap > (long long)r->delay[i] + LATE_MS) {
            printf("    attempt %d started %lld ms after on_retry, delay %u\n", i + 2, gap, r->delay[i]);
            return -1;
        }
    }
    return 0;
}

/* Polls c until r->attempts reaches n (attempt n has started), or ms. */
static int wait_attempts(ka_client *c, rec *r, int n, int ms)
{
    return t_poll_until(c, &r->attempts, n, ms);
}

/* Polls c until n bytes have come to on_data, or ms: 0 when they have. */
static int wait_data(ka_client *c, const rec *r, size_t n, int ms)
{
    unsigned long long end = t_now_ms() + (unsigned long long)ms;
    while (r->dlen < n && t_now_ms() < end) ka_client_poll(c, 20);
    return r->dlen >= n ? 0 : -1;
}

/* ---- the policies on their own ---- */

static void test_jitter_bounds_and_reset(void)
{
    decorrelated_jitter p, q;
    unsigned prev = 50, d, i, seen_cap = 0;
    decorrelated_jitter_init(&p, 50, 2000, 7);
    decorrelated_jitter_init(&q, 50, 2000, 7);
    for (i = 1; i <= 200; i++) {
        d = decorrelated_jitter_next(&p, i);
        CHECK(d >= 50);
        CHECK(d <= 2000);
        CHECK(d <= (prev * 3 < 2000 ? prev * 3 : 2000));
        CHECK_EQ(d, decorrelated_jitter_next(&q, i));       /* same seed, same delays */
        if (d == 2000) seen_cap = 1;
        prev = d;
    }
    CHECK(seen_cap || prev > 600);      /* it climbs towards the cap */
    d = decorrelated_jitter_next(&p, 1);                    /* a new outage */
    CHECK(d >= 50 && d <= 150);
}

static void test_schedule_table_then_last(void)
{
    static const unsigned t[] = { 10, 200, 30 };
    fixed_schedule s;
    s.delays_ms = t;
    s.count = 3;
    CHECK_EQ(fixed_schedule_next(&s, 1), 10);
    CHECK_EQ(fixed_schedule_next(&s, 2), 200);
    CHECK_EQ(fixed_schedule_next(&s, 3), 30);
    CHECK_EQ(fixed_schedule_next(&s, 4), 30);
    CHECK_EQ(fixed_schedule_next(&s, 1000), 30);
    CHECK_EQ(fixed_schedule_max(&s), 200);
}

static void test_retry_after_lines(void)
{
    unsigned ms = 0;
    CHECK(retry_after_scan("RETRY-AFTER 30\n", 15, &ms) && ms == 30000);
    CHECK(retry_after_scan("hello\r\nRETRY-AFTER 0.25\r\nbye\n", 29, &ms) && ms == 250);
    CHECK(retry_after_scan("RETRY-AFTER 1.5\nRETRY-AFTER 2\n", 30, &ms) && ms == 2000);
    CHECK(retry_after_scan("RETRY-AFTER 99999999\n", 21, &ms) && ms == 86400000u);
    CHECK(!retry_after_scan("RETRY-AFTER 30", 14, &ms));         /* no end of line yet */
    CHECK(!retry_after_scan("RETRY-AFTER x\n", 14, &ms));
    CHECK(!retry_after_scan("RETRY-AFTER \n", 13, &ms));
    CHECK(!retry_after_scan("RETRY-AFTER 3s\n", 15, &ms));
    CHECK(!retry_after_scan("retry-after 3\n", 14, &ms));
}

/* ---- the policies through a client ---- */

/* Nothing listens: every attempt is refused, each delay is the policy's,
 * as drawn, and the next attempt starts that long after on_retry. */
static void test_jitter_refused_port(void)
{
    char port[16];
    ka_config cfg;
    ka_client *c;
    decorrelated_jitter twin;
    rec r;
    int i;
    CHECK(t_free_port(port, sizeof port) == 0);
    config(&cfg, &r, port);
    use_jitter(&cfg, &r, 20, 150, 99);
    decorrelated_jitter_init(&twin, 20, 150, 99);
    CHECK(ka_client_new(&c, &cfg) == 0 && ka_client_start(c) == 0);
    CHECK(wait_attempts(c, &r, 7, 5000) == 0);
    ka_client_free(c);
    CHECK(r.retries >= 6 && r.ndrawn >= 6);
    for (i = 0; i < 6; i++) {
        CHECK_EQ(r.reason[i], KA_REASON_REFUSED);
        CHECK_EQ(r.attempt_no[i], i + 1);
        CHECK_EQ(r.delay[i], decorrelated_jitter_next(&twin, (unsigned)i + 1));
        CHECK(r.delay[i] >= 20 && r.delay[i] <= 150);
    }
    CHECK(attempts_follow_delays(&r, 6) == 0);
}

static void test_schedule_refused_port(void)
{
    static const unsigned table[] = { 30, 120, 60 };
    static const unsigned want[] = { 30, 120, 60, 60, 60 };
    char port[16];
    ka_config cfg;
    ka_client *c;
    rec r;
    int i;
    CHECK(t_free_port(port, sizeof port) == 0);
    config(&cfg, &r, port);
    use_schedule(&cfg, &r, table, 3);
    CHECK(ka_client_new(&c, &cfg) == 0 && ka_client_start(c) == 0);
    CHECK(wait_attempts(c, &r, 6, 5000) == 0);
    ka_client_free(c);
    for (i = 0; i < 5; i++) {
        CHECK_EQ(r.delay[i], want[i]);
        CHECK_EQ(r.reason[i], KA_REASON_REFUSED);
    }
    CHECK(attempts_follow_delays(&r, 5) == 0);
}

/* A server that accepts and closes at once: each connection ends before
 * backoff_reset_ms and counts as a failed attempt, so the schedule goes on
 * down its table; a connection left up past backoff_reset_ms starts it
 * over (attempt 1), and so does decorrelated jitter. */
static void flap(ka_client *c, rec *r, ka_socket l, int cycles, int keep_last_ms)
{
    int i;
    for (i = 0; i < cycles; i++) {
        int want = r->disconnects + 1;
        ka_socket s = t_accept(l, c, 3000);
        if (s == KA_INVALID_SOCKET) return;
        if (i == cycles - 1 && keep_last_ms) t_poll_for(c, keep_last_ms);
        t_close(s);
        t_poll_until(c, &r->disconnects, want, 3000);
        t_poll_until(c, &r->retries, r->disconnects, 1000);
    }
}

static void test_schedule_flapping_server(void)
{
    static const unsigned table[] = { 40, 80, 160 };
    static const unsigned want[] = { 40, 80, 160, 160, 40 };
    char port[16];
    ka_config cfg;
    ka_client *c;
    ka_socket l = t_listen("127.0.0.1", port, sizeof port);
    rec r;
    int i;
    CHECK(l != KA_INVALID_SOCKET);
    config(&cfg, &r, port);
    use_schedule(&cfg, &r, table, 3);
    CHECK(ka_client_new(&c, &cfg) == 0 && ka_client_start(c) == 0);
    flap(c, &r, l, 4, 0);                   /* four short connections */
    flap(c, &r, l, 1, 600);                 /* one that stays up 600 ms > backoff_reset_ms */
    ka_client_free(c);
    t_close(l);
    CHECK_EQ(r.disconnects, 5);
    for (i = 0; i < 5; i++) {
        CHECK_EQ(r.delay[i], want[i]);
        CHECK_EQ(r.reason[i], KA_REASON_PEER_CLOSED);
    }
    CHECK(attempts_follow_delays(&r, 4) == 0);
}

static void test_jitter_flapping_server(void)
{
    char port[16];
    ka_config cfg;
    ka_client *c;
    ka_socket l = t_listen("127.0.0.1", port, sizeof port);
    rec r;
    int i;
    CHECK(l != KA_INVALID_SOCKET);
    config(&cfg, &r, port);
    use_jitter(&cfg, &r, 25, 400, 12345);
    CHECK(ka_client_new(&c, &cfg) == 0 && ka_client_start(c) == 0);
    flap(c, &r, l, 5, 0);
    flap(c, &r, l, 1, 600);
    ka_client_free(c);
    t_close(l);
    CHECK_EQ(r.disconnects, 6);
    for (i = 0; i < 6; i++) {
        CHECK_EQ(r.delay[i], r.drawn[i]);                   /* the library used the policy's delay */
        CHECK(r.delay[i] >= 25 && r.delay[i] <= 400);
        if (i > 0 && i < 5) CHECK(r.delay[i] <= 3 * r.delay[i - 1]);
    }
    CHECK_EQ(r.attempt_no[4], 5);
    CHECK_EQ(r.attempt_no[5], 1);                           /* up past backoff_reset_ms: a new outage */
    CHECK(r.delay[5] <= 75);                                /* so it starts over from base: at most 3 x 25 */
    CHECK(attempts_follow_delays(&r, 5) == 0);
}

/* The library caps next_delay's answer at backoff_max_ms: a policy whose
 * cap is above it is cut there (why the examples set backoff_max_ms). */
static void test_policy_capped_by_backoff_max(void)
{
    static const unsigned table[] = { 500 };
    char port[16];
    ka_config cfg;
    ka_client *c;
    rec r;
    CHECK(t_free_port(port, sizeof port) == 0);
    config(&cfg, &r, port);
    use_schedule(&cfg, &r, table, 1);
    cfg.backoff_max_ms = cfg.backoff_initial_ms = 70;
    CHECK(ka_client_new(&c, &cfg) == 0 && ka_client_start(c) == 0);
    CHECK(t_poll_until(c, &r.retries, 1, 3000) == 0);
    ka_client_free(c);
    CHECK_EQ(r.drawn[0], 500);
    CHECK_EQ(r.delay[0], 70);
}

/* ---- ka_client_retry_in from callbacks ---- */

/* on_data: the server says "RETRY-AFTER 0.6" and closes. While connected,
 * retry_in sets the delay of the retry to come: 600 ms, not the schedule's
 * 40, and beyond backoff_max_ms (200): the server asked. The failure after
 * that (refused) goes back to the schedule. */
static void test_retry_in_from_on_data(void)
{
    static const unsigned table[] = { 40, 200 };
    static const char line[] = "hello\nRETRY-AFTER 0.6\n";
    char port[16];
    ka_config cfg;
    ka_client *c;
    ka_socket l = t_listen("127.0.0.1", port, sizeof port), s;
    rec r;
    CHECK(l != KA_INVALID_SOCKET);
    config(&cfg, &r, port);
    use_schedule(&cfg, &r, table, 2);
    r.retry_in_on_data = 0;
    CHECK(ka_client_new(&c, &cfg) == 0 && ka_client_start(c) == 0);
    s = t_accept(l, c, 3000);
    CHECK(s != KA_INVALID_SOCKET);
    CHECK(t_send_all(s, line, sizeof line - 1, c, 2000) == 0);
    CHECK(wait_data(c, &r, sizeof line - 1, 2000) == 0);
    t_close(s);
    t_close(l);                             /* the next attempt is refused */
    CHECK(t_poll_until(c, &r.retries, 2, 4000) == 0);
    CHECK(wait_attempts(c, &r, 3, 2000) == 0);
    ka_client_free(c);
    CHECK_EQ(r.retry_in_on_data, 600);
    CHECK_EQ(r.rc_on_data, KA_OK);
    CHECK_EQ(r.reason[0], KA_REASON_PEER_CLOSED);
    CHECK_EQ(r.delay[0], 600);
    CHECK_EQ(r.reason[1], KA_REASON_REFUSED);
    CHECK_EQ(r.delay[1], 200);                              /* the schedule's attempt 2 */
    CHECK(attempts_follow_delays(&r, 2) == 0);
}

/* on_disconnect runs while the connection ends, before the retry is
 * scheduled: retry_in there sets that retry's delay (0: at once, "the
 * network just came back"). */
static void test_retry_in_from_on_disconnect(void)
{
    static const unsigned table[] = { 2000 };
    char port[16];
    ka_config cfg;
    ka_client *c;
    ka_socket l = t_listen("127.0.0.1", port, sizeof port), s;
    rec r;
    CHECK(l != KA_INVALID_SOCKET);
    config(&cfg, &r, port);
    use_schedule(&cfg, &r, table, 1);
    r.retry_in_on_disconnect = 0;
    CHECK(ka_client_new(&c, &cfg) == 0 && ka_client_start(c) == 0);
    s = t_accept(l, c, 3000);
    CHECK(s != KA_INVALID_SOCKET);
    CHECK(t_poll_until(c, &r.connects, 1, 2000) == 0);
    t_close(s);
    s = t_accept(l, c, 1000);               /* back well before the schedule's 2 s */
    CHECK(s != KA_INVALID_SOCKET);
    t_close(s);
    t_close(l);
    ka_client_free(c);
    CHECK_EQ(r.rc_on_disconnect, KA_OK);
    CHECK_EQ(r.delay[0], 0);
    CHECK(r.attempt_ms[1] - r.retry_ms[0] <= LATE_MS);
}

/* on_retry runs in BACKOFF, with the delay already scheduled: retry_in
 * replaces it. The schedule says 3 s; on_retry moves the first two retries
 * to 50 ms and 0 ms, then leaves the third alone. */
static void test_retry_in_from_on_retry(void)
{
    static const unsigned table[] = { 3000 };
    char port[16];
    ka_config cfg;
    ka_client *c;
    rec r;
    CHECK(t_free_port(port, sizeof port) == 0);
    config(&cfg, &r, port);
    use_schedule(&cfg, &r, table, 1);
    r.retry_in_on_retry = 50;
    r.retry_in_on_retry_times = 1;
    CHECK(ka_client_new(&c, &cfg) == 0 && ka_client_start(c) == 0);
    CHECK(wait_attempts(c, &r, 2, 2000) == 0);              /* 50 ms, not 3 s */
    r.retry_in_on_retry = 0;
    r.retry_in_on_retry_times = 1;
    CHECK(wait_attempts(c, &r, 3, 2000) == 0);              /* at once */
    CHECK(t_poll_until(c, &r.retries, 3, 2000) == 0);
    t_poll_for(c, 500);                                     /* the third retry keeps its 3 s */
    ka_client_free(c);
    CHECK_EQ(r.rc_on_retry, KA_OK);
    CHECK_EQ(r.delay[0], 3000);                             /* what on_retry was told */
    CHECK(r.attempt_ms[1] - r.retry_ms[0] >= 49 && r.attempt_ms[1] - r.retry_ms[0] <= 50 + LATE_MS);
    CHECK(r.attempt_ms[2] - r.retry_ms[1] <= LATE_MS);
    CHECK_EQ(r.attempts, 3);
}

/* ---- the example programs, as a user runs them ---- */

/* Runs cmd and reads its output into out (NUL-terminated) while serving
 * listener l (if valid) with reply, closing each connection at once.
 * Returns the exit status, or -1. Bounded by ms. */
static int run_example(const char *cmd, char *out, size_t len, ka_socket l, const char *reply, int ms)
{
    FILE *f = popen(cmd, "r");
    size_t got = 0;
    unsigned long long end = t_now_ms() + (unsigned long long)ms;
    int fd, st;
    if (!f) return -1;
    fd = fileno(f);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    while (t_now_ms() < end) {
        ssize_t n = read(fd, out + got, len - 1 - got);
        if (n == 0) break;
        if (n > 0) { got += (size_t)n; continue; }
        if (l != KA_INVALID_SOCKET) {
            ka_socket s = accept(l, NULL, NULL);
            if (s != KA_INVALID_SOCKET) {
                if (send(s, reply, strlen(reply), 0) < 0) { }
                t_close(s);
            }
        }
        t_sleep_ms(5);
    }
    out[got] = '\0';
    st = pclose(f);
    return t_now_ms() < end ? st : -1;
}

static void test_program_reconnect_schedule(void)
{
    char port[16], cmd[128], out[2048];
    CHECK(t_free_port(port, sizeof port) == 0);
    snprintf(cmd, sizeof cmd, EX_DIR "/reconnect 127.0.0.1 %s schedule 3", port);
    CHECK_EQ(run_example(cmd, out, sizeof out, KA_INVALID_SOCKET, NULL, 5000), 0);
    CHECK(strstr(out, "retry 1 in 100 ms (refused)\nretry 2 in 1000 ms (refused)\ngave up after 3 attempts") != NULL);
}

static void test_program_reconnect_jitter(void)
{
    char port[16], cmd[128], out[2048];
    unsigned d1 = 0, d2 = 0;
    const char *p;
    CHECK(t_free_port(port, sizeof port) == 0);
    snprintf(cmd, sizeof cmd, EX_DIR "/reconnect 127.0.0.1 %s jitter 3", port);
    CHECK_EQ(run_example(cmd, out, sizeof out, KA_INVALID_SOCKET, NULL, 5000), 0);
    CHECK((p = strstr(out, "retry 1 in ")) != NULL && sscanf(p, "retry 1 in %u ms", &d1) == 1);
    CHECK((p = strstr(out, "retry 2 in ")) != NULL && sscanf(p, "retry 2 in %u ms", &d2) == 1);
    CHECK(d1 >= 100 && d1 <= 300);
    CHECK(d2 >= 100 && d2 <= 3 * d1);
    CHECK(strstr(out, "gave up after 3 attempts") != NULL);
}

static void test_program_retry_after(void)
{
    char port[16], cmd[128], out[2048];
    ka_socket l = t_listen("127.0.0.1", port, sizeof port);
    CHECK(l != KA_INVALID_SOCKET);
    snprintf(cmd, sizeof cmd, EX_DIR "/retry_after 127.0.0.1 %s 2", port);
    CHECK_EQ(run_example(cmd, out, sizeof out, l, "RETRY-AFTER 0.2\n", 5000), 0);
    t_close(l);
    CHECK(strstr(out, "server asks to retry in 200 ms\nlost after") != NULL);
    CHECK(strstr(out, "retry 1 in 200 ms (peer closed)") != NULL);
    CHECK(strstr(out, "gave up after 2 attempts (peer closed)") != NULL);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        { "decorrelated jitter stays in [base, min(cap, 3 x last)] and starts over at attempt 1", test_jitter_bounds_and_reset },
        { "fixed schedule: the table, then its last entry", test_schedule_table_then_last },
        { "RETRY-AFTER lines: seconds with a fraction, the last one wins, junk ignored", test_retry_after_lines },
        { "decorrelated jitter against a refused port: the policy's delays, on time", test_jitter_refused_port },
        { "fixed schedule against a refused port: the table, on time", test_schedule_refused_port },
        { "fixed schedule against a flapping server: down the table, over again after a long connection", test_schedule_flapping_server },
        { "decorrelated jitter against a flapping server: from base again after a long connection", test_jitter_flapping_server },
        { "a policy above backoff_max_ms is capped there", test_policy_capped_by_backoff_max },
        { "retry_in from on_data: the server's RETRY-AFTER, beyond backoff_max_ms", test_retry_in_from_on_data },
        { "retry_in from on_disconnect: that retry's delay", test_retry_in_from_on_disconnect },
        { "retry_in from on_retry: replaces the pending delay (50 ms, then 0)", test_retry_in_from_on_retry },
        { "reconnect schedule: 100 ms, 1 s, then gives up", test_program_reconnect_schedule },
        { "reconnect jitter: delays from 100 ms up", test_program_reconnect_jitter },
        { "retry_after: waits what the server asked", test_program_retry_after },
    };
    return t_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
