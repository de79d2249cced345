/* libFuzzer target: arbitrary configs to ka_client_new, ka_client_size and
 * ka_client_init. The bytes choose every field: numbers (edge values or
 * raw), doubles (NaN, infinities, raw bits), strings of odd lengths or NULL,
 * allocator hooks (both, one, none). Whatever comes in, the library must not
 * crash, must answer 0 or a negative code, and must agree with itself:
 * ka_client_size() == 0 exactly when the config is refused.
 *
 * No network: a client made here is never started (a host name could send
 * getaddrinfo to DNS). Build: make build/harden/fuzz/fuzz_config */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ka_client.h"

typedef struct rd { const uint8_t *p; size_t n, i; } rd;

static unsigned u8(rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static unsigned u32(rd *r) { unsigned v = u8(r); v |= u8(r) << 8; v |= u8(r) << 16; v |= (unsigned)u8(r) << 24; return v; }
static size_t usz(rd *r) { unsigned long long v = u32(r); v |= (unsigned long long)u32(r) << 32; return (size_t)v; }

static unsigned num(rd *r, unsigned dflt)
{
    static const unsigned edge[] = { 0, 1, 2, 999, 1000, 1001, 32767000u, 32767001u, 0x7fffffffu, 0x80000000u, 0xffffffffu, 127, 128 };
    unsigned sel = u8(r);
    if (sel < 96) return dflt;
    if (sel < 176) return edge[u8(r) % (sizeof edge / sizeof edge[0])];
    return u32(r);
}

static size_t size(rd *r, size_t dflt)
{
    static const size_t edge[] = { 0, 1, 7, 8, 9, 4096, 65536, (size_t)1 << 30, ((size_t)1 << 30) + 1, (size_t)-1 };
    unsigned sel = u8(r);
    if (sel < 96) return dflt;
    if (sel < 200) return edge[u8(r) % (sizeof edge / sizeof edge[0])];
    return usz(r);
}

static double dbl(rd *r, double dflt)
{
    unsigned sel = u8(r);
    unsigned long long bits;
    double d;
    switch (sel % 10) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return -0.0;
    case 4: return 1000.0;
    case 5: return 1000.0000001;
    case 6:
        bits = u32(r);
        bits |= (unsigned long long)u32(r) << 32;
        memcpy(&d, &bits, sizeof d);
        return d;
    case 7: return (double)(int)u32(r) / 1000.0;
    default: return dflt;
    }
}

/* A NUL-terminated string in its own heap block (so ASan sees overreads),
 * of a length the input picks; or NULL; or a fixed good one. */
static char *str(rd *r, const char *good)
{
    unsigned sel = u8(r), len, i;
    char *s;
    if (sel < 64) return NULL;
    if (sel < 128) len = (unsigned)strlen(good);
    else if (sel < 192) len = u8(r);                    /* 0..255 */
    else len = 240 + u8(r) % 40;                        /* around the 255 limit */
    s = (char *)malloc(len + 1);
    if (!s) return NULL;
    if (sel < 128) memcpy(s, good, len);
    else for (i = 0; i < len; i++) s[i] = (char)(u8(r) % 3 ? '0' + u8(r) % 10 : u8(r));
    s[len] = 0;
    for (i = 0; i < len; i++) if (!s[i]) s[i] = 'x';    /* the length is the one chosen */
    return s;
}

/* Allocator hooks: refuse anything over 4 MiB, so a config with a 1 GiB
 * queue exercises KA_ENOMEM instead of the machine's memory. */
static int allocs;
static void *f_alloc(size_t n, void *u) { (void)u; if (n > ((size_t)4 << 20)) return NULL; allocs++; return malloc(n); }
static void f_free(void *p, void *u) { (void)u; allocs--; free(p); }

static void exercise(ka_client *c, const ka_config *k)
{
    static const char msg[300] = { 0 };
    size_t i, pending = 0;
    if (ka_client_state(c) != KA_STATE_IDLE) abort();
    if (ka_client_socket(c) != KA_INVALID_SOCKET || ka_client_timeout_ms(c) != -1 || ka_client_want(c) != 0) abort();
    for (i = 0; i < 8; i++) {
        size_t n = (i * 37) % sizeof msg;
        int rc = ka_client_send(c, msg, n);
        if (rc == 0) pending += n;
        else if (rc == KA_EMSGSIZE) { if (n <= k->send_buffer_size) abort(); }     /* can never fit */
        else if (rc != KA_EAGAIN && !(rc == KA_ENOMEM && k->mem_alloc)) abort();
        if (ka_client_pending(c) != pending || pending > k->send_buffer_size) abort();
    }
    if (ka_client_poll(c, 0) != KA_ESTATE) abort();
    ka_client_stop(c);
    if (ka_client_send(c, msg, 1) != KA_ENOTCONN) abort();
    if (ka_client_pending(c) != pending) abort();        /* stop keeps the queue */
}

