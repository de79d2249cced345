/* ka_client: one TCP client connection kept alive. MIT licensed; see README.md.
 *
 * Layout, top to bottom:
 *   1. compat: feature-test macros, includes, a few tiny platform helpers
 *   2. keepalive: the one place that knows each OS's option names and units
 *   3. send queue: a ring of bytes with a bitmap of message ends
 *   4. the state machine: one function per transition and one dispatcher
 *   5. public API
 */

/* ---- 1. compat ------------------------------------------------------------ */

/* Under -std=c99 glibc and musl hide TCP_KEEPIDLE, clock_gettime() and
 * friends; these macros bring them back. _POSIX_C_SOURCE is deliberately not
 * set: on macOS and the BSDs it would hide TCP_KEEPALIVE and SO_NOSIGPIPE. */
#ifndef _WIN32
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#ifndef _BSD_SOURCE
#define _BSD_SOURCE             /* glibc < 2.19 */
#endif
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE
#endif
#endif

#ifdef _WIN32
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0600     /* GetTickCount64 */
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef _CRT_SECURE_NO_WARNINGS
#define _CRT_SECURE_NO_WARNINGS /* MSVC C4996 on strcpy: lengths are checked in ka_config_ok */
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mstcpip.h>
#include <windows.h>
#else
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>
#endif

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ka_client.h"

#ifdef _WIN32
typedef int ka_socklen;
typedef int ka_iolen;
#define KA_E(wsa, posix) (wsa)
#define KA_SEND_FLAGS 0
#define KA_SHUT_WR SD_SEND

static int ka_sock_err(void) { return WSAGetLastError(); }
static void ka_sock_close(ka_socket s) { closesocket(s); }

#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80     /* Windows 7 SP1 and later */
#endif

/* A non-blocking socket that no child process inherits, from the moment it
 * exists: a thread that spawns a process while another connects must not
 * leak it (a leaked socket outlives our close and keeps the connection up).
 * Systems older than the flag refuse it: then mark the handle afterwards. */
static ka_socket ka_socket_open(int family, int proto)
{
    u_long on = 1;
    ka_socket s = WSASocketW(family, SOCK_STREAM, proto, NULL, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == KA_INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
        s = WSASocketW(family, SOCK_STREAM, proto, NULL, 0, WSA_FLAG_OVERLAPPED);
        if (s != KA_INVALID_SOCKET) SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    }
    if (s != KA_INVALID_SOCKET && ioctlsocket(s, FIONBIO, &on) != 0) {
        int e = WSAGetLastError();
        closesocket(s);
        WSASetLastError(e);
        return KA_INVALID_SOCKET;
    }
    return s;
}

static unsigned long long ka_now_ms(void) { return GetTickCount64(); }

static unsigned long long ka_entropy(void)
{
    LARGE_INTEGER pc;
    FILETIME ft;
    QueryPerformanceCounter(&pc);
    GetSystemTimeAsFileTime(&ft);
    return ((unsigned long long)GetCurrentProcessId() << 32) ^ (unsigned long long)pc.QuadPart ^
           (((unsigned long long)ft.dwHighDateTime << 32) | ft.dwLowDateTime) * 0x9e3779b97f4a7c15ull;
}

/* Each client holds one WSAStartup from ka_client_new/ka_client_init to
 * ka_client_free. Winsock counts start-ups per process, so this needs no
 * global state and no init call from the application, and an application
 * that runs its own WSAStartup/WSACleanup is not disturbed. */
static int ka_net_init(void)
{
    WSADATA wsa;
    return WSAStartup(MAKEWORD(2, 2), &wsa) == 0 ? 0 : -1;
}
static void ka_net_done(void) { WSACleanup(); }

/* Windows select() ignores nfds, wants every set it is given to hold a
 * socket (WSAEINVAL otherwise: pass empty ones as NULL, and sleep when all
 * are empty), and reports a failed connect in the exception set only. */
static int ka_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
    if (rd->fd_count == 0 && wr->fd_count == 0 && ex->fd_count == 0) {
        Sleep(tv ? (DWORD)(tv->tv_sec * 1000 + tv->tv_usec / 1000) : INFINITE);
        return 0;
    }
    (void)nfds;
    return select(0, rd->fd_count ? rd : NULL, wr->fd_count ? wr : NULL, ex->fd_count ? ex : NULL, tv);
}

/* A Windows fd_set is a counted array of sockets: any socket number fits
 * while there is room, and one already in the set always does. */
static int ka_fd_fits(ka_socket s, const fd_set *set)
{
    return set->fd_count < FD_SETSIZE || FD_ISSET(s, (fd_set *)set);
}
static int ka_nfds(ka_socket s) { (void)s; return 1; }

/* Never needed: ka_client_poll's own fd_sets start empty, so there is room. */
static int ka_poll_one(ka_socket s, int want, int timeout_ms)
{
    (void)s; (void)want; (void)timeout_ms;
    return -1;
}
#else
typedef socklen_t ka_socklen;
typedef size_t ka_iolen;
#define KA_E(wsa, posix) (posix)
#ifdef MSG_NOSIGNAL
#define KA_SEND_FLAGS MSG_NOSIGNAL
#else
#define KA_SEND_FLAGS 0         /* SO_NOSIGPIPE is set on the socket instead */
#endif
#define KA_SHUT_WR SHUT_WR

static int ka_sock_err(void) { return errno; }
static void ka_sock_close(ka_socket s) { close(s); }

/* A non-blocking socket that no exec'd child inherits, from the moment it
 * exists (SOCK_CLOEXEC): marking it afterwards leaves a window in which a
 * thread that forks and execs leaks it, and a leaked socket keeps the
 * connection up after our close. Systems without the flags mark it later. */
static ka_socket ka_socket_open(int family, int proto)
{
    ka_socket s;
    int fl;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    s = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (s != KA_INVALID_SOCKET || errno != EINVAL) return s;   /* EINVAL: a kernel older than the flags */
#endif
    s = socket(family, SOCK_STREAM, proto);
    if (s == KA_INVALID_SOCKET) return s;
    fcntl(s, F_SETFD, FD_CLOEXEC);
    fl = fcntl(s, F_GETFL, 0);
    if (fl == -1 || fcntl(s, F_SETFL, fl | O_NONBLOCK) == -1) {
        int e = errno;
        close(s);
        errno = e;
        return KA_INVALID_SOCKET;
    }
    return s;
}

static unsigned long long ka_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}

/* Seed material: process id and both clocks in nanoseconds. */
static unsigned long long ka_entropy(void)
{
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    return ((unsigned long long)getpid() << 40) ^
           ((unsigned long long)rt.tv_sec * 1000000000u + (unsigned long long)rt.tv_nsec) ^
           ((unsigned long long)mono.tv_sec * 1000000000u + (unsigned long long)mono.tv_nsec) * 0x9e3779b97f4a7c15ull;
}

static int ka_net_init(void) { return 0; }
static void ka_net_done(void) { }

static int ka_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
    return select(nfds, rd, wr, ex, tv);
}

static int ka_fd_fits(ka_socket s, const fd_set *set)
{
    (void)set;
    return s >= 0 && s < FD_SETSIZE;
}
static int ka_nfds(ka_socket s) { return s + 1; }

/* A socket numbered >= FD_SETSIZE cannot go in an fd_set (FD_SET would
 * write past it), so ka_client_poll waits on it with poll() instead.
 * Returns KA_READ | KA_WRITE bits, 0 on timeout or signal, -1 on error. */
static int ka_poll_one(ka_socket s, int want, int timeout_ms)
{
    struct pollfd p;
    int n;
    p.fd = s;
    p.events = (short)(((want & KA_READ) ? POLLIN : 0) | ((want & KA_WRITE) ? POLLOUT : 0));
    p.revents = 0;
    n = poll(&p, 1, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    return ((p.revents & (POLLIN | POLLERR | POLLHUP)) ? KA_READ : 0) | ((p.revents & (POLLOUT | POLLERR)) ? KA_WRITE : 0);
}
#endif

/* Close with RST instead of FIN: for a connection declared dead there is
 * nothing to deliver, the kernel need not retransmit into the void, and a
 * peer that is still there learns at once. */
static void ka_sock_abort(ka_socket s)
{
    struct linger lg;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof lg);
    ka_sock_close(s);
}

/* The kernel's view of a connection, where the OS gives it: what the busy
 * and stall deadlines are judged on. */
typedef struct ka_kview {
    unsigned unacked;           /* segments sent and not yet acknowledged */
    unsigned probes;            /* probes (keepalive or zero-window) unanswered */
    unsigned long since_ack;    /* ms since the peer last acknowledged anything */
    unsigned long since_send;   /* ms since new data last went out */
    long notsent;               /* bytes the kernel holds but has not sent; -1 unknown */
} ka_kview;

#if defined(__linux__) && defined(TCP_INFO)
#define KA_HAVE_KERNEL_VIEW 1
/* struct tcp_info as the kernel fills it (include/uapi/linux/tcp.h): libc
 * headers lag behind, and the kernel only ever appends, saying in optlen
 * how much it filled. */
