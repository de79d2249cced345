/* retry_after: a server's "come back in N seconds", honoured.
 *
 *   build/examples/retry_after HOST PORT [ATTEMPTS]
 *
 * A server going down for maintenance, or shedding load, sends
 * "RETRY-AFTER <seconds>" and closes. Reconnecting at once, or on the
 * backoff rule's next short delay, would only knock again on a closed
 * door: on_data hands the server's figure to ka_client_retry_in, and the
 * retry after this connection waits exactly that long. A later failure
 * that comes without such a line goes back to the backoff rule.
 *
 * Try it with socat as the server:
 *   socat TCP-LISTEN:7000,reuseaddr,fork SYSTEM:'echo RETRY-AFTER 2.5'
 *   build/examples/retry_after 127.0.0.1 7000 */
#include <stdio.h>
#include <stdlib.h>

#include "ka_client.h"
#include "retry.h"

static void on_data(ka_client *c, const void *data, size_t len, void *user)
{
    unsigned ms;
    (void)user;
    fwrite(data, 1, len, stdout);
    if (retry_after_scan(data, len, &ms)) {
        /* connected: this sets the delay of the retry that follows when
         * the server closes (in BACKOFF it would move the pending one) */
        ka_client_retry_in(c, ms);
        printf("server asks to retry in %u ms\n", ms);
    }
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *user)
{
    (void)c; (void)user;
    printf("lost after %lu ms: %s\n", di->connected_ms, ka_reason_str(di->reason));
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *user)
{
    (void)c; (void)user;
    printf("retry %u in %u ms (%s)\n", ri->attempt, ri->delay_ms, ka_reason_str(ri->reason));
    fflush(stdout);
}

static void on_give_up(ka_client *c, const ka_retry_info *ri, void *user)
{
    (void)c; (void)user;
    printf("gave up after %u attempts (%s)\n", ri->attempt, ka_reason_str(ri->reason));
}

int main(int argc, char **argv)
{
    ka_config cfg;
    ka_client *c;
    int rc;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: retry_after HOST PORT [ATTEMPTS]\n");
        return 2;
    }
    ka_config_init(&cfg);
    cfg.host = argv[1];
    cfg.port = argv[2];
    cfg.max_attempts = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 0;
    cfg.cb.on_data = on_data;
    cfg.cb.on_disconnect = on_disconnect;
    cfg.cb.on_retry = on_retry;
    cfg.cb.on_give_up = on_give_up;

    if ((rc = ka_client_new(&c, &cfg)) != 0 || (rc = ka_client_start(c)) != 0) {
        fprintf(stderr, "retry_after: %s\n", ka_strerror(rc));
        return 1;
    }
    while (ka_client_state(c) != KA_STATE_STOPPED)
        ka_client_poll(c, -1);
    ka_client_free(c);
    return 0;
}
