/* ka_glib: see ka_glib.h. MIT licensed. */
#include "ka_glib.h"

#define KA_GLIB_BATCH 8         /* the client watches at most a handful of sockets */

/* The client's timer is the source's poll timeout, asked for again before
 * every poll, so it follows every call (the application's too). No ready
 * time: setting one wakes the context, and "now + t" differs on each
 * iteration, which would make the context spin. */
static gboolean ka_glib_prepare(GSource *src, gint *timeout)
{
    long t = ka_client_timeout_ms(((ka_glib *)src)->c);
    *timeout = t > G_MAXINT ? G_MAXINT : (gint)t;
    return t == 0;
}

static gboolean ka_glib_check(GSource *src) { return ka_client_timeout_ms(((ka_glib *)src)->c) == 0; }

static int ka_glib_ready(GIOCondition r)
{
    return ((r & (G_IO_IN | G_IO_ERR | G_IO_HUP | G_IO_NVAL)) ? KA_READ : 0) | ((r & G_IO_OUT) ? KA_WRITE : 0);
}

/* The ready sockets first, then the calls: a call may withdraw a socket
 * whose readiness is in the list, and the next socket may get its number,
 * so the list ends at the first withdrawal (the rest shows again). */
static gboolean ka_glib_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    ka_glib *a = (ka_glib *)src;
    ka_socket s[KA_GLIB_BATCH];
    int ready[KA_GLIB_BATCH], n = 0, i;
    unsigned batch = a->withdrawn, j;
    (void)cb, (void)data;
    for (j = 0; j < a->socks->len && n < KA_GLIB_BATCH; j++) {
        ka_glib_sock *w = &g_array_index(a->socks, ka_glib_sock, j);
        GIOCondition r = g_source_query_unix_fd(src, w->tag);
        if (!r) continue;
        s[n] = w->s;
        ready[n++] = ka_glib_ready(r);
    }
    a->busy = 1;
    for (i = 0; i < n && a->withdrawn == batch && !a->freed; i++) ka_client_process_socket(a->c, s[i], ready[i]);
    if (n == 0) ka_client_process_socket(a->c, KA_INVALID_SOCKET, 0);  /* the timer */
    a->busy = 0;
    if (a->freed) g_source_destroy(src);
    return G_SOURCE_CONTINUE;
}

static void ka_glib_finalize(GSource *src) { g_array_free(((ka_glib *)src)->socks, TRUE); }

/* The library tells us before a socket is used and before it is closed. */
static void ka_glib_on_socket(ka_client *c, ka_socket s, int want, void *user)
{
    ka_glib *a = user;
    GIOCondition ev = ((want & KA_READ) ? G_IO_IN : 0) | ((want & KA_WRITE) ? G_IO_OUT : 0);
    ka_glib_sock add;
    guint i = 0;
    while (i < a->socks->len && g_array_index(a->socks, ka_glib_sock, i).s != s) i++;
    if (i < a->socks->len && !want) {
        g_source_remove_unix_fd(&a->source, g_array_index(a->socks, ka_glib_sock, i).tag);
        g_array_remove_index_fast(a->socks, i);
        a->withdrawn++;
    } else if (i < a->socks->len) {
        g_source_modify_unix_fd(&a->source, g_array_index(a->socks, ka_glib_sock, i).tag, ev);
    } else if (want) {
        add.s = s;
        add.tag = g_source_add_unix_fd(&a->source, s, ev);
        g_array_append_val(a->socks, add);
    }
    if (a->on_socket) a->on_socket(c, s, want, a->user);
}

int ka_glib_new(ka_glib **out, GMainContext *ctx, const ka_config *cfg)
{
    static GSourceFuncs funcs = { ka_glib_prepare, ka_glib_check, ka_glib_dispatch, ka_glib_finalize, NULL, NULL };
    ka_config own;
    ka_glib *a;
    int rc;
    if (!out || !cfg) return KA_EINVAL;
    *out = NULL;
    a = (ka_glib *)g_source_new(&funcs, sizeof *a);
    a->socks = g_array_new(FALSE, FALSE, sizeof(ka_glib_sock));
    own = *cfg;
    a->user = cfg->user;
    a->on_socket = cfg->cb.on_socket;
    own.user = a;
    own.cb.on_socket = ka_glib_on_socket;
    if ((rc = ka_client_new(&a->c, &own)) != 0) { g_source_unref(&a->source); return rc; }
    g_source_attach(&a->source, ctx);
    g_source_unref(&a->source);         /* the context holds it now */
    *out = a;
    return 0;
}

void ka_glib_free(ka_glib *a)
{
    if (!a) return;
    a->freed = 1;
    ka_client_free(a->c);       /* withdraws every socket now, even when deferred */
    a->c = NULL;
    if (!a->busy) g_source_destroy(&a->source);
}
