/* Retry policies for ka_config.next_delay, and a server's "retry after":
 * see retry.h. Example code: copy what you need. */
#include <string.h>

#include "retry.h"

/* ---- decorrelated jitter ---- */

/* xorshift32 (Marsaglia): a small generator whose state lives in the
 * policy, so that clients never share one and a seed repeats a run. Jitter
 * needs spread, not secrecy. */
static unsigned next_random(unsigned *state)
{
    unsigned x = *state ? *state : 0x9E3779B9u;     /* 0 is xorshift's one fixed point */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* Uniform in [lo, hi], whole milliseconds (hi >= lo). */
static unsigned random_between(unsigned *state, unsigned lo, unsigned hi)
{
    unsigned span = hi - lo;
    if (span == 0xFFFFFFFFu) return next_random(state);
    return lo + next_random(state) % (span + 1u);
}

void decorrelated_jitter_init(decorrelated_jitter *p, unsigned base_ms, unsigned cap_ms, unsigned seed)
{
    p->base_ms = base_ms ? base_ms : 1;
    p->cap_ms = cap_ms > p->base_ms ? cap_ms : p->base_ms;
    p->sleep_ms = p->base_ms;
    p->rng = seed;
}

unsigned decorrelated_jitter_next(decorrelated_jitter *p, unsigned attempt)
{
    unsigned hi;
    if (attempt <= 1) p->sleep_ms = p->base_ms;     /* a fresh outage starts over */
    /* sleep * 3, without overflow: the cap bounds it anyway */
    hi = p->sleep_ms > p->cap_ms / 3 ? p->cap_ms : p->sleep_ms * 3;
    p->sleep_ms = random_between(&p->rng, p->base_ms, hi);
    return p->sleep_ms;
}

/* ---- a fixed schedule ---- */

unsigned fixed_schedule_next(const fixed_schedule *p, unsigned attempt)
{
    size_t i = attempt ? attempt - 1 : 0;
    return p->delays_ms[i < p->count ? i : p->count - 1];
}

unsigned fixed_schedule_max(const fixed_schedule *p)
{
    unsigned m = 0;
    size_t i;
    for (i = 0; i < p->count; i++)
        if (p->delays_ms[i] > m) m = p->delays_ms[i];
    return m;
}

/* ---- "RETRY-AFTER <seconds>" ---- */

/* One line (without its '\n'): 1 and *ms, or 0 if it is not such a line.
 * Seconds are digits with an optional fraction of up to three digits;
 * anything larger than a day is taken as a day. */
static int parse_line(const char *s, size_t len, unsigned *ms)
{
    static const char key[] = "RETRY-AFTER ";
    unsigned long whole = 0, frac = 0, scale = 1000;
    size_t i = sizeof key - 1;
    if (len < i + 1 || memcmp(s, key, i) != 0) return 0;
    if (s[len - 1] == '\r') len--;
    if (i == len || s[i] < '0' || s[i] > '9') return 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        if (whole < 86400) whole = whole * 10 + (unsigned long)(s[i] - '0');
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (scale > 1) { scale /= 10; frac += (unsigned long)(s[i] - '0') * scale; }
    }
    if (i != len) return 0;
    if (whole >= 86400) whole = 86400, frac = 0;
    *ms = (unsigned)(whole * 1000 + frac);
    return 1;
}

int retry_after_scan(const char *buf, size_t len, unsigned *ms)
{
    int found = 0;
    const char *nl;
    while ((nl = memchr(buf, '\n', len)) != NULL) {
        size_t n = (size_t)(nl - buf);
        found |= parse_line(buf, n, ms);
        len -= n + 1;
        buf = nl + 1;
    }
    return found;
}