struct ka_tcp_info {
    uint8_t  state, ca_state, retransmits, probes, backoff, options, wscale, flags;
    uint32_t rto, ato, snd_mss, rcv_mss;
    uint32_t unacked, sacked, lost, retrans, fackets;
    uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
    uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
    uint32_t rcv_rtt, rcv_space, total_retrans;
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
    uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out;
};

#define KA_TI_HAS(len, field) ((size_t)(len) >= offsetof(struct ka_tcp_info, field) + sizeof(((struct ka_tcp_info *)0)->field))

static int ka_kernel_view(ka_socket s, ka_kview *v)
{
    struct ka_tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || !KA_TI_HAS(len, last_ack_recv)) return -1;
    v->unacked = ti.unacked;
    v->probes = ti.probes;
    v->since_ack = ti.last_ack_recv;
    v->since_send = ti.last_data_sent;
    v->notsent = KA_TI_HAS(len, notsent_bytes) ? (long)ti.notsent_bytes : -1;  /* Linux 4.6+ */
    return 0;
}
#else
#define KA_HAVE_KERNEL_VIEW 0
static int ka_kernel_view(ka_socket s, ka_kview *v) { (void)s; (void)v; return -1; }
#endif

/* Error numbers under one spelling for both families. */
#define KA_ERR_INTR        KA_E(WSAEINTR, EINTR)
#define KA_ERR_WOULDBLOCK  KA_E(WSAEWOULDBLOCK, EWOULDBLOCK)
#define KA_ERR_AGAIN       KA_E(WSAEWOULDBLOCK, EAGAIN)
#define KA_ERR_INPROGRESS  KA_E(WSAEWOULDBLOCK, EINPROGRESS)
#define KA_ERR_ALREADY     KA_E(WSAEALREADY, EALREADY)
#define KA_ERR_CONNRESET   KA_E(WSAECONNRESET, ECONNRESET)
/* "Connection aborted" means different things: on a POSIX client socket
 * ECONNABORTED is the local stack killing the connection (`ss -K`, a mobile
 * OS dropping sockets on a network change) while the peer may be fine, so
 * it is KA_REASON_ABORTED; Windows WSAECONNABORTED is the local stack giving
 * up ("possibly due to a data transmission time-out": TCP_MAXRT ran out),
 * so a timeout. The unused side of each pair repeats a code already in the
 * same class. */
#define KA_ERR_CONNABORTED KA_E(WSAECONNRESET, ECONNABORTED)
#define KA_ERR_LOCALABORT  KA_E(WSAECONNABORTED, ETIMEDOUT)
#define KA_ERR_PIPE        KA_E(WSAESHUTDOWN, EPIPE)
#define KA_ERR_TIMEDOUT    KA_E(WSAETIMEDOUT, ETIMEDOUT)
#define KA_ERR_NETRESET    KA_E(WSAENETRESET, ENETRESET)
#define KA_ERR_HOSTUNREACH KA_E(WSAEHOSTUNREACH, EHOSTUNREACH)
#define KA_ERR_NETUNREACH  KA_E(WSAENETUNREACH, ENETUNREACH)
#define KA_ERR_NETDOWN     KA_E(WSAENETDOWN, ENETDOWN)
#define KA_ERR_HOSTDOWN    KA_E(WSAEHOSTDOWN, EHOSTDOWN)
#define KA_ERR_REFUSED     KA_E(WSAECONNREFUSED, ECONNREFUSED)
#define KA_ERR_NOTCONN     KA_E(WSAENOTCONN, ENOTCONN)

static int ka_would_block(int e)
{
    return e == KA_ERR_WOULDBLOCK || e == KA_ERR_AGAIN || e == KA_ERR_INPROGRESS;
}

/* ---- internal types -------------------------------------------------------- */

#define KA_MAX_PORT_LEN 32      /* a service name; getaddrinfo takes no longer */

