/* ka_uv: a ka_client on a libuv loop. MIT licensed; see README.md,
 * "Your own event loop".
 *
 *   ka_uv *a;
 *   cfg.user = &my_app;                    (set callbacks and user as usual)
 *   if (ka_uv_new(&a, uv_default_loop(), &cfg) == 0 && ka_client_start(a->c) == 0)
 *       uv_run(uv_default_loop(), UV_RUN_DEFAULT);
 *
 * One uv_poll_t per socket the client watches, one uv_timer_t for its
 * timers. The timer is re-armed after every call the adapter makes and
 * before every poll of the loop, so calls of your own (ka_client_send,
 * ka_client_start...) from any libuv callback need nothing more.
 *
 * The adapter sets cfg.cb.on_socket and cfg.user on its own copy of cfg:
 * every callback then receives the adapter as its user pointer, and yours
 * is ((ka_uv *)user)->user. An on_socket of yours is still called, after
 * the adapter's, with your pointer.
 *
 * Free with ka_uv_free, from anywhere, callbacks included; never with
 * ka_client_free. Its handles close asynchronously: the memory goes back
 * during the loop's next close phase, and a loop with nothing else on it
 * then ends (uv_loop_close succeeds). */
#ifndef KA_UV_H
#define KA_UV_H

#include <uv.h>
#include "ka_client.h"

struct ka_uv_sock;

typedef struct ka_uv {
    void *user;                 /* the cfg.user given to ka_uv_new */
    ka_client *c;
    uv_loop_t *loop;
    /* private */
    uv_timer_t timer;
    uv_prepare_t prepare;       /* re-arms the timer before each poll */
    struct ka_uv_sock *socks;   /* the sockets being polled */
    void (*on_socket)(ka_client *c, ka_socket s, int want, void *user);
    int busy, freed, open;
} ka_uv;

/* Creates the client (ka_client_new on a copy of cfg) and its handles on
 * loop. Returns 0, KA_EINVAL (bad cfg) or KA_ENOMEM. */
int  ka_uv_new(ka_uv **out, uv_loop_t *loop, const ka_config *cfg);

/* Frees the client and closes the adapter's handles; from a callback,
 * once the call that ran it is over. Every socket is withdrawn first. */
void ka_uv_free(ka_uv *a);

#endif
