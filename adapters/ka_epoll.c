/* ka_epoll: see ka_epoll.h. MIT licensed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include "ka_epoll.h"

#define KA_EPOLL_BATCH 8        /* the client watches at most a handful of sockets */

/* Registers s, or changes what it waits for: tried as a change first,
 * which is the more frequent (a queue filling and draining). */
static int ka_epoll_set(int epfd, int s, struct epoll_event *ev)
{
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, s, ev) == 0) return 0;
    if (errno != ENOENT) return -1;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, s, ev);
}

/* The library tells us before a socket is used and before it is closed, so
 * the set never holds a closed descriptor, even when the OS hands out the
 * same number again. Level-triggered: an event we skip comes back. */
static void ka_epoll_on_socket(ka_client *c, ka_socket s, int want, void *user)
{
    ka_epoll *a = user;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = ((want & KA_READ) ? EPOLLIN : 0) | ((want & KA_WRITE) ? EPOLLOUT : 0);
    ev.data.fd = s;
    if (!want) {
        epoll_ctl(a->epfd, EPOLL_CTL_DEL, s, &ev);
        a->withdrawn++;
    } else if (ka_epoll_set(a->epfd, s, &ev) != 0) {
        a->err = errno;         /* reported by the next ka_epoll_run */
    }
    if (a->on_socket) a->on_socket(c, s, want, a->user);
}

int ka_epoll_new(ka_epoll **out, const ka_config *cfg)
{
    ka_config own;
    ka_epoll *a;
    int rc;
    if (!out || !cfg) return KA_EINVAL;
    *out = NULL;
    if (!(a = calloc(1, sizeof *a))) return KA_ENOMEM;
    if ((a->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) { free(a); return KA_ESYS; }
    own = *cfg;
    a->user = cfg->user;
    a->on_socket = cfg->cb.on_socket;
    own.user = a;
    own.cb.on_socket = ka_epoll_on_socket;
    if ((rc = ka_client_new(&a->c, &own)) != 0) { close(a->epfd); free(a); return rc; }
    *out = a;
    return 0;
}

static void ka_epoll_release(ka_epoll *a)
{
    close(a->epfd);
    free(a);
}

int ka_epoll_run(ka_epoll *a, int max_ms)
{
    struct epoll_event ev[KA_EPOLL_BATCH];
    ka_state st = ka_client_state(a->c);
    long t = ka_client_timeout_ms(a->c);
    unsigned batch = a->withdrawn;
    int n, i;
    if (st == KA_STATE_IDLE || st == KA_STATE_STOPPED) return KA_ESTATE;
    if (a->err) { errno = a->err; a->err = 0; return KA_ESYS; }
    if (max_ms >= 0 && (t < 0 || t > max_ms)) t = max_ms;
    n = epoll_wait(a->epfd, ev, KA_EPOLL_BATCH, t > 0x7fffffff ? 0x7fffffff : (int)t);
    if (n < 0) return errno == EINTR ? 0 : KA_ESYS;
    a->busy = 1;
    /* A call may close a socket whose event is still in the batch, and
     * the next socket may get its number: stop at the first withdrawal. */
    for (i = 0; i < n && a->withdrawn == batch && !a->freed; i++) {
        uint32_t e = ev[i].events;
        int ready = ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? KA_READ : 0) | ((e & EPOLLOUT) ? KA_WRITE : 0);
        ka_client_process_socket(a->c, ev[i].data.fd, ready);
    }
    if (n == 0) ka_client_process_socket(a->c, KA_INVALID_SOCKET, 0);  /* the timer */
    a->busy = 0;
    if (a->freed) ka_epoll_release(a);
    return 0;
}

void ka_epoll_free(ka_epoll *a)
{
    if (!a) return;
    a->freed = 1;
    ka_client_free(a->c);       /* withdraws every socket now, even when deferred */
    a->c = NULL;
    if (!a->busy) ka_epoll_release(a);
}