static int ka_is_alnum(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

struct ka_client {
    ka_config cfg;              /* host/port/heartbeat point into our storage */
    ka_state state;
    ka_socket fd;
    unsigned epoch;             /* bumped by every transition: callbacks check it */
    int depth;                  /* callbacks currently running */
    int free_pending;           /* ka_client_free from a callback */
    int fail_pending;           /* attempt failed where callbacks may not run */
    int pending_err;            /* error seen by a send() that could not act */
    int owned;                  /* block came from ka_client_new, not the caller */
    unsigned said;              /* KA_SAID_*: what on_log has been told once */

    /* connect attempt */
    struct addrinfo *ai_list, *ai_next;
    unsigned naddr_left;
    unsigned long long attempt_deadline, addr_deadline;
    ka_reason fail_reason;
    int fail_err;

    /* backoff */
    unsigned fails;             /* consecutive failed attempts */
    unsigned retries;           /* retries scheduled since start or last good connection */
    unsigned rng;
    unsigned long long retry_at;

    /* connection */
    unsigned long long connected_at, last_send, last_recv;
    unsigned long long check_at;    /* next look at the kernel's view of a busy connection; 0 = none */
    int read_more;                  /* the last read stopped at its bound with data left */

    /* send queue: ring of cap bytes; bit i of ends[] marks a message ending at i */
    unsigned char *q;
    unsigned char *ends;
    size_t cap, head, len;
    int mid_msg;                /* the head message is partly written */
    int finishing;              /* ka_client_finish: deliver the queue, then close */
    int wr_shut;                /* this connection's write side is shut down */

    unsigned char *rbuf;
    size_t rcap;

    char host[KA_MAX_HOST_LEN + 1];
    char port[KA_MAX_PORT_LEN + 1];
    /* heartbeat bytes, queue, end bitmap and receive buffer follow */
};

/* -DKA_NO_LOG compiles logging out: on_log is never called, and a static
 * program no longer links snprintf (about 15 KB of .text with musl). */
static void ka_log(ka_client *c, int level, const char *fmt, ...)
{
#ifdef KA_NO_LOG
    (void)c; (void)level; (void)fmt;
#else
    char msg[320];
    va_list ap;
    if (!c->cfg.cb.on_log) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->depth++;
    c->cfg.cb.on_log(c, level, msg, c->cfg.user);
    c->depth--;
#endif
}

/* Some things are the same for every socket of a client (which keepalive
 * mechanism the OS took, an option it refuses): on_log hears them once. */
#define KA_SAID_KEEPALIVE 1u
#define KA_SAID_DEADLINE  2u
#define KA_SAID_RTO_MAX   4u

static int ka_first_time(ka_client *c, unsigned what)
{
    if (c->said & what) return 0;
    c->said |= what;
    return 1;
}

/* ---- 2. keepalive and deadlines ---------------------------------------------- */

/* Keepalive times go to the OS in whole seconds, rounded up, at least 1:
 * every deadline the library computes uses the same rounded values, so
 * 500/500/3 ms is 1 s + 1 s * 3 = 4 s everywhere, never 2 s in one place. */
static unsigned ka_ms_to_s(unsigned ms) { unsigned s = ms / 1000 + (ms % 1000 != 0); return s ? s : 1; }

static unsigned long long ka_idle_deadline_ms(const ka_config *k)
{
    return 1000ull * (ka_ms_to_s(k->keepalive_idle_ms) + (unsigned long long)ka_ms_to_s(k->keepalive_interval_ms) * k->keepalive_count);
}

/* The busy dead-path deadline in ms; 0 = off. */
static unsigned ka_busy_deadline_ms(const ka_config *k)
{
    unsigned long long t = k->user_timeout_ms;
    if (t == KA_TIMEOUT_OFF) return 0;
    if (!t) t = ka_idle_deadline_ms(k);
    return t > INT_MAX ? INT_MAX : (unsigned)t;
}

static int ka_setopt(ka_client *c, ka_socket s, int level, int opt, const char *name, int val)
{
    if (setsockopt(s, level, opt, (const char *)&val, sizeof val) == 0) return 0;
    if (ka_first_time(c, KA_SAID_KEEPALIVE)) ka_log(c, KA_LOG_WARN, "%s refused (error %d)", name, ka_sock_err());
    return -1;
}

/* The OS defaults wait two hours before the first probe, and kernel
 * keepalive never probes while sent data is unacknowledged, so a peer that
 * vanishes under load goes unnoticed for ~15 minutes of retransmissions.
 * Keepalive gets idle/interval/count in the OS's own unit; the busy path
 * gets its own deadline (ka_set_busy_deadline). Options are chosen by
 * whether the headers define them, not by OS name; one the OS refuses is
 * logged, never fatal. */
#ifdef _WIN32
#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE 3          /* MinGW headers lack these; values from ws2ipdef.h */
#endif
#ifndef TCP_KEEPCNT
#define TCP_KEEPCNT 16
#endif
#ifndef TCP_KEEPINTVL
#define TCP_KEEPINTVL 17
#endif
#ifndef TCP_MAXRT
#define TCP_MAXRT 5
#endif
#ifndef SIO_KEEPALIVE_VALS
#define SIO_KEEPALIVE_VALS _WSAIOW(IOC_VENDOR, 4)
struct tcp_keepalive { u_long onoff, keepalivetime, keepaliveinterval; };
#endif

/* Quiet: a refusal here only picks the other mechanism, it loses nothing. */
static int ka_try_tcpopt(ka_socket s, int opt, int val, int *err)
{
    if (setsockopt(s, IPPROTO_TCP, opt, (const char *)&val, sizeof val) == 0) return 0;
    *err = ka_sock_err();
    return -1;
}

static void ka_set_keepalive(ka_client *c, ka_socket s)
{
    const ka_config *k = &c->cfg;
    struct tcp_keepalive kv;
    DWORD got = 0;
    int err = 0, say = !(c->said & KA_SAID_KEEPALIVE);
    const char *refused = NULL;
    ka_setopt(c, s, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1);
    /* Per socket, in seconds: TCP_KEEPIDLE/TCP_KEEPINTVL since Windows 10
     * 1709, TCP_KEEPCNT since 1703. Older systems (and Wine) refuse them. */
    if (ka_try_tcpopt(s, TCP_KEEPIDLE, (int)ka_ms_to_s(k->keepalive_idle_ms), &err) != 0) refused = "TCP_KEEPIDLE";
    else if (ka_try_tcpopt(s, TCP_KEEPINTVL, (int)ka_ms_to_s(k->keepalive_interval_ms), &err) != 0) refused = "TCP_KEEPINTVL";
    else if (ka_try_tcpopt(s, TCP_KEEPCNT, (int)k->keepalive_count, &err) != 0) refused = "TCP_KEEPCNT";
    if (!refused) {
        if (say) ka_log(c, KA_LOG_INFO, "keepalive: TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT per-socket options, count %u", k->keepalive_count);
    } else {
        /* SIO_KEEPALIVE_VALS (Windows 2000+) takes milliseconds but the
         * probe count is fixed at 10 (Vista+): scale the interval so that
         * idle + interval * 10 is still the deadline asked for,
         * idle + interval * count, in the same rounded seconds as above. */
        unsigned long long idle = 1000ull * ka_ms_to_s(k->keepalive_idle_ms);
        if (say) ka_log(c, KA_LOG_INFO, "%s refused (error %d): using SIO_KEEPALIVE_VALS", refused, err);
        kv.onoff = 1;
        kv.keepalivetime = (u_long)idle;
        kv.keepaliveinterval = (u_long)((ka_idle_deadline_ms(k) - idle + 9) / 10);
        if (WSAIoctl(s, SIO_KEEPALIVE_VALS, &kv, sizeof kv, NULL, 0, &got, NULL, NULL) == 0) {
            if (say) ka_log(c, KA_LOG_INFO, "keepalive: SIO_KEEPALIVE_VALS, 10 probes, interval %lu ms", (unsigned long)kv.keepaliveinterval);
        } else if (say) {
            ka_log(c, KA_LOG_WARN, "SIO_KEEPALIVE_VALS refused (error %d)", ka_sock_err());
        }
    }
    c->said |= KA_SAID_KEEPALIVE;
}

/* TCP_MAXRT (seconds, Vista+) once connected: set before, it would also
 * cut the SYN retransmissions that connect_timeout_ms governs. */
static void ka_set_busy_deadline(ka_client *c)
{
    unsigned ms = ka_busy_deadline_ms(&c->cfg);
    if (ms) ka_setopt(c, c->fd, IPPROTO_TCP, TCP_MAXRT, "TCP_MAXRT", (int)ka_ms_to_s(ms));
    if (ka_first_time(c, KA_SAID_DEADLINE))
        ka_log(c, KA_LOG_DEBUG, "busy deadline: %s %u ms", ms ? "TCP_MAXRT" : "off,", ms);
}
#else

/* Linux 6.15+: the longest retransmission (and zero-window probe) backoff.
 * Capping it at half the busy deadline means a peer whose window is closed
 * is probed at least twice per deadline, so one that dies meanwhile is
 * found in about that time, not after probes two minutes apart. */
#if defined(__linux__) && !defined(TCP_RTO_MAX_MS)
#define TCP_RTO_MAX_MS 44
#endif

static void ka_cap_probe_backoff(ka_client *c, ka_socket s)
{
#ifdef TCP_RTO_MAX_MS
    unsigned ms = ka_busy_deadline_ms(&c->cfg) / 2;
    int val = (int)(ms < 1000 ? 1000 : ms > 120000 ? 120000 : ms);
    if (!ka_busy_deadline_ms(&c->cfg)) return;
    if (setsockopt(s, IPPROTO_TCP, TCP_RTO_MAX_MS, (const char *)&val, sizeof val) != 0 && ka_first_time(c, KA_SAID_RTO_MAX))
        ka_log(c, KA_LOG_INFO, "TCP_RTO_MAX_MS refused (error %d, kernel before 6.15): a peer that dies while its window is closed may be found up to 2 minutes late", ka_sock_err());
#else
    (void)c; (void)s;
#endif
}

static void ka_set_keepalive(ka_client *c, ka_socket s)
{
    const ka_config *k = &c->cfg;
    const char *idle_opt = "no idle-time option";
    ka_setopt(c, s, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1);
#if defined(TCP_KEEPIDLE)
    idle_opt = "TCP_KEEPIDLE";
    ka_setopt(c, s, IPPROTO_TCP, TCP_KEEPIDLE, idle_opt, (int)ka_ms_to_s(k->keepalive_idle_ms));
#elif defined(TCP_KEEPALIVE)
    idle_opt = "TCP_KEEPALIVE";         /* macOS spells the idle time this way */
    ka_setopt(c, s, IPPROTO_TCP, TCP_KEEPALIVE, idle_opt, (int)ka_ms_to_s(k->keepalive_idle_ms));
#else
    if (!(c->said & KA_SAID_KEEPALIVE)) ka_log(c, KA_LOG_WARN, "keepalive: %s on this OS, the system default applies", idle_opt);
#endif
#ifdef TCP_KEEPINTVL
    ka_setopt(c, s, IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", (int)ka_ms_to_s(k->keepalive_interval_ms));
#endif
#ifdef TCP_KEEPCNT
    ka_setopt(c, s, IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", (int)k->keepalive_count);
#endif
#ifdef SO_NOSIGPIPE
    ka_setopt(c, s, SOL_SOCKET, SO_NOSIGPIPE, "SO_NOSIGPIPE", 1);
#endif
    if (KA_HAVE_KERNEL_VIEW) ka_cap_probe_backoff(c, s);
    if (ka_first_time(c, KA_SAID_KEEPALIVE))
        ka_log(c, KA_LOG_DEBUG, "keepalive: per-socket options, idle via %s, %u probes, idle deadline %llu ms",
               idle_opt, k->keepalive_count, ka_idle_deadline_ms(k));
}

/* Where the library cannot watch the connection itself (no kernel view),
 * the kernel's own busy-path option carries the deadline, set once
 * connected: set before, it would also cut the SYN retransmissions that
 * connect_timeout_ms governs. Linux has TCP_USER_TIMEOUT but it is not
 * used: it replaces the keepalive probe count and ends zero-window probing
 * of a live peer, so it would move the other deadlines. */
static void ka_set_busy_deadline(ka_client *c)
{
    unsigned ms = ka_busy_deadline_ms(&c->cfg);
    const char *how = "no busy-path option on this platform: a path lost under load is found only by the OS's retransmission limit";
    if (!ms) how = "off";
    else if (KA_HAVE_KERNEL_VIEW) how = "enforced from TCP_INFO";
    else {
#if defined(TCP_MAXUNACKTIME)
        how = "TCP_MAXUNACKTIME";       /* FreeBSD, seconds */
        ka_setopt(c, c->fd, IPPROTO_TCP, TCP_MAXUNACKTIME, how, (int)ka_ms_to_s(ms));
#elif defined(TCP_RXT_CONNDROPTIME)
        how = "TCP_RXT_CONNDROPTIME";   /* macOS, seconds */
        ka_setopt(c, c->fd, IPPROTO_TCP, TCP_RXT_CONNDROPTIME, how, (int)ka_ms_to_s(ms));
#endif
    }
    if (ka_first_time(c, KA_SAID_DEADLINE))
        ka_log(c, ms && strncmp(how, "no ", 3) == 0 ? KA_LOG_WARN : KA_LOG_DEBUG, "busy deadline %u ms: %s", ms, how);
}
#endif

/* ---- 3. send queue ---------------------------------------------------------- */

static int ka_bit(const ka_client *c, size_t i) { return (c->ends[i >> 3] >> (i & 7)) & 1; }
static void ka_bit_set(ka_client *c, size_t i) { c->ends[i >> 3] |= (unsigned char)(1u << (i & 7)); }
static void ka_bit_clear(ka_client *c, size_t i) { c->ends[i >> 3] &= (unsigned char)~(1u << (i & 7)); }

static int ka_queue_push(ka_client *c, const void *data, size_t n)
{
    size_t tail, first;
    if (n > c->cap - c->len) return KA_EAGAIN;
    tail = (c->head + c->len) % c->cap;
    first = c->cap - tail < n ? c->cap - tail : n;
    memcpy(c->q + tail, data, first);
    memcpy(c->q, (const unsigned char *)data + first, n - first);
    ka_bit_set(c, (tail + n - 1) % c->cap);
    c->len += n;
    return 0;
}

/* Clears the end marks of ring bytes [from, from + n), no wrap: whole
 * bitmap bytes at once, so consuming a large send costs n / 8 at worst. */
static void ka_bits_clear(ka_client *c, size_t from, size_t n)
{
    for (; n && (from & 7); n--) ka_bit_clear(c, from++);
    memset(c->ends + (from >> 3), 0, n >> 3);
    from += n & ~(size_t)7;
    for (n &= 7; n; n--) ka_bit_clear(c, from++);
}

/* Drops n bytes from the head; remembers whether we stopped mid-message. */
static void ka_queue_consume(ka_client *c, size_t n)
{
    size_t first = c->cap - c->head < n ? c->cap - c->head : n;
    if (n == 0) return;
    c->mid_msg = !ka_bit(c, (c->head + n - 1) % c->cap);
    ka_bits_clear(c, c->head, first);
    ka_bits_clear(c, 0, n - first);
    c->head = (c->head + n) % c->cap;
    c->len -= n;
    if (c->len == 0) c->head = 0;
}

/* The connection died: a half-written message cannot be resumed on a new
 * connection, so drop the rest of it and say how much was lost. */
static size_t ka_queue_drop_partial(ka_client *c)
{
    size_t n = 0, i;
    if (!c->mid_msg) return 0;
    for (;;) {                          /* find the head message's end mark */
        i = (c->head + n) % c->cap;
        if ((i & 7) == 0 && i + 8 <= c->cap && n + 8 <= c->len && c->ends[i >> 3] == 0) { n += 8; continue; }
        if (ka_bit(c, i) || n + 1 >= c->len) break;
        n++;
    }
    n++;
    ka_queue_consume(c, n);
    c->mid_msg = 0;
    return n;
}

static void ka_arm_link_check(ka_client *c, unsigned long long now);

/* Hands up to len bytes to the kernel: how many it took, stopping at a
 * full socket buffer. *err gets the socket error, if any. */
static size_t ka_send_some(ka_client *c, const unsigned char *p, size_t len, int *err)
{
    size_t done = 0;
    *err = 0;
    while (done < len) {
        size_t chunk = len - done > INT_MAX ? INT_MAX : len - done;
        long n = (long)send(c->fd, (const char *)p + done, (ka_iolen)chunk, KA_SEND_FLAGS);
        if (n < 0) {
            int e = ka_sock_err();
            if (e == KA_ERR_INTR) continue;
            if (!ka_would_block(e)) *err = e;
            break;
        }
        done += (size_t)n;
    }
    if (done) {
        c->last_send = ka_now_ms();
        ka_arm_link_check(c, c->last_send);
    }
    return done;
}

/* Hands queued bytes to the kernel. Returns 0 or the socket error; never
 * runs callbacks, so ka_client_send may call it. */
static int ka_flush(ka_client *c)
{
    int err = 0;
    while (c->len > 0 && !err) {
        size_t chunk = c->cap - c->head < c->len ? c->cap - c->head : c->len;
        size_t n = ka_send_some(c, c->q + c->head, chunk, &err);
        ka_queue_consume(c, n);
        if (n < chunk) break;           /* socket buffer full, or an error */
    }
    if (!err && c->len == 0 && c->finishing && !c->wr_shut) {  /* everything is out: tell the peer with a FIN */
        c->wr_shut = 1;
        shutdown(c->fd, KA_SHUT_WR);
    }
    return err;
}

/* ---- 4. state machine -------------------------------------------------------- */

/* States and transitions:
 *
 *   IDLE --start--> CONNECTING --connected--> CONNECTED
 *                      |  ^                      |
 *          attempt_failed |retry_at / retry_now  | lost (peer, keepalive, idle timeout, disconnect)
 *                      v  |                      v
 *                     BACKOFF <------------------+
 *                      |
 *       give up / stop v
 *                   STOPPED --start--> CONNECTING
 *
 * Every transition bumps epoch before it runs callbacks; code that ran a
 * callback checks the epoch and returns if the callback moved the client. */

static void ka_enter(ka_client *c, ka_state s) { c->state = s; c->epoch++; }

static ka_reason ka_classify(int err, int connecting)
{
    if (err == KA_ERR_CONNABORTED && err != KA_ERR_CONNRESET) return KA_REASON_ABORTED;
    if (err == KA_ERR_CONNRESET || err == KA_ERR_PIPE) return KA_REASON_PEER_RESET;
    if (err == KA_ERR_TIMEDOUT || err == KA_ERR_NETRESET || err == KA_ERR_LOCALABORT)
        return connecting ? KA_REASON_CONNECT_TIMEOUT : KA_REASON_TIMEOUT;
    if (err == KA_ERR_HOSTUNREACH || err == KA_ERR_NETUNREACH || err == KA_ERR_HOSTDOWN || err == KA_ERR_NETDOWN)
        return KA_REASON_UNREACHABLE;
    if (err == KA_ERR_REFUSED) return KA_REASON_REFUSED;
    return KA_REASON_ERROR;
}

/* Callback bracket: returns nonzero if the client is still where it was. */
static unsigned ka_cb_enter(ka_client *c) { c->depth++; return c->epoch; }
static int ka_cb_leave(ka_client *c, unsigned epoch) { c->depth--; return c->epoch == epoch; }

static void ka_close_socket(ka_client *c)
{
    if (c->fd != KA_INVALID_SOCKET) ka_sock_close(c->fd);
    c->fd = KA_INVALID_SOCKET;
}

static void ka_end_attempt(ka_client *c)
{
    ka_close_socket(c);
    if (c->ai_list) freeaddrinfo(c->ai_list);
    c->ai_list = c->ai_next = NULL;
    c->fail_pending = 0;
}

/* Tries the remaining addresses until one has a connect in flight. Each
 * gets an equal share of what is left of connect_timeout_ms, so a
 * blackholed first address does not starve the others. */
static void ka_try_next_addr(ka_client *c)
{
    while (c->ai_next) {
        struct addrinfo *ai = c->ai_next;
        unsigned long long now = ka_now_ms();
        ka_socket s;
        int err;
        unsigned epoch = c->epoch;
        c->ai_next = ai->ai_next;
        c->addr_deadline = now + (c->attempt_deadline > now ? c->attempt_deadline - now : 0) / (c->naddr_left ? c->naddr_left : 1);
        if (c->naddr_left) c->naddr_left--;
        s = ka_socket_open(ai->ai_family, ai->ai_protocol);
        if (s == KA_INVALID_SOCKET) { c->fail_reason = KA_REASON_ERROR; c->fail_err = ka_sock_err(); continue; }
        ka_set_keepalive(c, s);
        if (c->epoch != epoch) { ka_sock_close(s); return; }    /* on_log stopped or dropped us */
        err = connect(s, ai->ai_addr, (ka_socklen)ai->ai_addrlen) == 0 ? 0 : ka_sock_err();
        if (err == 0 || ka_would_block(err) || err == KA_ERR_INTR) {
            c->fd = s;          /* in flight (an interrupted connect goes on too): writability tells */
            return;
        }
        c->fail_err = err;
        c->fail_reason = ka_classify(c->fail_err, 1);
        ka_sock_close(s);
    }
    c->fail_pending = 1;        /* out of addresses: the dispatcher reports it */
}

static void ka_begin_attempt(ka_client *c)
{
    struct addrinfo hints;
    int rc;
    unsigned epoch;
    ka_enter(c, KA_STATE_CONNECTING);
    c->fail_reason = KA_REASON_CONNECT_TIMEOUT;
    c->fail_err = 0;
    c->pending_err = 0;
    c->attempt_deadline = ka_now_ms() + c->cfg.connect_timeout_ms;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    rc = getaddrinfo(c->host, c->port, &hints, &c->ai_list);
    if (rc != 0) {
        c->ai_list = NULL;
        c->fail_reason = KA_REASON_RESOLVE;
        c->fail_err = rc;
        c->fail_pending = 1;
        return;
    }
    c->naddr_left = 0;
    for (c->ai_next = c->ai_list; c->ai_next; c->ai_next = c->ai_next->ai_next) c->naddr_left++;
    c->ai_next = c->ai_list;
    epoch = c->epoch;
    ka_log(c, KA_LOG_DEBUG, "connecting to %s (%d addresses)", c->host, (int)c->naddr_left);
    if (c->epoch == epoch) ka_try_next_addr(c);
}

/* Something ended (a failed attempt, or a connection). Count it, then
 * either schedule the next attempt or give up. Runs on_retry/on_give_up. */
static void ka_schedule_retry(ka_client *c, ka_reason why, int err, int counts_as_failure)
{
    ka_retry_info ri;
    unsigned epoch;
    if (counts_as_failure) c->fails++;
    else c->fails = c->retries = 0;
    ri.reason = why;
    ri.sys_error = err;
    if (c->cfg.max_attempts && c->fails >= c->cfg.max_attempts) {
        ri.attempt = c->fails;
        ri.delay_ms = 0;
        ka_enter(c, KA_STATE_STOPPED);
        if (c->cfg.cb.on_give_up) {
            epoch = ka_cb_enter(c);
            c->cfg.cb.on_give_up(c, &ri, c->cfg.user);
            ka_cb_leave(c, epoch);
        }
        return;
    }
    ri.attempt = ++c->retries;
    ri.delay_ms = ka_backoff_delay(&c->cfg, ri.attempt, &c->rng);
    ka_enter(c, KA_STATE_BACKOFF);
    c->retry_at = ka_now_ms() + ri.delay_ms;
    if (c->cfg.cb.on_retry) {
        epoch = ka_cb_enter(c);
        c->cfg.cb.on_retry(c, &ri, c->cfg.user);
        ka_cb_leave(c, epoch);
    }
}

static void ka_attempt_failed(ka_client *c)
{
    ka_reason why = c->fail_reason;
    int err = c->fail_err;
    unsigned epoch;
    ka_end_attempt(c);
    epoch = c->epoch;
    ka_log(c, KA_LOG_DEBUG, "connect failed: %s (%d)", ka_reason_str(why), err);
    if (c->epoch == epoch) ka_schedule_retry(c, why, err, 1);
}

static void ka_connected(ka_client *c)
{
    unsigned epoch;
    int err;
    ka_socket s = c->fd;
    c->fd = KA_INVALID_SOCKET;  /* keep the socket out of ka_end_attempt */
    ka_end_attempt(c);
    c->fd = s;
    ka_enter(c, KA_STATE_CONNECTED);
    c->wr_shut = 0;
    c->read_more = 0;
    c->check_at = 0;
    c->connected_at = c->last_send = c->last_recv = ka_now_ms();
    ka_set_busy_deadline(c);
    if (c->state != KA_STATE_CONNECTED) return;     /* on_log moved us */
    if (c->cfg.cb.on_connect) {
        epoch = ka_cb_enter(c);
        c->cfg.cb.on_connect(c, c->cfg.user);
        if (!ka_cb_leave(c, epoch)) return;
    }
    err = ka_flush(c);          /* whatever was queued while we were away */
    if (err) c->pending_err = err;
}

/* An established connection ended. */
static void ka_lost(ka_client *c, ka_reason why, int err, int retry)
{
    ka_disconnect_info di;
    unsigned epoch;
    unsigned long long up = ka_now_ms() - c->connected_at;
    ka_close_socket(c);
    di.reason = why;
    di.sys_error = err;
    di.connected_ms = up > ULONG_MAX ? ULONG_MAX : (unsigned long)up;    /* 32-bit long: 49 days */
    di.unsent_bytes = ka_queue_drop_partial(c);
    if (c->finishing && c->len == 0) retry = 0;     /* nothing left to deliver: done */
    ka_enter(c, retry ? KA_STATE_BACKOFF : KA_STATE_STOPPED);
    if (c->cfg.cb.on_disconnect) {
        epoch = ka_cb_enter(c);
        c->cfg.cb.on_disconnect(c, &di, c->cfg.user);
        if (!ka_cb_leave(c, epoch)) return;
    }
    /* A connection that died young is a failed attempt: a server that
     * accepts and closes at once must not pull us into a tight loop. */
    if (retry) ka_schedule_retry(c, why, err, up < c->cfg.backoff_reset_ms);
}

/* Same family, address and port. */
static int ka_same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return 0;
}

/* Connect finished one way or the other (socket writable or in error). A
 * peer address proves it connected (a caller may report KA_WRITE
 * spuriously, and SO_ERROR is also 0 while the connect is in flight);
 * without one, SO_ERROR tells a failure from a connect still under way. */
static void ka_check_connect(ka_client *c)
{
    struct sockaddr_storage peer, self;
    ka_socklen plen = sizeof peer, slen = sizeof self, elen;
    int err = 0;
    if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) == 0) {
        /* Dialling a local port in the ephemeral range with nothing
         * listening can connect the socket to itself (TCP simultaneous
         * open): it would read its own bytes back and hold the port the
         * real server needs. Nothing listens there: a refusal. */
        int self_connect = getsockname(c->fd, (struct sockaddr *)&self, &slen) == 0 && ka_same_endpoint(&peer, &self);
        if (!self_connect) { ka_connected(c); return; }
        ka_log(c, KA_LOG_INFO, "connected to itself (local address = peer address, nothing listens there): treated as refused");
        err = KA_ERR_REFUSED;
    } else {
        elen = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (char *)&err, &elen) != 0) err = ka_sock_err();
        if (err == 0 || err == KA_ERR_INPROGRESS || err == KA_ERR_ALREADY) return;     /* still connecting */
    }
    c->fail_err = err;
    c->fail_reason = ka_classify(err, 1);
    ka_close_socket(c);
    ka_try_next_addr(c);
}

