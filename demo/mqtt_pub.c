/* mqtt_pub: a minimal MQTT 3.1.1 publisher at QoS 1 on ka_client: every
 * message reaches the broker at least once, across broker restarts.
 *
 *   mqtt_pub [options] HOST PORT
 *
 *   --count N       messages to publish (default 100): payloads "msg 1".."msg N"
 *   --every MS      one message every MS ms (default 20; 0: all at once)
 *   --topic T       (default ka/demo)
 *   --id ID         client identifier (default ka-pub)
 *   --keepalive S   MQTT keep alive in seconds (default 10): PINGREQ after S/2
 *                   without sending; no byte from the broker for 1.5 S ends
 *                   the connection
 *   --stay MS       once all are acknowledged, stay connected MS ms (idle:
 *                   PINGREQ goes out) before DISCONNECT
 *   --deadline S    give up after S seconds (default 60): exit 1
 *   --verbose       every packet received, and the library's diagnostics
 *
 * The library does the connection; this file does what an embedded MQTT
 * client would: it encodes the four packets it sends (CONNECT, PUBLISH,
 * PINGREQ, DISCONNECT) and recognises the three it expects (CONNACK,
 * PUBACK, PINGRESP). The session features of ka_client carry the rest:
 *
 *   CONNECT     sent from on_connect: first on every connection
 *   CONNACK     ka_client_ready(): until then nothing else goes out
 *               (hold_until_ready), neither the PUBLISHes queued while the
 *               broker was away nor a PINGREQ
 *   PUBLISH     one ka_client_send each; the library keeps it until
 *   PUBACK      ka_client_ack(): a PUBLISH the broker did not acknowledge
 *               is sent again after the next CONNACK (replay_until_acked)
 *   PINGREQ     heartbeat_data, every keep alive / 2 without sending
 *   PINGRESP    any byte received restarts idle_timeout_ms (1.5 keep alive)
 *
 * Clean session: each connection starts a fresh session at the broker, and
 * the client itself resends what was not acknowledged (the same bytes; the
 * DUP flag is only a hint, MQTT 3.1.1 section 3.3.1.1). Packet identifiers
 * run 1..65535 with the message number.
 *
 * Exit 0 once every message is acknowledged and DISCONNECT is sent; 1 on
 * --deadline or a refused CONNECT; 2 bad usage. Status on stderr.
 */
#include "demo_os.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "ka_client.h"

#define PKT_CONNECT    0x10
#define PKT_CONNACK    0x20
#define PKT_PUBLISH    0x30
#define PKT_PUBACK     0x40
#define PKT_PINGREQ    0xC0
#define PKT_PINGRESP   0xD0
#define PKT_DISCONNECT 0xE0
#define QOS1           0x02     /* PUBLISH flags: QoS 1, no DUP, no RETAIN */
#define CLEAN_SESSION  0x02     /* CONNECT flags */
#define MAX_PACKET     1024     /* what we send and what we accept */
#define MAX_ID         65535u

enum phase { PUBLISHING, STAYING, DISCONNECTING, DONE };

typedef struct app {
    ka_client *c;
    const char *host, *port, *topic, *id;
    unsigned long count;
    unsigned every_ms, keepalive_s, stay_ms, deadline_s;
    int verbose, failed;
    int session_ready;              /* this connection's CONNACK came */
    enum phase phase;
    unsigned long made, acked;      /* messages 1..made published, 1..acked confirmed */
    unsigned long long next_at, stay_until;
    unsigned char acked_ahead[(MAX_ID + 1) / 8 + 1];    /* PUBACKs for packet ids past the oldest */
    unsigned connections, pingresps;
    unsigned char in[MAX_PACKET];   /* a packet being read */
    size_t inlen;
    unsigned char ping[2];
} app;