static union { unsigned long long a; void *p; unsigned char b[1 << 18]; } arena;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    rd r;
    ka_config k;
    ka_client *c;
    char *host, *port;
    unsigned char *hb = NULL;
    size_t need, hblen, off, have;
    int rc, hooks;
    r.p = data; r.n = n; r.i = 0;

    ka_config_init(&k);
    host = str(&r, "127.0.0.1");
    port = str(&r, "8080");
    k.host = host;
    k.port = port;
    k.keepalive_idle_ms = num(&r, k.keepalive_idle_ms);
    k.keepalive_interval_ms = num(&r, k.keepalive_interval_ms);
    k.keepalive_count = num(&r, k.keepalive_count);
    k.user_timeout_ms = num(&r, k.user_timeout_ms);
    k.connect_timeout_ms = num(&r, k.connect_timeout_ms);
    k.backoff_initial_ms = num(&r, k.backoff_initial_ms);
    k.backoff_max_ms = num(&r, k.backoff_max_ms);
    k.backoff_multiplier = dbl(&r, k.backoff_multiplier);
    k.backoff_jitter = dbl(&r, k.backoff_jitter);
    k.backoff_reset_ms = num(&r, k.backoff_reset_ms);
    k.max_attempts = num(&r, k.max_attempts);
    k.heartbeat_interval_ms = num(&r, k.heartbeat_interval_ms);
    hblen = u8(&r) % 64;
    if (u8(&r) & 1) {
        hb = (unsigned char *)malloc(hblen + 1);
        if (hb) memset(hb, 'h', hblen + 1);
    }
    k.heartbeat_data = hb;
    k.heartbeat_len = (u8(&r) & 7) == 0 ? size(&r, hblen) : hblen;
    if (k.heartbeat_len > hblen + 1) k.heartbeat_data = NULL;   /* never let it point past its block */
    k.idle_timeout_ms = num(&r, k.idle_timeout_ms);
    k.send_buffer_size = size(&r, k.send_buffer_size);
    k.recv_buffer_size = size(&r, k.recv_buffer_size);
    k.random_seed = u32(&r);
    hooks = (int)(u8(&r) % 4);
    if (hooks & 1) k.mem_alloc = f_alloc;
    if (hooks & 2) k.mem_free = f_free;

    need = ka_client_size(&k);

    /* ka_client_new: 0 or a negative code, *out NULL on failure. Without
     * hooks a huge (valid) config would really allocate: skip new then. */
    if (k.mem_alloc || need == 0 || need <= ((size_t)4 << 20)) {
        c = (ka_client *)&k;
        allocs = 0;
        rc = ka_client_new(&c, &k);
        if (rc > 0) abort();
        if (rc == 0) {
            if (!c || need == 0) abort();
            exercise(c, &k);
            ka_client_free(c);
        } else {
            if (c != NULL) abort();
            if (rc != KA_EINVAL && rc != KA_ENOMEM) abort();
            if (rc == KA_EINVAL && need != 0) abort();        /* size said it was valid */
            if (rc == KA_ENOMEM && !(k.mem_alloc && need > ((size_t)4 << 20))) abort();
        }
        if (allocs != 0) abort();                               /* every hook allocation given back */
    }

    /* ka_client_init into an arena, at an offset and size the input picks */
    off = u8(&r) % 17;
    have = u8(&r) & 1 ? need : (size_t)u32(&r) % (sizeof arena.b + 1);
    if (have > sizeof arena.b - off) have = sizeof arena.b - off;
    c = (ka_client *)&k;
    rc = ka_client_init(&c, arena.b + off, have, &k);
    if (rc == 0) {
        if (need == 0 || have < need || off % 8 != 0 || c != (ka_client *)(arena.b + off)) abort();
        exercise(c, &k);
        ka_client_free(c);
    } else {
        if (rc != KA_EINVAL || c != NULL) abort();
        if (need != 0 && have >= need && off % 8 == 0) abort();     /* it fit: why refuse? */
    }
    if (ka_client_init(NULL, arena.b, sizeof arena.b, &k) != KA_EINVAL) abort();

    /* The backoff rule: never above backoff_max_ms on a valid config, no
     * undefined behaviour on any config, and cheap for any attempt number. */
    {
        unsigned rng = k.random_seed, a;
        for (a = 0; a < 40; a += 1 + a / 4) {
            unsigned d = ka_backoff_delay(&k, a, &rng);
            if (need != 0 && d > k.backoff_max_ms) abort();
        }
        (void)ka_backoff_delay(&k, 0xffffffffu, &rng);
    }

    free(host);
    free(port);
    free(hb);
    return 0;
}
