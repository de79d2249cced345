/* reconnect: one ka_client whose retries follow a policy of your choosing.
 *
 *   build/examples/reconnect HOST PORT [jitter|schedule] [ATTEMPTS]
 *
 * jitter (the default): decorrelated jitter between 100 ms and 10 s.
 * schedule: 100 ms, 1 s, 5 s, then every 30 s. Each retry is printed with
 * its delay and the reason; what the server sends goes to stdout. With
 * ATTEMPTS, the client gives up after that many failed attempts in a row
 * (max_attempts) and the program ends.
 *
 * The policy lives in the application's user struct and next_delay hands
 * it the attempt number; see retry.h for both policies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ka_client.h"
#include "retry.h"

static const unsigned schedule_ms[] = { 100, 1000, 5000, 30000 };

struct app {
    int use_schedule;
    decorrelated_jitter jitter;
    fixed_schedule schedule;
};

/* ka_config.next_delay: the policy's delay replaces the backoff rule's
 * (proposed_ms). It must not call back into the client. */
static unsigned next_delay(ka_client *c, const ka_retry_info *ri, unsigned proposed_ms, void *user)
{
    struct app *app = user;
    (void)c; (void)proposed_ms;
    if (app->use_schedule) return fixed_schedule_next(&app->schedule, ri->attempt);
    return decorrelated_jitter_next(&app->jitter, ri->attempt);
}

static void on_connect(ka_client *c, void *user)
{
    (void)c; (void)user;
    printf("connected\n");
}

static void on_data(ka_client *c, const void *data, size_t len, void *user)
{
    (void)c; (void)user;
    fwrite(data, 1, len, stdout);
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
    struct app app;
    ka_config cfg;
    ka_client *c;
    int rc;

    if (argc < 3 || argc > 5 || (argc > 3 && strcmp(argv[3], "jitter") != 0 && strcmp(argv[3], "schedule") != 0)) {
        fprintf(stderr, "usage: reconnect HOST PORT [jitter|schedule] [ATTEMPTS]\n");
        return 2;
    }
    memset(&app, 0, sizeof app);
    app.use_schedule = argc > 3 && strcmp(argv[3], "schedule") == 0;
    app.schedule.delays_ms = schedule_ms;
    app.schedule.count = sizeof schedule_ms / sizeof schedule_ms[0];
    /* clients started together need different seeds: the clock and an
     * address that ASLR moves */
    decorrelated_jitter_init(&app.jitter, 100, 10000, (unsigned)time(NULL) ^ (unsigned)(size_t)&app);

    ka_config_init(&cfg);
    cfg.host = argv[1];
    cfg.port = argv[2];
    cfg.next_delay = next_delay;
    /* the library caps every delay at backoff_max_ms: give the policy room
     * (backoff_initial_ms, unused here, must stay below it) */
    cfg.backoff_max_ms = app.use_schedule ? fixed_schedule_max(&app.schedule) : app.jitter.cap_ms;
    cfg.backoff_initial_ms = 100;
    cfg.max_attempts = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 0;
    cfg.cb.on_connect = on_connect;
    cfg.cb.on_data = on_data;
    cfg.cb.on_disconnect = on_disconnect;
    cfg.cb.on_retry = on_retry;
    cfg.cb.on_give_up = on_give_up;
    cfg.user = &app;

    if ((rc = ka_client_new(&c, &cfg)) != 0 || (rc = ka_client_start(c)) != 0) {
        fprintf(stderr, "reconnect: %s\n", ka_strerror(rc));
        return 1;
    }
    while (ka_client_state(c) != KA_STATE_STOPPED)
        ka_client_poll(c, -1);
    ka_client_free(c);
    return 0;
}