static void say(const char *fmt, ...)
{
    char t[32];
    va_list ap;
    clock_text(t, sizeof t);
    fprintf(stderr, "mqtt_pub: %s ", t);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- encoding: what we send ---- */

/* The remaining length: 7 bits a byte, low first, high bit "more". */
static size_t put_length(unsigned char *p, size_t len)
{
    size_t n = 0;
    do {
        unsigned char b = (unsigned char)(len % 128);
        len /= 128;
        p[n++] = (unsigned char)(len ? b | 0x80 : b);
    } while (len && n < 4);
    return n;
}

static size_t put_string(unsigned char *p, const char *s)
{
    size_t len = strlen(s);
    p[0] = (unsigned char)(len >> 8);
    p[1] = (unsigned char)len;
    memcpy(p + 2, s, len);
    return len + 2;
}

/* A packet of `type` with `body`: the fixed header, then the body. */
static size_t put_packet(unsigned char *out, unsigned type, const unsigned char *body, size_t len)
{
    size_t n = 0;
    out[n++] = (unsigned char)type;
    n += put_length(out + n, len);
    memcpy(out + n, body, len);
    return n + len;
}

static size_t encode_connect(const app *a, unsigned char *out)
{
    unsigned char body[MAX_PACKET];
    size_t n = put_string(body, "MQTT");
    body[n++] = 4;                  /* protocol level: 3.1.1 */
    body[n++] = CLEAN_SESSION;
    body[n++] = (unsigned char)(a->keepalive_s >> 8);
    body[n++] = (unsigned char)a->keepalive_s;
    n += put_string(body + n, a->id);
    return put_packet(out, PKT_CONNECT, body, n);
}

static unsigned packet_id(unsigned long msg) { return (unsigned)((msg - 1) % MAX_ID) + 1; }

static size_t encode_publish(const app *a, unsigned long msg, unsigned char *out)
{
    unsigned char body[MAX_PACKET];
    unsigned id = packet_id(msg);
    size_t n = put_string(body, a->topic);
    body[n++] = (unsigned char)(id >> 8);
    body[n++] = (unsigned char)id;
    n += (size_t)sprintf((char *)body + n, "msg %lu", msg);
    return put_packet(out, PKT_PUBLISH | QOS1, body, n);
}

/* ---- what the broker sends ---- */

/* A PUBACK confirms its packet id. The broker sends them in the order the
 * PUBLISHes arrived (MQTT 3.1.1 section 4.6), which is the order
 * ka_client_ack counts in; one out of order is held until the ones before
 * it are in, so a broker that reorders cannot make us drop a message. */
static void take_puback(app *a, unsigned id)
{
    unsigned long outstanding = a->made - a->acked, dist;
    size_t k = 0;
    int rc;
    if (id == 0 || outstanding == 0) return;
    dist = (id + MAX_ID - packet_id(a->acked + 1)) % MAX_ID;
    if (dist >= outstanding) { say("PUBACK %u for no message in flight: ignored", id); return; }
    a->acked_ahead[id / 8] |= (unsigned char)(1u << (id % 8));
    for (;;) {
        unsigned next = packet_id(a->acked + k + 1);
        if (a->acked + k == a->made || !(a->acked_ahead[next / 8] & (1u << (next % 8)))) break;
        a->acked_ahead[next / 8] &= (unsigned char)~(1u << (next % 8));
        k++;
    }
    if (!k) return;
    rc = ka_client_ack(a->c, k);
    if (rc != 0) { say("ka_client_ack(%lu): %s", (unsigned long)k, ka_strerror(rc)); return; }
    a->acked += k;
}

static void take_connack(app *a, const unsigned char *body, size_t len)
{
    if (len != 2 || body[1] != 0) {
        say("CONNECT refused: return code %u", len == 2 ? body[1] : 255u);
        a->failed = 1;
        ka_client_stop(a->c);
        return;
    }
    say("CONNACK: session ready; %lu bytes queued go now (%lu message%s published before and not acknowledged)",
        (unsigned long)ka_client_pending(a->c), a->made - a->acked, a->made - a->acked == 1 ? "" : "s");
    ka_client_ready(a->c);
    a->session_ready = 1;
}

static void take_packet(app *a, unsigned type, const unsigned char *body, size_t len)
{
    if (a->verbose) say("received packet type %u, %lu bytes", type >> 4, (unsigned long)len);
    switch (type & 0xF0) {
    case PKT_CONNACK: take_connack(a, body, len); break;
    case PKT_PUBACK:  if (len == 2) take_puback(a, (unsigned)body[0] << 8 | body[1]); break;
    case PKT_PINGRESP: a->pingresps++; break;
    default: say("unexpected packet type %u: ignored", type >> 4); break;
    }
}

/* Bytes in the buffer make a whole packet: its total size; 0 not yet;
 * (size_t)-1 a length we cannot take. */
static size_t whole_packet(const unsigned char *p, size_t have, size_t *hdr)
{
    size_t len = 0, mult = 1, i;
    for (i = 1; i < have && i <= 4; i++) {
        len += (size_t)(p[i] & 0x7F) * mult;
        mult *= 128;
        if (!(p[i] & 0x80)) {
            *hdr = i + 1;
            if (*hdr + len > MAX_PACKET) return (size_t)-1;
            return have >= *hdr + len ? *hdr + len : 0;
        }
    }
    return i > 4 ? (size_t)-1 : 0;
}

static void on_data(ka_client *c, const void *data, size_t len, void *user)
{
    app *a = (app *)user;
    const unsigned char *p = (const unsigned char *)data;
    while (len) {
        size_t take = len < sizeof a->in - a->inlen ? len : sizeof a->in - a->inlen, hdr = 0, whole;
        memcpy(a->in + a->inlen, p, take);
        a->inlen += take;
        p += take;
        len -= take;
        while ((whole = whole_packet(a->in, a->inlen, &hdr)) != 0) {
            if (whole == (size_t)-1) { say("a packet too large or malformed: reconnecting"); ka_client_disconnect(c); return; }
            take_packet(a, a->in[0], a->in + hdr, whole - hdr);
            memmove(a->in, a->in + whole, a->inlen - whole);
            a->inlen -= whole;
        }
    }
}

/* ---- the connection ---- */

static void on_connect(ka_client *c, void *user)
{
    app *a = (app *)user;
    unsigned char pkt[MAX_PACKET];
    a->connections++;
    a->inlen = 0;
    a->session_ready = 0;
    say("connected (connection %u): CONNECT", a->connections);
    if (ka_client_send(c, pkt, encode_connect(a, pkt)) != 0) say("cannot send CONNECT");
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *user)
{
    app *a = (app *)user;
    if (a->phase == DONE || ka_client_state(c) == KA_STATE_STOPPED) return;
    say("connection lost after %lu ms: %s; %lu message%s not acknowledged will go again",
        di->connected_ms, ka_reason_str(di->reason), a->made - a->acked, a->made - a->acked == 1 ? "" : "s");
    memset(a->acked_ahead, 0, sizeof a->acked_ahead);     /* the new session acknowledges afresh */
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

/* ---- publishing ---- */

/* Publishes what is due; at most MAX_ID in flight, so packet ids never
 * collide. Not between CONNECT and CONNACK: what is sent then belongs to
 * the session's handshake (ka_client_send puts it ahead of the backlog
 * and does not keep it for replay); while disconnected it is backlog. */
static void publish_due(app *a)
{
    unsigned char pkt[MAX_PACKET];
    unsigned long long now = now_ms();
    if (ka_client_state(a->c) == KA_STATE_CONNECTED && !a->session_ready) return;
    while (a->made < a->count && a->made - a->acked < MAX_ID && (a->every_ms == 0 || now >= a->next_at)) {
        int rc = ka_client_send(a->c, pkt, encode_publish(a, a->made + 1, pkt));
        if (rc == KA_EAGAIN) return;                /* the queue is full: this one waits */
        if (rc != 0) { say("ka_client_send: %s", ka_strerror(rc)); a->failed = 1; return; }
        a->made++;
        a->next_at = (a->next_at ? a->next_at : now) + a->every_ms;
    }
}

/* All acknowledged: stay a while if asked (PINGREQ keeps the session),
 * then DISCONNECT. DISCONNECT has no answer, so once the kernel has it
 * the client confirms it itself; then ka_client_finish ends the
 * connection. */
static void advance(app *a)
{
    unsigned char pkt[2] = { PKT_DISCONNECT, 0 };
    int connected = ka_client_state(a->c) == KA_STATE_CONNECTED;
    if (a->phase == PUBLISHING && a->acked == a->count) {
        say("all %lu messages acknowledged (PUBACK), over %u connection%s", a->count, a->connections,
            a->connections == 1 ? "" : "s");
        a->phase = STAYING;
        a->stay_until = now_ms() + a->stay_ms;
    }
    if (a->phase == STAYING && now_ms() >= a->stay_until && connected && a->session_ready) {
        if (a->stay_ms) say("stayed %u ms idle: %u PINGRESP received", a->stay_ms, a->pingresps);
        if (ka_client_send(a->c, pkt, sizeof pkt) == 0) a->phase = DISCONNECTING;
    }
    if (a->phase == DISCONNECTING && connected && ka_client_pending(a->c) == 0 && ka_client_unacked_messages(a->c) == 1) {
        ka_client_ack(a->c, 1);
        ka_client_finish(a->c);
        a->phase = DONE;
    }
}

static long wait_ms(const app *a)
{
    long t = ka_client_timeout_ms(a->c);
    unsigned long long now = now_ms(), at = 0;
    if (a->phase == PUBLISHING && a->made < a->count && a->every_ms) at = a->next_at;
    if (a->phase == STAYING) at = a->stay_until;
    if (at) {
        long d = at > now ? (long)(at - now) : 0;
        if (t < 0 || d < t) t = d;
    }
    if (t < 0 || t > 100) t = 100;      /* the deadline and the DISCONNECT are looked at this often */
    return t;
}

/* ---- start-up ---- */

static int parse_args(app *a, int argc, char **argv)
{
    int i, npos = 0;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        int v = i + 1 < argc;
        if (strcmp(o, "--verbose") == 0) a->verbose = 1;
        else if (strcmp(o, "--count") == 0 && v) a->count = strtoul(argv[++i], NULL, 10);
        else if (strcmp(o, "--every") == 0 && v) a->every_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(o, "--topic") == 0 && v) a->topic = argv[++i];
        else if (strcmp(o, "--id") == 0 && v) a->id = argv[++i];
        else if (strcmp(o, "--keepalive") == 0 && v) a->keepalive_s = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(o, "--stay") == 0 && v) a->stay_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(o, "--deadline") == 0 && v) a->deadline_s = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (o[0] == '-') return -1;
        else if (npos == 0) { a->host = o; npos++; }
        else if (npos == 1) { a->port = o; npos++; }
        else return -1;
    }
    if (npos != 2 || a->count == 0 || a->keepalive_s == 0 || a->keepalive_s > 65535) return -1;
    if (strlen(a->topic) > 200 || strlen(a->id) > 23) return -1;   /* 23: the length every broker must take */
    return 0;
}

