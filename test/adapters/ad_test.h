/* The test client every adapter program shares: what it does and what it
 * checks, whatever loop drives it.
 *
 *   ad_PROG HOST PORT CONNECTS local|server DEADLINE_MS
 *
 * On each connection it sends "hello N\n" and waits for the echo. After
 * the echo of connection CONNECTS it frees the adapter from inside on_data.
 * Before that, "local" drops the connection from inside on_data and
 * reconnects at once (the library closes a socket while the adapter is
 * dispatching, and the new attempt usually gets the same number while the
 * old registration is being taken down); "server" waits for the server to
 * go away and come back.
 *
 * Checks: every on_socket reaches the application's own on_socket with its
 * own user pointer, and the adapter's registration matches it at that
 * moment (present with the events asked for; absent before the library
 * closes the socket); only the connection is registered while connected;
 * after the free the application holds no socket the library announced,
 * and the process has exactly the descriptors it had before the adapter
 * (a lookup thread may close its own a moment after the free);
 * the loop never spins (at most 100 rounds a second, and 100 more: a
 * waiting client needs a few, a loop woken for nothing thousands).
 *
 * Lines: "<ms> connected N family 4|6", "<ms> echo N", "<ms> lost N REASON",
 * "<ms> retry N", "log ...", "FAIL: ...", and last
 * "done max_regs M reused U rounds R" (U: sockets that got a number
 * withdrawn in the same callback) or "FAILED". Exit status 0 when every check held.
 *
 * The program defines AD_USER(user) (the application's pointer from the
 * adapter's) before including this, and ad_registered() and ad_free();
 * it runs its loop until app.freed or ad_expired(), then calls ad_stop()
 * and, once the loop has let go of the adapter, returns ad_finish(). */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include "ka_client.h"

#define AD_ANY 8                /* ad_registered: present, events not known to the test */
#define AD_MAX_SOCKS 16

typedef struct ad_app {
    int want_connects, local;
    int connects, echoes, freed, failed;
    unsigned long long t0, deadline;
    size_t got;                 /* bytes of the current echo */
    ka_socket socks[AD_MAX_SOCKS];
    int nsocks, max_socks, base_fds;
    int in_data, reused;        /* reused: the next socket got the number on_data's drop withdrew */
    ka_socket dropped;          /* that number, until the next new socket */
    long rounds;                /* loop iterations: the program counts them */
} ad_app;

static ad_app app;

static int ad_registered(ka_socket s);  /* -1 absent, else KA_READ | KA_WRITE or AD_ANY */
static void ad_free(void);              /* the adapter's free */

static unsigned long long ad_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

static void ad_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    app.failed = 1;
}

static int ad_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = -1;                 /* the directory's own descriptor */
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n - 2;               /* "." and ".." */
}

static int ad_family(ka_client *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(ka_client_socket(c), (struct sockaddr *)&ss, &len) != 0) return 0;
    return ss.ss_family == AF_INET6 ? 6 : 4;
}

static void ad_on_connect(ka_client *c, void *user)
{
    ad_app *a = AD_USER(user);
    char msg[32];
    int len = snprintf(msg, sizeof msg, "hello %d\n", ++a->connects);
    printf("%llu connected %d family %d\n", ad_now() - a->t0, a->connects, ad_family(c));
    a->got = 0;
    if (ka_client_send(c, msg, (size_t)len) != 0) ad_fail("send on connection %d", a->connects);
}

static void ad_on_data(ka_client *c, const void *data, size_t len, void *user)
{
    ad_app *a = AD_USER(user);
    (void)data;
    a->got += len;
    if (a->got < strlen("hello N\n")) return;
    printf("%llu echo %d\n", ad_now() - a->t0, ++a->echoes);
    if (a->nsocks != 1) ad_fail("%d sockets registered while connected, not 1", a->nsocks);
    if (a->echoes >= a->want_connects) {
        a->freed = 1;
        ad_free();              /* from inside a callback: deferred by the adapter */
    } else if (a->local) {
        a->in_data = 1;
        a->dropped = KA_INVALID_SOCKET;
        ka_client_disconnect(c);    /* the library closes the socket inside this callback */
        ka_client_retry_now(c);     /* and opens the next one, likely with the same number */
        a->in_data = 0;
    }
}

static void ad_on_disconnect(ka_client *c, const ka_disconnect_info *di, void *user)
{
    (void)c;
    printf("%llu lost %d %s\n", ad_now() - AD_USER(user)->t0, AD_USER(user)->connects, ka_reason_str(di->reason));
}

