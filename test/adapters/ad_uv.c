/* ad_uv: the adapter test client (ad_test.h) on adapters/ka_uv, on a loop
 * of its own. A socket counts as registered while an active poll handle
 * holds it, or while the kernel's epoll set behind the loop still does (a
 * closed handle must have left it before the library closes the socket).
 * After the free the loop must close: no handle, timer or socket left. */
#define _POSIX_C_SOURCE 200809L
#include "ka_uv.h"

#define AD_USER(user) ((ad_app *)((ka_uv *)(user))->user)
#include "ad_test.h"

static uv_loop_t loop;
static ka_uv *ad;

typedef struct { ka_socket s; int found; } ad_search;

static void ad_find_poll(uv_handle_t *h, void *arg)
{
    ad_search *q = arg;
    uv_os_fd_t fd;
    if (h->type == UV_POLL && uv_is_active(h) && !uv_is_closing(h) && uv_fileno(h, &fd) == 0 && fd == q->s) q->found = 1;
}

static int ad_in_backend(ka_socket s)
{
    char path[64], line[256];
    int fd, seen = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", uv_backend_fd(&loop));
    if (!(f = fopen(path, "r"))) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "tfd: %d", &fd) == 1 && fd == s) seen = 1;
    fclose(f);
    return seen;
}

static int ad_registered(ka_socket s)
{
    ad_search q;
    q.s = s;
    q.found = 0;
    uv_walk(&loop, ad_find_poll, &q);
    return q.found ? AD_ANY : ad_in_backend(s) ? KA_READ | KA_WRITE : -1;
}

static void ad_free(void) { ka_uv_free(ad); }

static void ad_tick(uv_timer_t *t) { (void)t; }    /* bounds each round: the deadline is looked at */

int main(int argc, char **argv)
{
    ka_config cfg;
    uv_timer_t tick;
    int rc, i;
    uv_loop_init(&loop);        /* libuv's first loop opens a pipe for the whole process: */
    uv_loop_close(&loop);       /* let it exist before ad_setup counts descriptors */
    ad_setup(argc, argv, &cfg);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, ad_tick, 100, 100);
    uv_unref((uv_handle_t *)&tick);
    if ((rc = ka_uv_new(&ad, &loop, &cfg)) != 0 || (rc = ka_client_start(ad->c)) != 0) {
        printf("FAIL: start: %s\n", ka_strerror(rc));
        return 1;
    }
    while (!app.freed && !ad_expired()) {
        app.rounds++;
        uv_run(&loop, UV_RUN_ONCE);
    }
    ad_stop();
    uv_close((uv_handle_t *)&tick, NULL);
    for (i = 0; i < 10 && uv_loop_alive(&loop); i++) uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_run(&loop, UV_RUN_NOWAIT) != 0) ad_fail("the loop is still alive after the free");
    if ((rc = uv_loop_close(&loop)) != 0) ad_fail("uv_loop_close: %s (handles left)", uv_strerror(rc));
    return ad_finish();
}
