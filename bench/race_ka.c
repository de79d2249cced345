/* race_ka.c: ka_client, driven by ka_client_poll, default configuration
 * except where a measurement needs a knob (each one named below). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ka_client.h"
#include "race.h"

const char race_name[] = "ka_client";
const char race_keepalive_note[] =
    "on by default, idle 5 s, interval 5 s, 3 probes; every knob in ka_config, whole seconds, count 1 at least";

const char *race_version(void) { return ka_version(); }

static struct {
    int connects, disconnects;
    long long t_conn, t_disc;
    size_t got;
    unsigned retry_delay_ms;
    int detect;
} K;

static void on_connect(ka_client *c, void *u)
{
    (void)u;
    K.connects++;
    K.t_conn = race_now_us();
    if (K.detect) ka_client_send(c, "hello\n", 6);
}

static void on_data(ka_client *c, const void *d, size_t n, void *u)
{
    (void)d; (void)u;
    K.got += n;
    if (K.detect) race_ready((int)ka_client_socket(c));
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *u)
{
    (void)c; (void)u;
    K.disconnects++;
    K.t_disc = race_now_us();
    if (K.detect) race_detected(ka_reason_str(di->reason));
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *u)
{
    (void)c; (void)u;
    K.retry_delay_ms = ri->delay_ms;
}

static void config(ka_config *cfg, const char *host, const char *port)
{
    ka_config_init(cfg);
    cfg->host = host;
    cfg->port = port;
    cfg->cb.on_connect = on_connect;
    cfg->cb.on_data = on_data;
    cfg->cb.on_disconnect = on_disconnect;
    cfg->cb.on_retry = on_retry;
}

/* A started client, polled until connected; NULL on failure. */
static ka_client *dial(ka_config *cfg)
{
    ka_client *c;
    int want = K.connects + 1, i;
    if (ka_client_new(&c, cfg) != 0) return NULL;
    if (ka_client_start(c) != 0) { ka_client_free(c); return NULL; }
    for (i = 0; i < 500 && K.connects < want; i++) ka_client_poll(c, 10);
    if (K.connects < want) { ka_client_free(c); return NULL; }
    return c;
}

int race_rtt(const char *host, int port, size_t size, long n, double *us)
{
    static char msg[65536];
    char ps[16];
    ka_config cfg;
    ka_client *c;
    long i;
    long long t0;
    snprintf(ps, sizeof ps, "%d", port);
    config(&cfg, host, ps);
    if (size > sizeof msg || !(c = dial(&cfg))) return -1;
    memset(msg, 'p', size);
    K.got = 0;
    t0 = race_now_us();
    for (i = 0; i < n; i++) {
        size_t want = K.got + size;
        if (ka_client_send(c, msg, size) != 0) break;
        while (K.got < want && ka_client_state(c) == KA_STATE_CONNECTED) ka_client_poll(c, 1000);
        if (K.got < want) break;
    }
    *us = (double)(race_now_us() - t0) / (double)n;
    ka_client_free(c);
    return i == n ? 0 : -1;
}

int race_bulk(const char *host, int port, long long bytes, double *secs)
{
    static char buf[65536];
    char ps[16];
    ka_config cfg;
    ka_client *c;
    long long queued = 0, t0, end;
    snprintf(ps, sizeof ps, "%d", port);
    config(&cfg, host, ps);
    /* the same 256 KiB of queue the libuv and libevent runs allow themselves */
    cfg.send_buffer_size = 256 * 1024;
    if (!(c = dial(&cfg))) return -1;
    memset(buf, 'z', sizeof buf);
    t0 = race_now_us();
    end = t0 + 300 * 1000000LL;
    while (queued < bytes && race_now_us() < end && ka_client_state(c) == KA_STATE_CONNECTED) {
        size_t n = bytes - queued < (long long)sizeof buf ? (size_t)(bytes - queued) : sizeof buf;
        int rc = ka_client_send(c, buf, n);
        if (rc == 0) queued += (long long)n;
        else if (rc == KA_EAGAIN) ka_client_poll(c, 1000);
        else break;
    }
    /* FIN once the queue is out; the server closes when it has read it all */
    ka_client_finish(c);
    while (ka_client_state(c) != KA_STATE_STOPPED && race_now_us() < end) ka_client_poll(c, 1000);
    *secs = (double)(K.t_disc - t0) / 1e6;
    ka_client_free(c);
    return queued == bytes && K.disconnects > 0 ? 0 : -1;
}

