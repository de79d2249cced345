/* ka_uv: see ka_uv.h. MIT licensed. */
#define _POSIX_C_SOURCE 200809L     /* uv.h needs the POSIX types under -std=c99 */
#include <stdlib.h>
#include "ka_uv.h"

/* One socket: the poll handle comes first, so the handle is the record. */
typedef struct ka_uv_sock {
    uv_poll_t poll;             /* poll.data is the adapter */
    ka_socket s;
    int events;                 /* UV_READABLE | UV_WRITABLE */
    int closed;                 /* uv_close called: only its close callback touches it now */
    struct ka_uv_sock *next;
} ka_uv_sock;

static void ka_uv_on_timer(uv_timer_t *t);

static void ka_uv_arm(ka_uv *a)
{
    long t = ka_client_timeout_ms(a->c);
    if (t < 0) { uv_timer_stop(&a->timer); return; }
    uv_update_time(a->loop);            /* the loop's clock is from before this iteration's callbacks */
    uv_timer_start(&a->timer, ka_uv_on_timer, (uint64_t)t, 0);
}

static void ka_uv_release(uv_handle_t *h)
{
    ka_uv *a = h->data;
    if (--a->open == 0) free(a);
}

static void ka_uv_teardown(ka_uv *a)
{
    uv_close((uv_handle_t *)&a->timer, ka_uv_release);
    uv_close((uv_handle_t *)&a->prepare, ka_uv_release);
}

/* Runs the client for one event, then re-arms its timer. */
static void ka_uv_process(ka_uv *a, ka_socket s, int ready)
{
    a->busy = 1;
    ka_client_process_socket(a->c, s, ready);
    a->busy = 0;
    if (a->freed) ka_uv_teardown(a);
    else ka_uv_arm(a);
}

static void ka_uv_on_poll(uv_poll_t *h, int status, int events)
{
    ka_uv_sock *w = (ka_uv_sock *)h;
    int ready = status < 0 ? KA_READ : ((events & UV_READABLE) ? KA_READ : 0) | ((events & UV_WRITABLE) ? KA_WRITE : 0);
    ka_uv_process(h->data, w->s, ready);    /* may close w: its memory lasts until its close callback */
    if (status < 0 && !w->closed) uv_poll_start(h, w->events, ka_uv_on_poll);  /* libuv stopped it on the error */
}

static void ka_uv_on_timer(uv_timer_t *t) { ka_uv_process(t->data, KA_INVALID_SOCKET, 0); }
static void ka_uv_on_prepare(uv_prepare_t *p) { ka_uv_arm(p->data); }
static void ka_uv_free_sock(uv_handle_t *h) { free(h); }

static ka_uv_sock *ka_uv_watch(ka_uv *a, ka_socket s)
{
    ka_uv_sock *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    if (uv_poll_init_socket(a->loop, &w->poll, s) != 0) { free(w); return NULL; }
    w->poll.data = a;
    w->s = s;
    w->next = a->socks;
    return a->socks = w;
}

/* uv_poll's rule: stop polling before the descriptor is closed. on_socket
 * with want 0 comes before the library closes it, and uv_close stops the
 * handle at once; the record's memory goes back in its close callback. */
static void ka_uv_on_socket(ka_client *c, ka_socket s, int want, void *user)
{
    ka_uv *a = user;
    ka_uv_sock **p = &a->socks, *w;
    while (*p && (*p)->s != s) p = &(*p)->next;
    w = *p;
    if (w && !want) {
        *p = w->next;
        w->closed = 1;
        uv_close((uv_handle_t *)&w->poll, ka_uv_free_sock);
    }
    if (want && !w) w = ka_uv_watch(a, s);  /* NULL (no memory): the client's own deadlines end it */
    if (want && w) {
        w->events = ((want & KA_READ) ? UV_READABLE : 0) | ((want & KA_WRITE) ? UV_WRITABLE : 0);
        uv_poll_start(&w->poll, w->events, ka_uv_on_poll);
    }
    if (a->on_socket) a->on_socket(c, s, want, a->user);
}

int ka_uv_new(ka_uv **out, uv_loop_t *loop, const ka_config *cfg)
{
    ka_config own;
    ka_uv *a;
    int rc;
    if (!out || !loop || !cfg) return KA_EINVAL;
    *out = NULL;
    if (!(a = calloc(1, sizeof *a))) return KA_ENOMEM;
    own = *cfg;
    own.user = a;
    own.cb.on_socket = ka_uv_on_socket;
    if ((rc = ka_client_new(&a->c, &own)) != 0) { free(a); return rc; }
    a->user = cfg->user;
    a->on_socket = cfg->cb.on_socket;
    a->loop = loop;
    a->open = 2;                /* the timer and the prepare handle */
    uv_timer_init(loop, &a->timer);
    uv_prepare_init(loop, &a->prepare);
    a->timer.data = a->prepare.data = a;
    uv_prepare_start(&a->prepare, ka_uv_on_prepare);
    uv_unref((uv_handle_t *)&a->prepare);   /* the sockets and the timer keep the loop alive, not this */
    *out = a;
    return 0;
}

void ka_uv_free(ka_uv *a)
{
    if (!a) return;
    a->freed = 1;
    ka_client_free(a->c);       /* withdraws every socket now, even when deferred */
    a->c = NULL;
    if (!a->busy) ka_uv_teardown(a);
}