/* Reads until the kernel has nothing more, but at most 16 buffers per call
 * so a peer that floods us cannot starve the timers; stopping at the bound
 * sets read_more, which makes ka_client_timeout_ms 0 and the next call read
 * on, so an edge-triggered loop (EPOLLET) never strands data. */
static void ka_read(ka_client *c)
{
    int rounds;
    c->read_more = 0;
    for (rounds = 0; rounds < 16; rounds++) {
        long n = (long)recv(c->fd, (char *)c->rbuf, (ka_iolen)(c->rcap > INT_MAX ? INT_MAX : c->rcap), 0);
        if (n > 0) {
            c->last_recv = ka_now_ms();
            if (c->cfg.cb.on_data) {
                unsigned epoch = ka_cb_enter(c);
                c->cfg.cb.on_data(c, c->rbuf, (size_t)n, c->cfg.user);
                if (!ka_cb_leave(c, epoch)) return;
            }
            if ((size_t)n < c->rcap) return;    /* a short read emptied the socket: no recv() just to hear EAGAIN */
            continue;
        }
        if (n == 0) { ka_lost(c, KA_REASON_PEER_CLOSED, 0, 1); return; }
        {
            int e = ka_sock_err();
            if (e == KA_ERR_INTR) continue;
            if (ka_would_block(e)) return;
            ka_lost(c, ka_classify(e, 0), e, 1);
            return;
        }
    }
    c->read_more = 1;
}