/* Every client started, then each polled in turn (without waiting) until
 * all are connected; bounded at 60 s. The array of client pointers (8
 * bytes a client) is counted against ka_client. */
static int hold_all(ka_config *cfg, int n)
{
    ka_client **cs = (ka_client **)calloc((size_t)n, sizeof *cs);
    int want = K.connects + n, i;
    long long end = race_now_us() + 60 * 1000000LL;
    if (!cs) return -1;
    for (i = 0; i < n; i++)
        if (ka_client_new(&cs[i], cfg) != 0 || ka_client_start(cs[i]) != 0) { free(cs); return -1; }
    while (K.connects < want && race_now_us() < end)
        for (i = 0; i < n; i++) ka_client_poll(cs[i], 0);
    free(cs);                   /* the array, not the clients: they stay */
    return K.connects < want ? -1 : 0;
}

int race_hold(const char *host, int port, int n, int all)
{
    static char ps[16];
    ka_config cfg;
    int i;
    snprintf(ps, sizeof ps, "%d", port);
    config(&cfg, host, ps);
    if (all) return hold_all(&cfg, n);
    for (i = 0; i < n; i++)
        if (!dial(&cfg)) return -1;
    return 0;
}

int race_reconnect(const char *host, int port, int n, int delay_ms, long long *late_us)
{
    char ps[16];
    ka_config cfg;
    ka_client *c;
    int i;
    snprintf(ps, sizeof ps, "%d", port);
    config(&cfg, host, ps);
    /* every retry exactly delay_ms after the disconnect: no growth, no jitter */
    cfg.backoff_initial_ms = (unsigned)delay_ms;
    cfg.backoff_max_ms = (unsigned)delay_ms;
    cfg.backoff_jitter = 0;
    if (!(c = dial(&cfg))) return -1;
    for (i = 0; i < n; i++) {
        int want = K.connects + 1, j;
        long long due = race_now_us() + (long long)delay_ms * 1000;
        ka_client_disconnect(c);
        for (j = 0; j < 1000 && K.connects < want; j++) ka_client_poll(c, 1000);
        if (K.connects < want || K.retry_delay_ms != (unsigned)delay_ms) break;
        late_us[i] = K.t_conn - due;
    }
    ka_client_free(c);
    return i == n ? 0 : -1;
}

int race_idle(const char *host, int port, int secs)
{
    char ps[16];
    ka_config cfg;
    ka_client *c;
    long long end;
    snprintf(ps, sizeof ps, "%d", port);
    config(&cfg, host, ps);
    if (!(c = dial(&cfg))) return -1;
    race_idle_begin();
    end = race_now_us() + (long long)secs * 1000000;
    while (race_now_us() < end) ka_client_poll(c, (int)((end - race_now_us()) / 1000) + 1);
    race_idle_end();
    ka_client_free(c);
    return 0;
}

int race_detect(const char *host, int port, int tight, int bound_ms)
{
    char ps[16];
    ka_config cfg;
    ka_client *c;
    long long end;
    snprintf(ps, sizeof ps, "%d", port);
    config(&cfg, host, ps);
    if (tight) {
        cfg.keepalive_idle_ms = 1000;
        cfg.keepalive_interval_ms = 1000;
        cfg.keepalive_count = 1;
    }
    cfg.backoff_initial_ms = cfg.backoff_max_ms = 600000;   /* no reconnect in the way */
    K.detect = 1;
    if (ka_client_new(&c, &cfg) != 0 || ka_client_start(c) != 0) return -1;
    end = race_now_us() + (long long)bound_ms * 1000;
    while (K.disconnects == 0 && race_now_us() < end) ka_client_poll(c, (int)((end - race_now_us()) / 1000) + 1);
    ka_client_free(c);
    return 0;
}
