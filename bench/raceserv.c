/* raceserv: the one server every contender of `make bench` talks to.
 *
 *   raceserv [-b ADDR] [-e ECHO_PORT] [-s SINK_PORT] [-T SECONDS]
 *
 * Two listeners on ADDR (default 127.0.0.1; port 0 = any free one): the echo
 * port sends back whatever arrives, the sink port reads and drops it. Either
 * kind closes its side when the client has closed its own. One thread, epoll,
 * any number of connections; it prints "PORTS echo N sink M" once listening
 * and exits after SECONDS (default 900) or on SIGTERM. A RESP request echoed
 * back is a valid RESP array reply, so hiredis talks to the echo port too.
 *
 * Bench-only code: built with -D_GNU_SOURCE. */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ECHO 1
#define SINK 2

/* An echo connection whose reply the kernel did not take whole keeps the
 * rest here and stops reading until it is written. */
typedef struct conn {
    int fd, kind;
    char *pend;
    size_t npend;
} conn;

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static int listen_on(const char *addr, int *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int on = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)*port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 4096) != 0) {
        perror("raceserv: listen");
        return -1;
    }
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void drop(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pend);
    free(c);
}

static void watch(int ep, conn *c, unsigned events, int op)
{
    struct epoll_event ev;
    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(ep, op, c->fd, &ev);
}

static void accept_all(int ep, int l, int kind)
{
    int fd;
    while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        conn *c = calloc(1, sizeof *c);
        if (!c) { close(fd); continue; }
        c->fd = fd;
        c->kind = kind;
        watch(ep, c, EPOLLIN, EPOLL_CTL_ADD);
    }
}

/* 0 while the connection lives, -1 when it is to be dropped */
static int flush_pending(int ep, conn *c)
{
    ssize_t w = send(c->fd, c->pend, c->npend, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    memmove(c->pend, c->pend + w, c->npend - (size_t)w);
    c->npend -= (size_t)w;
    if (c->npend == 0) watch(ep, c, EPOLLIN, EPOLL_CTL_MOD);
    return 0;
}

static int serve(int ep, conn *c, unsigned events)
{
    static char buf[1 << 16];
    ssize_t r, w;
    if (c->npend) return (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ? flush_pending(ep, c) : 0;
    r = recv(c->fd, buf, sizeof buf, 0);
    if (r == 0) return -1;
    if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (c->kind == SINK) return 0;
    w = send(c->fd, buf, (size_t)r, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) return -1;
    if (w < 0) w = 0;
    if (w < r) {
        c->pend = realloc(c->pend, (size_t)(r - w));
        if (!c->pend) return -1;
        memcpy(c->pend, buf + w, (size_t)(r - w));
        c->npend = (size_t)(r - w);
        watch(ep, c, EPOLLOUT, EPOLL_CTL_MOD);
    }
    return 0;
}

static const char *opt(int argc, char **argv, const char *name, const char *def)
{
    int i;
    for (i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

int main(int argc, char **argv)
{
    const char *addr = opt(argc, argv, "-b", "127.0.0.1");
    int eport = atoi(opt(argc, argv, "-e", "0")), sport = atoi(opt(argc, argv, "-s", "0"));
    time_t end = time(NULL) + atoi(opt(argc, argv, "-T", "900"));
    struct epoll_event evs[256];
    struct rlimit rl;
    int ep, el, sl, i, n;
    static conn echo_l, sink_l;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    ep = epoll_create1(0);
    el = listen_on(addr, &eport);
    sl = listen_on(addr, &sport);
    if (ep < 0 || el < 0 || sl < 0) return 1;
    echo_l.fd = el;
    sink_l.fd = sl;
    watch(ep, &echo_l, EPOLLIN, EPOLL_CTL_ADD);
    watch(ep, &sink_l, EPOLLIN, EPOLL_CTL_ADD);
    printf("PORTS echo %d sink %d\n", eport, sport);
    fflush(stdout);
    while (!stop && time(NULL) < end) {
        n = epoll_wait(ep, evs, 256, 1000);
        for (i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c == &echo_l) accept_all(ep, el, ECHO);
            else if (c == &sink_l) accept_all(ep, sl, SINK);
            else if (serve(ep, c, evs[i].events) != 0) drop(ep, c);
        }
    }
    return 0;
}