/* The library's own verdict that a live-looking socket is dead: abort it
 * (RST) rather than leave the kernel retransmitting, then report. */
static void ka_declare_dead(ka_client *c, ka_reason why, int err)
{
    ka_sock_abort(c->fd);
    c->fd = KA_INVALID_SOCKET;
    ka_lost(c, why, err, 1);
}

/* The first look at a connection that has just sent: as soon as either
 * deadline could have run out. */
static void ka_arm_link_check(ka_client *c, unsigned long long now)
{
    unsigned busy = ka_busy_deadline_ms(&c->cfg), first = busy;
    if (!KA_HAVE_KERNEL_VIEW || c->check_at) return;
    if (c->cfg.stall_timeout_ms && (!first || c->cfg.stall_timeout_ms < first)) first = c->cfg.stall_timeout_ms;
    if (first) c->check_at = now + first;
}

/* Data is outstanding: judge the connection on the kernel's view.
 *  - Everything acknowledged: idle again, no more looks until the next send.
 *  - Window closed (nothing in flight, data waiting: the peer reads no
 *    more): the peer is alive while it answers window probes. Probes unanswered
 *    for the busy deadline make it dead; a window closed stall_timeout_ms
 *    (counted from the last new data sent) makes it STALLED. Never TIMEOUT
 *    for a peer that answers: its kernel is there, its application is slow.
 *  - Data in flight: dead when neither an acknowledgement came nor new data
 *    went out for the busy deadline. An ICMP error kept by the kernel (soft
 *    error, read through SO_ERROR) makes it UNREACHABLE instead of TIMEOUT. */
static void ka_check_link(ka_client *c, unsigned long long now)
{
    ka_kview v;
    unsigned long busy = ka_busy_deadline_ms(&c->cfg), stall = c->cfg.stall_timeout_ms, wait;
    c->check_at = 0;
    if (ka_kernel_view(c->fd, &v) != 0 || (v.unacked == 0 && v.notsent <= 0)) return;
    if (v.unacked == 0) {
        if (busy && v.probes >= 2 && v.since_ack >= busy) { ka_declare_dead(c, KA_REASON_TIMEOUT, KA_ERR_TIMEDOUT); return; }
        if (stall && v.since_send >= stall) { ka_declare_dead(c, KA_REASON_STALLED, 0); return; }
        wait = busy ? busy / 4 : 1000;             /* watch for probes going unanswered */
        if (stall && stall - v.since_send < wait) wait = stall - v.since_send;
    } else {
        unsigned long quiet = v.since_ack < v.since_send ? v.since_ack : v.since_send;
        if (!busy) wait = stall ? stall : 0;
        else if (quiet < busy) wait = busy - quiet;
        else {
            int soft = 0;
            ka_socklen len = sizeof soft;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (char *)&soft, &len) != 0) soft = 0;
            ka_declare_dead(c, soft ? ka_classify(soft, 0) : KA_REASON_TIMEOUT, soft ? soft : KA_ERR_TIMEDOUT);
            return;
        }
    }
    if (wait) c->check_at = now + (wait < 10 ? 10 : wait);
}

/* The one dispatcher: ka_client_poll, ka_client_process and
 * ka_client_process_events all end here. */
