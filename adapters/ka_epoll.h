/* ka_epoll: a ka_client driven by an epoll set of its own (Linux).
 * MIT licensed; see README.md, "Your own event loop".
 *
 *   ka_epoll *a;
 *   cfg.user = &my_app;                    (set callbacks and user as usual)
 *   if (ka_epoll_new(&a, &cfg) == 0 && ka_client_start(a->c) == 0)
 *       while (!my_app.quit) ka_epoll_run(a, -1);
 *
 * The adapter sets cfg.cb.on_socket and cfg.user on its own copy of cfg:
 * every callback then receives the adapter as its user pointer, and yours
 * is ((ka_epoll *)user)->user. An on_socket of yours is still called, after
 * the adapter's, with your pointer.
 *
 * Inside another loop (select, poll, libevent...), watch a->epfd for
 * reading and wake after ka_client_timeout_ms(a->c); then call
 * ka_epoll_run(a, 0).
 *
 * Free with ka_epoll_free, from anywhere, callbacks included; never with
 * ka_client_free, which would leave the adapter holding a dead client. */
#ifndef KA_EPOLL_H
#define KA_EPOLL_H

#include "ka_client.h"

typedef struct ka_epoll {
    void *user;                 /* the cfg.user given to ka_epoll_new */
    ka_client *c;
    int epfd;                   /* one registration per socket the client watches */
    /* private */
    void (*on_socket)(ka_client *c, ka_socket s, int want, void *user);
    unsigned withdrawn;         /* sockets withdrawn so far: a batch older than that is stale */
    int busy, freed, err;
} ka_epoll;

/* Creates the epoll set and the client (ka_client_new on a copy of cfg).
 * Returns 0, KA_EINVAL (bad cfg), KA_ENOMEM or KA_ESYS (epoll_create1). */
int  ka_epoll_new(ka_epoll **out, const ka_config *cfg);

/* One epoll_wait round, at most max_ms (negative: as long as the client's
 * timers allow), then the ready sockets and due timers. Returns 0,
 * KA_ESTATE when the client is idle or stopped (nothing to wait for), or
 * KA_ESYS (errno says why; also when a registration failed). A signal
 * ends the round early with 0. */
int  ka_epoll_run(ka_epoll *a, int max_ms);

/* Frees the client and the adapter; from a callback, once the round that
 * ran it is over. Every registration is gone first. */
void ka_epoll_free(ka_epoll *a);

#endif
