/* Retry policies for ka_config.next_delay, and a server's "retry after"
 * for ka_client_retry_in. Example code: copy what you need.
 *
 * The library's own rule (backoff_initial_ms, backoff_multiplier,
 * backoff_jitter) is full exponential backoff with jitter. next_delay
 * replaces it, attempt by attempt; two common alternatives follow.
 * ka_retry_info.attempt is 1 for the first retry after a connection that
 * stayed up backoff_reset_ms (or after ka_client_start), so both policies
 * start over there. The library caps whatever next_delay returns at
 * backoff_max_ms: set that to the policy's own cap or above (and
 * backoff_initial_ms no higher than it, or ka_config_error names that
 * field). What the backoff rule would have drawn comes as proposed_ms;
 * these policies ignore it.
 *
 * A policy keeps its own state: one per client, never shared, and next_delay
 * runs on the client's thread, so it needs no lock. */
#ifndef EXAMPLES_RETRY_H
#define EXAMPLES_RETRY_H

#include <stddef.h>

/* ---- decorrelated jitter --------------------------------------------------
 * From the AWS Architecture Blog's "Exponential Backoff And Jitter" (Marc
 * Brooker, 2015): sleep = min(cap, random_between(base, sleep * 3)), sleep
 * starting at base. Each delay grows from the last one drawn rather than
 * from the attempt number, so clients that failed together drift apart at
 * once, and no delay is ever shorter than base. */
typedef struct decorrelated_jitter {
    unsigned base_ms, cap_ms;
    unsigned sleep_ms;          /* the last delay drawn */
    unsigned rng;               /* this policy's generator state */
} decorrelated_jitter;

/* base_ms >= 1, cap_ms >= base_ms; seed: any value (clients that should
 * spread need different seeds: mix in the process id, a clock, an index). */
void     decorrelated_jitter_init(decorrelated_jitter *p, unsigned base_ms, unsigned cap_ms, unsigned seed);

/* The delay before retry `attempt` (ka_retry_info.attempt). */
unsigned decorrelated_jitter_next(decorrelated_jitter *p, unsigned attempt);

/* ---- a fixed schedule -----------------------------------------------------
 * Delays from a table, the last one repeated: {100, 1000, 5000, 30000}
 * retries at once-ish, then after a second, then every 5 s, then every 30 s
 * for good. Predictable, which is what an operator reading the logs or a
 * device with a radio duty cycle may want. Add jitter (the library's
 * backoff_jitter does not apply to it) if a fleet shares one schedule. */
typedef struct fixed_schedule {
    const unsigned *delays_ms;  /* at least one entry; not copied */
    size_t count;
} fixed_schedule;

unsigned fixed_schedule_next(const fixed_schedule *p, unsigned attempt);

/* The largest entry: what backoff_max_ms must be at least. */
unsigned fixed_schedule_max(const fixed_schedule *p);

/* ---- a server's "retry after" ----------------------------------------------
 * A server that is going away, or is overloaded, may say when to come back
 * before it closes, as HTTP's Retry-After or an MQTT v5 server reference
 * does. Here the line is "RETRY-AFTER <seconds>\n", seconds with up to three
 * decimals ("30", "0.25"). Hand it to ka_client_retry_in from on_data: the
 * retry after this connection ends waits that long instead of the policy's
 * delay (and beyond backoff_max_ms if the server asks). */

/* Looks for complete "RETRY-AFTER" lines in buf[0..len): 1 and *ms set
 * from the last one found, or 0 when there is none. A line split across
 * two reads is not seen: keep a line buffer if your server may do that. */
int retry_after_scan(const char *buf, size_t len, unsigned *ms);

#endif