static void ad_on_retry(ka_client *c, const ka_retry_info *ri, void *user)
{
    (void)c;
    printf("%llu retry %u %s\n", ad_now() - AD_USER(user)->t0, ri->attempt, ka_reason_str(ri->reason));
}

static void ad_on_log(ka_client *c, int level, const char *msg, void *user)
{
    (void)c, (void)level, (void)user;
    printf("log %s\n", msg);
}

/* The application's own on_socket, which the adapter chains after its own:
 * the adapter's registration must already match what the library says. */
static void ad_on_socket(ka_client *c, ka_socket s, int want, void *user)
{
    ad_app *a = user;
    int i = 0, seen = ad_registered(s);
    (void)c;
    if (a != &app) ad_fail("on_socket got user %p, not the application's", user);
    while (i < a->nsocks && a->socks[i] != s) i++;
    if (want && i == a->nsocks && a->nsocks < AD_MAX_SOCKS) {     /* a new socket */
        a->socks[a->nsocks++] = s;
        if (s == a->dropped) a->reused++;
        a->dropped = KA_INVALID_SOCKET;
    }
    if (!want && i < a->nsocks) a->socks[i] = a->socks[--a->nsocks];
    if (!want && a->in_data) a->dropped = s;
    if (a->nsocks > a->max_socks) a->max_socks = a->nsocks;
    if (want && seen != want && seen != AD_ANY) ad_fail("socket %d: library wants %d, adapter has %d", (int)s, want, seen);
    if (!want && seen != -1) ad_fail("socket %d still registered when it is withdrawn", (int)s);
}

/* Parses the command line into cfg (the callbacks above, user = &app). */
static void ad_setup(int argc, char **argv, ka_config *cfg)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT CONNECTS local|server DEADLINE_MS\n", argv[0]);
        exit(2);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    app.want_connects = atoi(argv[3]);
    app.local = strcmp(argv[4], "local") == 0;
    app.dropped = KA_INVALID_SOCKET;
    app.base_fds = ad_count_fds();
    ka_config_init(cfg);
    cfg->host = argv[1];
    cfg->port = argv[2];
    cfg->connect_timeout_ms = 5000;
    cfg->backoff_initial_ms = 100;
    cfg->backoff_max_ms = 400;
    cfg->backoff_reset_ms = 100;
    cfg->cb.on_connect = ad_on_connect;
    cfg->cb.on_data = ad_on_data;
    cfg->cb.on_disconnect = ad_on_disconnect;
    cfg->cb.on_retry = ad_on_retry;
    cfg->cb.on_log = ad_on_log;
    cfg->cb.on_socket = ad_on_socket;
    cfg->user = &app;
    app.t0 = ad_now();
    app.deadline = app.t0 + (unsigned long long)atol(argv[5]);
}

static int ad_expired(void) { return ad_now() >= app.deadline; }

/* After the loop: a client the deadline caught is freed here, outside any
 * callback. */
static void ad_stop(void)
{
    if (app.freed) return;
    ad_fail("deadline passed after %d connections, %d echoes", app.connects, app.echoes);
    app.freed = 1;
    ad_free();
}

/* The descriptors come back to what they were before the adapter, within
 * 2 s: a name lookup's helper thread closes its own pipe when it ends,
 * which may be just after the free. */
static int ad_fds_back(void)
{
    unsigned long long end = ad_now() + 2000;
    struct timespec pause = { 0, 10 * 1000000L };
    int fds;
    while ((fds = ad_count_fds()) != app.base_fds && ad_now() < end) nanosleep(&pause, NULL);
    return fds;
}

/* Once the loop has let go of the adapter: nothing is left, nothing leaked. */
static int ad_finish(void)
{
    long ms = (long)(ad_now() - app.t0);
    int fds = ad_fds_back();
    if (app.rounds > 100 + ms / 10) ad_fail("%ld loop rounds in %ld ms: the loop spins", app.rounds, ms);
    if (app.nsocks) ad_fail("%d sockets never withdrawn", app.nsocks);
    if (fds != app.base_fds) ad_fail("%d descriptors open after the free, %d before", fds, app.base_fds);
    if (app.failed) { puts("FAILED"); return 1; }
    printf("done max_regs %d reused %d rounds %ld\n", app.max_socks, app.reused, app.rounds);
    return 0;
}