static void ka_step(ka_client *c, int ready)
{
    unsigned long long now;
    switch (c->state) {
    case KA_STATE_CONNECTING:
        if (c->fd != KA_INVALID_SOCKET && ready) ka_check_connect(c);
        if (c->state != KA_STATE_CONNECTING) return;
        now = ka_now_ms();
        if (!c->fail_pending && c->fd != KA_INVALID_SOCKET && now >= c->addr_deadline) {
            c->fail_reason = KA_REASON_CONNECT_TIMEOUT;
            c->fail_err = 0;
            ka_close_socket(c);
            if (now < c->attempt_deadline) ka_try_next_addr(c);
            else c->fail_pending = 1;
        }
        if (c->state == KA_STATE_CONNECTING && c->fail_pending) ka_attempt_failed(c);
        return;
    case KA_STATE_CONNECTED:
        if (c->pending_err) { ka_lost(c, ka_classify(c->pending_err, 0), c->pending_err, 1); return; }
        if ((ready & KA_READ) || c->read_more) ka_read(c);
        if (c->state != KA_STATE_CONNECTED) return;
        if (ready & KA_WRITE) {
            int err = ka_flush(c);
            if (err) { ka_lost(c, ka_classify(err, 0), err, 1); return; }
        }
        now = ka_now_ms();
        if (c->check_at && now >= c->check_at) ka_check_link(c, now);
        if (c->state != KA_STATE_CONNECTED) return;
        if (c->cfg.idle_timeout_ms && now - c->last_recv >= c->cfg.idle_timeout_ms) {
            ka_lost(c, KA_REASON_HEARTBEAT, 0, 1);
            return;
        }
        if (c->cfg.heartbeat_interval_ms && !c->finishing && c->len == 0 && now - c->last_send >= c->cfg.heartbeat_interval_ms) {
            int err;
            ka_queue_push(c, c->cfg.heartbeat_data, c->cfg.heartbeat_len);
            err = ka_flush(c);
            if (err) ka_lost(c, ka_classify(err, 0), err, 1);
        }
        return;
    case KA_STATE_BACKOFF:
        if (ka_now_ms() >= c->retry_at) ka_begin_attempt(c);
        return;
    default:
        return;
    }
}

/* Runs once the outermost library call that may have run callbacks is
 * done: the place where a deferred ka_client_free happens. */
static void ka_release(ka_client *c);
static int ka_leave(ka_client *c, int rc)
{
    if (c->depth == 0 && c->free_pending) ka_release(c);
    return rc;
}

/* ---- 5. public API ---------------------------------------------------------- */

void ka_config_init(ka_config *cfg)
{
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->keepalive_idle_ms = 5000;
    cfg->keepalive_interval_ms = 5000;
    cfg->keepalive_count = 3;
    cfg->connect_timeout_ms = 10000;
    cfg->backoff_initial_ms = 1000;
    cfg->backoff_max_ms = 30000;
    cfg->backoff_multiplier = 2.0;
    cfg->backoff_jitter = 0.5;
    cfg->backoff_reset_ms = 5000;
    cfg->send_buffer_size = 65536;
    cfg->recv_buffer_size = 16384;
}

/* A port is a plain decimal 1..65535 or a service name ("http"), which
 * starts with a letter. "0x50", "-1" and "17401x" can never work. */
static int ka_port_ok(const char *p)
{
    size_t n = strlen(p), i;
    unsigned long v = 0;
    if (n == 0 || n > KA_MAX_PORT_LEN) return 0;
    if ((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')) {
        for (i = 1; i < n; i++)
            if (!ka_is_alnum(p[i]) && p[i] != '-' && p[i] != '_' && p[i] != '.' && p[i] != '+') return 0;
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (unsigned long)(p[i] - '0');
        if (v > 65535) return 0;
    }
    return v >= 1;
}

/* An IPv6 literal, with an optional "%zone" (fe80::1%eth0). */
static int ka_is_ipv6_literal(const char *h, size_t n)
{
    char a[64];
    size_t zone = 0;
    unsigned char bin[16];
    while (zone < n && h[zone] != '%') zone++;
    if (zone == 0 || zone >= sizeof a || zone + 1 == n) return 0;
    memcpy(a, h, zone);
    a[zone] = '\0';
    return inet_pton(AF_INET6, a, bin) == 1;
}

/* Names, IPv4 and IPv6 literals, and "[v6]" as socat and URLs write it. A
 * colon outside an IPv6 literal is "host:port", which no resolver takes. */
static int ka_host_ok(const char *h)
{
    size_t n = strlen(h), i;
    if (n == 0 || n > KA_MAX_HOST_LEN) return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)h[i] <= ' ' || h[i] == 0x7f) return 0;
    if (h[0] == '[') return n > 2 && h[n - 1] == ']' && ka_is_ipv6_literal(h + 1, n - 2);
    return !strchr(h, ':') || ka_is_ipv6_literal(h, n);
}

/* Copies host without the brackets of "[v6]"; out holds KA_MAX_HOST_LEN + 1. */
static void ka_host_copy(char *out, const char *h)
{
    size_t n = strlen(h);
    if (h[0] == '[') { h++; n -= 2; }
    memcpy(out, h, n);
    out[n] = '\0';
}

static int ka_backoff_ok(const ka_config *k)
{
    return k->backoff_initial_ms <= k->backoff_max_ms &&
           k->backoff_multiplier >= 1.0 && k->backoff_multiplier <= 1000.0 &&     /* also false for NaN */
           k->backoff_jitter >= 0.0 && k->backoff_jitter <= 1.0;
}

static int ka_keepalive_ms_ok(unsigned ms) { return ms >= 1 && ms <= KA_MAX_KEEPALIVE_MS; }
static int ka_size_ok(size_t n) { return n >= 1 && n <= (size_t)1 << 30; }

const char *ka_config_error(const ka_config *k)
{
    if (!k) return "cfg";
    if (!k->host || !ka_host_ok(k->host)) return "host";
    if (!k->port || !ka_port_ok(k->port)) return "port";
    if (!ka_keepalive_ms_ok(k->keepalive_idle_ms)) return "keepalive_idle_ms";
    if (!ka_keepalive_ms_ok(k->keepalive_interval_ms)) return "keepalive_interval_ms";
    if (k->keepalive_count == 0 || k->keepalive_count > KA_MAX_KEEPALIVE_CNT) return "keepalive_count";
    if (k->user_timeout_ms > INT_MAX && k->user_timeout_ms != KA_TIMEOUT_OFF) return "user_timeout_ms";
    if (k->connect_timeout_ms == 0 || k->connect_timeout_ms > INT_MAX) return "connect_timeout_ms";
    if (k->backoff_initial_ms == 0 || k->backoff_initial_ms > k->backoff_max_ms) return "backoff_initial_ms";
    if (!(k->backoff_multiplier >= 1.0 && k->backoff_multiplier <= 1000.0)) return "backoff_multiplier";
    if (!(k->backoff_jitter >= 0.0 && k->backoff_jitter <= 1.0)) return "backoff_jitter";
    if (!ka_size_ok(k->send_buffer_size)) return "send_buffer_size";
    if (!ka_size_ok(k->recv_buffer_size)) return "recv_buffer_size";
    if (k->heartbeat_interval_ms && !k->heartbeat_data) return "heartbeat_data";
    if (k->heartbeat_interval_ms && (k->heartbeat_len == 0 || k->heartbeat_len > k->send_buffer_size)) return "heartbeat_len";
    if (k->mem_alloc && !k->mem_free) return "mem_free";
    if (k->mem_free && !k->mem_alloc) return "mem_alloc";
    return NULL;
}

static int ka_config_ok(const ka_config *k) { return ka_config_error(k) == NULL; }

/* A Weyl sequence through the murmur3 32-bit finaliser: a bijection, so
 * draws are uniform over the period, and neighbouring states (seeds 1, 2,
 * 3..., or 0) give unrelated draws, which plain xorshift does not. */
static unsigned ka_rng_next(unsigned *s)
{
    unsigned x = *s = (*s + 0x9e3779b9u) & 0xffffffffu;
    x ^= x >> 16; x = (x * 0x85ebca6bu) & 0xffffffffu;
    x ^= x >> 13; x = (x * 0xc2b2ae35u) & 0xffffffffu;
    x ^= x >> 16;
    return x;
}

