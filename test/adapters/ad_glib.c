/* ad_glib: the adapter test client (ad_test.h) on adapters/ka_glib, on a
 * main context of its own. While it runs, a socket counts as registered
 * while the adapter's source holds a unix fd tag for it. After the free the
 * source must be gone from the context, and the context must poll exactly
 * the descriptors it polled before the adapter came (its own wake-up). */
#define _POSIX_C_SOURCE 200809L
#include "ka_glib.h"

#define AD_USER(user) ((ad_app *)((ka_glib *)(user))->user)
#include "ad_test.h"

static GMainContext *ctx;
static ka_glib *ad;

static int ad_registered(ka_socket s)
{
    guint i;
    for (i = 0; i < ad->socks->len; i++)
        if (g_array_index(ad->socks, ka_glib_sock, i).s == s) return AD_ANY;
    return -1;
}

static void ad_free(void) { ka_glib_free(ad); }

static gboolean ad_tick(gpointer data) { (void)data; return G_SOURCE_CONTINUE; }  /* bounds each round */

/* One iteration by hand, without waiting: how many descriptors the
 * context polls now. */
static int ad_polled(void)
{
    GPollFD fds[16];
    gint prio, timeout, n;
    g_main_context_acquire(ctx);
    g_main_context_prepare(ctx, &prio);
    n = g_main_context_query(ctx, G_MAXINT, &timeout, fds, 16);
    g_poll(fds, n < 16 ? n : 16, 0);
    if (g_main_context_check(ctx, G_MAXINT, fds, n < 16 ? n : 16)) g_main_context_dispatch(ctx);
    g_main_context_release(ctx);
    return n;
}

int main(int argc, char **argv)
{
    ka_config cfg;
    GSource *tick;
    guint id;
    int rc, i, before;
    ad_setup(argc, argv, &cfg);
    ctx = g_main_context_new();
    before = ad_polled();
    tick = g_timeout_source_new(100);
    g_source_set_callback(tick, ad_tick, NULL, NULL);
    g_source_attach(tick, ctx);
    if ((rc = ka_glib_new(&ad, ctx, &cfg)) != 0 || (rc = ka_client_start(ad->c)) != 0) {
        printf("FAIL: start: %s\n", ka_strerror(rc));
        return 1;
    }
    id = g_source_get_id(&ad->source);
    while (!app.freed && !ad_expired()) {
        app.rounds++;
        g_main_context_iteration(ctx, TRUE);
    }
    ad_stop();
    g_source_destroy(tick);
    g_source_unref(tick);
    for (i = 0; i < 3; i++) g_main_context_iteration(ctx, FALSE);
    if (g_main_context_find_source_by_id(ctx, id)) ad_fail("the adapter's source is still attached after the free");
    if ((i = ad_polled()) != before) ad_fail("the context polls %d descriptors after the free, %d before", i, before);
    g_main_context_unref(ctx);
    return ad_finish();
}