static void configure(app *a, ka_config *cfg)
{
    ka_config_init(cfg);
    cfg->host = a->host;
    cfg->port = a->port;
    cfg->hold_until_ready = 1;
    cfg->replay_until_acked = 1;
    a->ping[0] = PKT_PINGREQ;
    a->ping[1] = 0;
    cfg->heartbeat_data = a->ping;
    cfg->heartbeat_len = sizeof a->ping;
    cfg->heartbeat_interval_ms = a->keepalive_s * 500u;
    cfg->idle_timeout_ms = a->keepalive_s * 1500u;
    cfg->send_buffer_size = 256 * 1024;
    cfg->backoff_initial_ms = 100;
    cfg->backoff_max_ms = 1000;
    cfg->backoff_reset_ms = 1000;
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
    static app a;                   /* large (the PUBACK bitmap): not on the stack */
    ka_config cfg;
    unsigned long long give_up_at;
    int rc;
    a.count = 100;
    a.every_ms = 20;
    a.topic = "ka/demo";
    a.id = "ka-pub";
    a.keepalive_s = 10;
    a.deadline_s = 60;
    if (parse_args(&a, argc, argv) != 0) {
        fputs("usage: mqtt_pub [--count N] [--every MS] [--topic T] [--id ID] [--keepalive S] [--stay MS]\n"
              "                [--deadline S] [--verbose] HOST PORT\n", stderr);
        return 2;
    }
    configure(&a, &cfg);
    if ((rc = ka_client_new(&a.c, &cfg)) != 0 || (rc = ka_client_start(a.c)) != 0) {
        fprintf(stderr, "mqtt_pub: %s\n", ka_strerror(rc));
        return rc == KA_EINVAL ? 2 : 1;
    }
    give_up_at = now_ms() + a.deadline_s * 1000ull;
    while (ka_client_state(a.c) != KA_STATE_STOPPED && !a.failed && now_ms() < give_up_at) {
        if (a.phase == PUBLISHING) publish_due(&a);
        advance(&a);
        ka_client_poll(a.c, (int)wait_ms(&a));
    }
    rc = a.phase == DONE && !a.failed ? 0 : 1;
    if (rc) say("gave up: %lu of %lu messages acknowledged", a.acked, a.count);
    ka_client_free(a.c);
    return rc;
}