/* splitmix64's finaliser: every input bit moves about half the output. */
static unsigned long long ka_mix64(unsigned long long x)
{
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Clients started together, in one process or in many (ASLR off, same
 * binary, same second), must draw unrelated delays: process id, both clocks
 * in nanoseconds and the client's address, each mixed in. */
static unsigned ka_default_seed(const void *client)
{
    unsigned long long h = ka_mix64(ka_entropy());
    h = ka_mix64(h ^ (unsigned long long)(size_t)client);
    h = ka_mix64(h ^ (unsigned long long)clock());
    return (unsigned)(h ^ (h >> 32));
}

/* base^e, or cap as soon as it reaches cap: O(log e) even for huge e. */
static double ka_pow_capped(double base, unsigned e, double cap)
{
    double r = 1.0;
    for (; e && r < cap; e >>= 1) {
        if (e & 1) r *= base;
        base *= base;
    }
    return r < cap ? r : cap;
}

unsigned ka_backoff_delay(const ka_config *cfg, unsigned attempt, unsigned *rng)
{
    double d;
    unsigned lo, hi;
    if (!cfg || !rng || !ka_backoff_ok(cfg)) return 0;
    d = cfg->backoff_initial_ms;
    if (d > 0 && attempt > 1) d *= ka_pow_capped(cfg->backoff_multiplier, attempt - 1, cfg->backoff_max_ms / d);
    if (d > cfg->backoff_max_ms) d = cfg->backoff_max_ms;
    /* Whole milliseconds inside [d * (1 - jitter), d], uniformly. */
    hi = (unsigned)d;
    lo = (unsigned)(d * (1.0 - cfg->backoff_jitter) + 0.999999);
    if (lo > hi) lo = hi;
    return lo + (unsigned)(((unsigned long long)ka_rng_next(rng) * (hi - lo + 1ull)) >> 32);
}

/* One block holds everything: client, heartbeat bytes, queue, end bitmap,
 * receive buffer. Rounded so the next block placed after it stays aligned. */
static size_t ka_block_size(const ka_config *cfg)
{
    size_t hb = cfg->heartbeat_interval_ms ? cfg->heartbeat_len : 0;
    size_t n = sizeof(ka_client) + hb + cfg->send_buffer_size + (cfg->send_buffer_size + 7) / 8 + cfg->recv_buffer_size;
    return (n + 7) & ~(size_t)7;
}

size_t ka_client_size(const ka_config *cfg)
{
    return cfg && ka_config_ok(cfg) ? ka_block_size(cfg) : 0;
}

static ka_client *ka_setup(void *mem, const ka_config *cfg, int owned)
{
    ka_client *c = (ka_client *)mem;
    size_t hb = cfg->heartbeat_interval_ms ? cfg->heartbeat_len : 0;
    unsigned char *p;
    memset(c, 0, ka_block_size(cfg));
    c->cfg = *cfg;
    ka_host_copy(c->host, cfg->host);
    strcpy(c->port, cfg->port);
    c->cfg.host = c->host;
    c->cfg.port = c->port;
    p = (unsigned char *)(c + 1);
    if (hb) memcpy(p, cfg->heartbeat_data, hb);
    c->cfg.heartbeat_data = hb ? p : NULL;
    c->cfg.heartbeat_len = hb;
    c->q = p + hb;
    c->cap = cfg->send_buffer_size;
    c->ends = c->q + c->cap;
    c->rbuf = c->ends + (c->cap + 7) / 8;
    c->rcap = cfg->recv_buffer_size;
    c->fd = KA_INVALID_SOCKET;
    c->state = KA_STATE_IDLE;
    c->owned = owned;
    c->rng = cfg->random_seed ? cfg->random_seed : ka_default_seed(c);
    return c;
}

int ka_client_new(ka_client **out, const ka_config *cfg)
{
    void *mem;
    if (out) *out = NULL;
    if (!out || !cfg || !ka_config_ok(cfg)) return KA_EINVAL;
    mem = cfg->mem_alloc ? cfg->mem_alloc(ka_block_size(cfg), cfg->mem_user) : malloc(ka_block_size(cfg));
    if (!mem) return KA_ENOMEM;
    if (ka_net_init() != 0) {
        if (cfg->mem_alloc) cfg->mem_free(mem, cfg->mem_user);
        else free(mem);
        return KA_ENOMEM;
    }
    *out = ka_setup(mem, cfg, 1);
    return 0;
}

int ka_client_init(ka_client **out, void *mem, size_t size, const ka_config *cfg)
{
    if (out) *out = NULL;
    if (!out || !mem || !cfg || !ka_config_ok(cfg)) return KA_EINVAL;
    /* the block holds pointers and 64-bit counters */
    if (size < ka_block_size(cfg) || (size_t)mem % sizeof(unsigned long long) != 0 || (size_t)mem % sizeof(void *) != 0)
        return KA_EINVAL;
    if (ka_net_init() != 0) return KA_ENOMEM;
    *out = ka_setup(mem, cfg, 0);
    return 0;
}

int ka_client_start(ka_client *c)
{
    if (!c) return KA_EINVAL;
    if (c->state != KA_STATE_IDLE && c->state != KA_STATE_STOPPED) return KA_ESTATE;
    c->fails = c->retries = 0;
    c->finishing = 0;
    ka_begin_attempt(c);
    return ka_leave(c, 0);
}

int ka_client_send(ka_client *c, const void *data, size_t len)
{
    if (!c || (!data && len)) return KA_EINVAL;
    if (c->state == KA_STATE_STOPPED) return KA_ENOTCONN;
    if (c->finishing) return KA_ESTATE;
    if (len == 0) return 0;
    if (len > c->cap) return KA_EMSGSIZE;
    if (len > c->cap - c->len) return KA_EAGAIN;
    if (c->state == KA_STATE_CONNECTED && c->len == 0 && !c->pending_err) {
        /* Nothing queued: the kernel takes it straight from the caller's
         * buffer, and only what it leaves is copied, as a message already
         * partly written. Bulk senders skip the copy altogether. */
        size_t n = ka_send_some(c, (const unsigned char *)data, len, &c->pending_err);
        if (n == len) return 0;
        ka_queue_push(c, (const unsigned char *)data + n, len - n);
        c->mid_msg = n > 0;
        return 0;
    }
    ka_queue_push(c, data, len);        /* fits: checked above */
    if (c->state == KA_STATE_CONNECTED && !c->pending_err) c->pending_err = ka_flush(c);
    return 0;
}

int ka_client_finish(ka_client *c)
{
    if (!c) return KA_EINVAL;
    if (c->state == KA_STATE_IDLE || c->state == KA_STATE_STOPPED) return KA_ESTATE;
    c->finishing = 1;
    if (c->state == KA_STATE_CONNECTED) {
        if (!c->pending_err) c->pending_err = ka_flush(c);  /* half-closes at once if the queue is empty */
    } else if (c->len == 0) {
        ka_end_attempt(c);              /* nothing to deliver, no connection to close */
        ka_enter(c, KA_STATE_STOPPED);
    }
    return 0;
}

void ka_client_disconnect(ka_client *c)
{
    if (!c) return;
    if (c->state == KA_STATE_CONNECTED) {
        ka_lost(c, KA_REASON_LOCAL, 0, 1);
    } else if (c->state == KA_STATE_CONNECTING) {
        ka_end_attempt(c);
        ka_schedule_retry(c, KA_REASON_LOCAL, 0, 1);
    }
    ka_leave(c, 0);
}

int ka_client_retry_now(ka_client *c)
{
    if (!c) return KA_EINVAL;
    if (c->state != KA_STATE_BACKOFF) return KA_ESTATE;
    ka_begin_attempt(c);
    return ka_leave(c, 0);
}

void ka_client_stop(ka_client *c)
{
    if (!c) return;
    if (c->state == KA_STATE_CONNECTED) ka_lost(c, KA_REASON_LOCAL, 0, 0);
    else {
        ka_end_attempt(c);
        if (c->state != KA_STATE_STOPPED) ka_enter(c, KA_STATE_STOPPED);
    }
    ka_leave(c, 0);
}

static void ka_release(ka_client *c)
{
    ka_end_attempt(c);
    ka_net_done();
    if (!c->owned) return;              /* caller's memory: nothing to give back */
    if (c->cfg.mem_alloc) c->cfg.mem_free(c, c->cfg.mem_user);
    else free(c);
}

void ka_client_free(ka_client *c)
{
    if (!c) return;
    if (c->depth > 0) {
        /* From a callback: stop now, release when the library call returns. */
        ka_end_attempt(c);
        ka_enter(c, KA_STATE_STOPPED);
        c->free_pending = 1;
        return;
    }
    ka_release(c);
}

ka_state ka_client_state(const ka_client *c) { return c ? c->state : KA_STATE_STOPPED; }
size_t ka_client_pending(const ka_client *c) { return c ? c->len : 0; }
ka_socket ka_client_socket(const ka_client *c) { return c ? c->fd : KA_INVALID_SOCKET; }

int ka_client_want(const ka_client *c)
{
    if (!c || c->fd == KA_INVALID_SOCKET) return 0;
    if (c->state == KA_STATE_CONNECTING) return KA_WRITE;
    if (c->state != KA_STATE_CONNECTED) return 0;
    return KA_READ | (c->len ? KA_WRITE : 0);
}

static long ka_until(unsigned long long when, unsigned long long now)
{
    unsigned long long d = when > now ? when - now : 0;
    return d > LONG_MAX ? LONG_MAX : (long)d;
}

long ka_client_timeout_ms(const ka_client *c)
{
    unsigned long long now;
    long t = -1, u;
    if (!c) return -1;
    now = ka_now_ms();
    switch (c->state) {
    case KA_STATE_CONNECTING:
        return c->fail_pending || c->pending_err ? 0 : ka_until(c->addr_deadline, now);
    case KA_STATE_BACKOFF:
        return ka_until(c->retry_at, now);
    case KA_STATE_CONNECTED:
        if (c->pending_err || c->read_more) return 0;
        if (c->check_at) t = ka_until(c->check_at, now);
        if (c->cfg.idle_timeout_ms) {
            u = ka_until(c->last_recv + c->cfg.idle_timeout_ms, now);
            if (t < 0 || u < t) t = u;
        }
        if (c->cfg.heartbeat_interval_ms && !c->finishing && c->len == 0) {
            u = ka_until(c->last_send + c->cfg.heartbeat_interval_ms, now);
            if (t < 0 || u < t) t = u;
        }
        return t;
    default:
        return -1;
    }
}

int ka_client_process_events(ka_client *c, int ready)
{
    if (!c) return KA_EINVAL;
    if (c->state == KA_STATE_IDLE || c->state == KA_STATE_STOPPED) return KA_ESTATE;
    ka_step(c, ready & (KA_READ | KA_WRITE));
    return ka_leave(c, 0);
}

int ka_client_fdset_ex(ka_client *c, fd_set *rd, fd_set *wr, fd_set *ex)
{
    int want;
    if (!c) return KA_EINVAL;
    want = ka_client_want(c);
    if (!want) return 0;
    if ((rd && !ka_fd_fits(c->fd, rd)) || (wr && !ka_fd_fits(c->fd, wr)) || (ex && !ka_fd_fits(c->fd, ex)))
        return KA_EFDSETSIZE;
    if ((want & KA_READ) && rd) FD_SET(c->fd, rd);
    if ((want & KA_WRITE) && wr) FD_SET(c->fd, wr);
    if (c->state == KA_STATE_CONNECTING && ex) FD_SET(c->fd, ex);
    return ka_nfds(c->fd);
}

int ka_client_fdset(ka_client *c, fd_set *rd, fd_set *wr) { return ka_client_fdset_ex(c, rd, wr, NULL); }

static int ka_isset(ka_socket s, const fd_set *set)
{
    return set && s != KA_INVALID_SOCKET && ka_fd_fits(s, set) && FD_ISSET(s, (fd_set *)set);
}

int ka_client_process_ex(ka_client *c, const fd_set *rd, const fd_set *wr, const fd_set *ex)
{
    int ready;
    if (!c) return KA_EINVAL;
    ready = (ka_isset(c->fd, rd) ? KA_READ : 0) | (ka_isset(c->fd, wr) ? KA_WRITE : 0);
    if (ka_isset(c->fd, ex)) ready |= KA_READ | KA_WRITE;    /* Windows: connect failed */
    return ka_client_process_events(c, ready);
}

int ka_client_process(ka_client *c, const fd_set *rd, const fd_set *wr) { return ka_client_process_ex(c, rd, wr, NULL); }

int ka_client_poll(ka_client *c, int timeout_ms)
{
    fd_set rd, wr, ex;
    struct timeval tv;
    long t;
    int nfds, n, ready = 0;
    if (!c) return KA_EINVAL;
    if (c->state == KA_STATE_IDLE || c->state == KA_STATE_STOPPED) return KA_ESTATE;
    t = ka_client_timeout_ms(c);
    if (timeout_ms >= 0 && (t < 0 || timeout_ms < t)) t = timeout_ms;
    FD_ZERO(&rd); FD_ZERO(&wr); FD_ZERO(&ex);
    nfds = ka_client_fdset_ex(c, &rd, &wr, &ex);
    if (nfds == KA_EFDSETSIZE) {
        ready = ka_poll_one(c->fd, ka_client_want(c), t < 0 ? -1 : (t > INT_MAX ? INT_MAX : (int)t));
        if (ready < 0) return KA_ESYS;
    } else {
        tv.tv_sec = t / 1000;
        tv.tv_usec = (t % 1000) * 1000;
        n = ka_select(nfds, &rd, &wr, &ex, t < 0 ? NULL : &tv);
        if (n < 0 && ka_sock_err() != KA_ERR_INTR) return KA_ESYS;
        if (n > 0) return ka_client_process_ex(c, &rd, &wr, &ex);
    }
    return ka_client_process_events(c, ready);
}

const char *ka_reason_str(ka_reason r)
{
    static const char *const names[] = {
        "none", "peer closed", "peer reset", "timeout", "unreachable", "refused",
        "connect timeout", "name resolution failed", "idle timeout", "local", "socket error",
        "peer stalled (window closed)", "aborted by the local stack"
    };
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "unknown reason";
}

const char *ka_state_str(ka_state s)
{
    static const char *const names[] = { "idle", "connecting", "connected", "backing off", "stopped" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown state";
}

const char *ka_strerror(int err)
{
    switch (err) {
    case KA_OK:         return "success";
    case KA_EINVAL:     return "invalid argument";
    case KA_ENOMEM:     return "out of memory";
    case KA_ESTATE:     return "not allowed in the current state";
    case KA_EAGAIN:     return "send queue full";
    case KA_ENOTCONN:   return "client stopped";
    case KA_EFDSETSIZE: return "socket number too large for select()";
    case KA_ESYS:       return "select() or poll() failed";
    case KA_EMSGSIZE:   return "message larger than send_buffer_size";
    default:            return "unknown error";
    }
}

/* The errors a TCP client meets, in words, without strerror(): its buffer
 * is not thread-safe everywhere, and Windows has none for WSA codes. */
static const struct { int code; const char *text; } ka_sys_texts[] = {
    { KA_ERR_REFUSED, "connection refused" },
    { KA_ERR_CONNRESET, "connection reset by peer" },
    { KA_ERR_TIMEDOUT, "connection timed out" },
    { KA_ERR_HOSTUNREACH, "no route to host" },
    { KA_ERR_NETUNREACH, "network is unreachable" },
    { KA_ERR_NETDOWN, "network is down" },
    { KA_ERR_HOSTDOWN, "host is down" },
    { KA_ERR_NETRESET, "connection reset by network" },
    { KA_E(WSAECONNABORTED, ECONNABORTED), "connection aborted by the local stack" },
    { KA_E(WSAESHUTDOWN, EPIPE), "broken pipe (the peer had closed)" },
    { KA_E(WSAEADDRINUSE, EADDRINUSE), "address already in use" },
    { KA_E(WSAEADDRNOTAVAIL, EADDRNOTAVAIL), "address not available" },
    { KA_E(WSAEAFNOSUPPORT, EAFNOSUPPORT), "address family not supported" },
    { KA_E(WSAEACCES, EACCES), "permission denied" },
    { KA_E(WSAEACCES, EPERM), "operation not permitted" },
    { KA_E(WSAEMFILE, EMFILE), "too many open files" },
    { KA_E(WSAEMFILE, ENFILE), "too many open files in the system" },
    { KA_E(WSAENOBUFS, ENOBUFS), "no buffer space available" },
    { KA_E(WSAENOBUFS, ENOMEM), "out of memory" },
    { KA_E(WSAEINVAL, EINVAL), "invalid argument" },
    { KA_E(WSAENOTCONN, ENOTCONN), "socket not connected" },
    { KA_E(WSAEINPROGRESS, EINPROGRESS), "operation in progress" },
    { KA_E(WSAENOPROTOOPT, ENOPROTOOPT), "protocol option not available" },
    { KA_E(WSAEPROTONOSUPPORT, EPROTONOSUPPORT), "protocol not supported" },
    { KA_E(WSAENETDOWN, ENODEV), "no such device" },
    { KA_E(WSAEINTR, EINTR), "interrupted" },
    { KA_E(WSAEWOULDBLOCK, EAGAIN), "resource temporarily unavailable" }
};

static const struct { int code; const char *text; } ka_gai_texts[] = {
    { EAI_AGAIN, "temporary failure in name resolution (resolver unreachable?)" },
    { EAI_FAIL, "non-recoverable failure in name resolution" },
    { EAI_NONAME, "no such name" },
#ifdef EAI_NODATA
    { EAI_NODATA, "the name has no address" },
#endif
#ifdef EAI_ADDRFAMILY
    { EAI_ADDRFAMILY, "the name has no address in that family" },
#endif
    { EAI_SERVICE, "unknown service (port) name" },
    { EAI_FAMILY, "address family not supported" },
    { EAI_MEMORY, "out of memory" },
    { EAI_BADFLAGS, "bad resolver flags" },
    { EAI_SOCKTYPE, "socket type not supported" }
};

const char *ka_sys_strerror(ka_reason reason, int sys_error)
{
    size_t i;
    if (sys_error == 0) return "no system error";
    if (reason == KA_REASON_RESOLVE) {
        for (i = 0; i < sizeof ka_gai_texts / sizeof ka_gai_texts[0]; i++)
            if (ka_gai_texts[i].code == sys_error) return ka_gai_texts[i].text;
        return "name resolution failed";
    }
    for (i = 0; i < sizeof ka_sys_texts / sizeof ka_sys_texts[0]; i++)
        if (ka_sys_texts[i].code == sys_error) return ka_sys_texts[i].text;
    return "other system error";
}

const char *ka_version(void) { return KA_VERSION_STRING; }
unsigned ka_version_num(void) { return KA_VERSION_NUM; }
