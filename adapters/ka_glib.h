/* ka_glib: a ka_client on a GLib main context. MIT licensed; see
 * README.md, "Your own event loop".
 *
 *   ka_glib *a;
 *   cfg.user = &my_app;                    (set callbacks and user as usual)
 *   if (ka_glib_new(&a, NULL, &cfg) == 0 && ka_client_start(a->c) == 0)
 *       g_main_loop_run(loop);             (NULL: the default context)
 *
 * The adapter is one GSource: each socket the client watches is one of its
 * unix fds (g_source_add_unix_fd), and its poll timeout is the client's
 * next timer, asked for again before every poll of the context (so after
 * every call the adapter makes, and after calls of your own such as
 * ka_client_send or ka_client_start, with nothing more to do).
 *
 * The adapter sets cfg.cb.on_socket and cfg.user on its own copy of cfg:
 * every callback then receives the adapter as its user pointer, and yours
 * is ((ka_glib *)user)->user. An on_socket of yours is still called, after
 * the adapter's, with your pointer.
 *
 * Free with ka_glib_free, from anywhere, callbacks included; never with
 * ka_client_free. The source is destroyed with it. */
#ifndef KA_GLIB_H
#define KA_GLIB_H

#include <glib.h>
#include "ka_client.h"

typedef struct ka_glib_sock {
    ka_socket s;
    gpointer tag;               /* from g_source_add_unix_fd */
} ka_glib_sock;

typedef struct ka_glib {
    GSource source;             /* first: the adapter is the source */
    void *user;                 /* the cfg.user given to ka_glib_new */
    ka_client *c;
    /* private */
    GArray *socks;              /* ka_glib_sock: each socket with its unix fd tag */
    void (*on_socket)(ka_client *c, ka_socket s, int want, void *user);
    unsigned withdrawn;         /* sockets withdrawn so far: readiness older than that is stale */
    int busy, freed;
} ka_glib;

/* Creates the client (ka_client_new on a copy of cfg) and attaches its
 * source to ctx (NULL: the default context). Returns 0, KA_EINVAL (bad
 * cfg) or KA_ENOMEM. */
int  ka_glib_new(ka_glib **out, GMainContext *ctx, const ka_config *cfg);

/* Frees the client and destroys the source; from a callback, once the
 * call that ran it is over. Every socket is withdrawn first. */
void ka_glib_free(ka_glib *a);

#endif
