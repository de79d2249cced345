/* ka_client: one TCP client connection kept alive. MIT licensed; see LICENSE.
 *
 * Layout, top to bottom (search for "---- N."):
 *   1. compat: feature-test macros, includes, a few tiny platform helpers
 *   2. internal types: queues, watched sockets, the client
 *   3. keepalive and deadlines: the one place that knows each OS's options
 *   4. addresses and name lookups: literals, the lookup thread
 *   5. send queue: rings of bytes and of message lengths
 *   6. transports: plain TCP behind the ka_transport table
 *   7. state machine: states, transitions, the callback bracket
 *   8. watched sockets: what on_socket is told
 *   9. attempts and connections: the race, writing, reading, the link
 *      checks, and the dispatcher every public call ends in
 *  10. public API
 */

/* ---- 1. compat ---------------------------------------------------------- */

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
#include <net/if.h>
#include <netdb.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>
#ifndef KA_NO_THREADS
#include <pthread.h>
#endif
#endif

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ka_client.h"

/* The sockets one client may watch at once: its connection, the attempts
 * of a Happy Eyeballs race, and the end-of-lookup signal. */
#define KA_MAX_RACE  4
#define KA_MAX_WATCH (KA_MAX_RACE + 2)

typedef struct ka_pollset { ka_socket s; int want, ready; } ka_pollset;

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
static ka_socket ka_socket_open(int family, int type, int proto)
{
    u_long on = 1;
    ka_socket s = WSASocketW(family, type, proto, NULL, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == KA_INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
        s = WSASocketW(family, type, proto, NULL, 0, WSA_FLAG_OVERLAPPED);
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

#ifndef KA_NO_THREADS
/* The lookup thread wakes the client's loop through a socket the loop
 * watches like any other: Windows select() takes sockets only, and has no
 * socketpair, so a UDP socket on loopback connected to itself. */
static int ka_signal_open(ka_socket *rd, ka_socket *wr)
{
    struct sockaddr_in a;
    int len = sizeof a;
    ka_socket s = ka_socket_open(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (s == KA_INVALID_SOCKET) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &len) != 0 ||
        connect(s, (struct sockaddr *)&a, len) != 0) {
        closesocket(s);
        return -1;
    }
    *rd = *wr = s;
    return 0;
}
static void ka_signal_close(ka_socket rd, ka_socket wr) { (void)wr; closesocket(rd); }
#endif

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

/* Never needed: ka_client_poll's own fd_sets start empty, so there is room
 * for the few sockets a client has. */
static int ka_poll_many(ka_pollset *set, int n, int timeout_ms)
{
    (void)set; (void)n; (void)timeout_ms;
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
static int ka_old_style_flags(ka_socket s)
{
    int fl;
    fcntl(s, F_SETFD, FD_CLOEXEC);
    fl = fcntl(s, F_GETFL, 0);
    return fl == -1 || fcntl(s, F_SETFL, fl | O_NONBLOCK) == -1 ? -1 : 0;
}

static ka_socket ka_socket_open(int family, int type, int proto)
{
    ka_socket s;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    s = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (s != KA_INVALID_SOCKET || errno != EINVAL) return s;   /* EINVAL: a kernel older than the flags */
#endif
    s = socket(family, type, proto);
    if (s != KA_INVALID_SOCKET && ka_old_style_flags(s) != 0) {
        int e = errno;
        close(s);
        errno = e;
        return KA_INVALID_SOCKET;
    }
    return s;
}

#ifndef KA_NO_THREADS
/* The lookup thread wakes the client's loop through a socket pair the loop
 * watches like any other socket: select(), poll() and epoll all see it. */
static int ka_signal_open(ka_socket *rd, ka_socket *wr)
{
    int sv[2];
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0) goto done;
    if (errno != EINVAL) return -1;
#endif
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return -1;
    if (ka_old_style_flags(sv[0]) != 0 || ka_old_style_flags(sv[1]) != 0) { close(sv[0]); close(sv[1]); return -1; }
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
done:
#endif
    *rd = sv[0];
    *wr = sv[1];
    return 0;
}
static void ka_signal_close(ka_socket rd, ka_socket wr) { close(rd); close(wr); }
#endif

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
 * write past it), so ka_client_poll waits with poll() instead when one
 * does. Fills each ready with KA_READ | KA_WRITE bits; returns how many are
 * ready, 0 on timeout or signal, -1 on error. */
static int ka_poll_many(ka_pollset *set, int n, int timeout_ms)
{
    struct pollfd p[KA_MAX_WATCH];
    int i, r;
    for (i = 0; i < n; i++) {
        p[i].fd = set[i].s;
        p[i].events = (short)(((set[i].want & KA_READ) ? POLLIN : 0) | ((set[i].want & KA_WRITE) ? POLLOUT : 0));
        p[i].revents = 0;
    }
    r = poll(p, (nfds_t)n, timeout_ms);
    if (r < 0) return errno == EINTR ? 0 : -1;
    for (i = 0; i < n; i++)
        set[i].ready = ((p[i].revents & (POLLIN | POLLERR | POLLHUP)) ? KA_READ : 0) |
                       ((p[i].revents & (POLLOUT | POLLERR)) ? KA_WRITE : 0);
    return r;
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

/* Ties a socket to one local interface. 0, -1 with the socket error set,
 * or -2 where the platform has no way to. */
#if defined(SO_BINDTODEVICE)
static int ka_bind_interface(ka_socket s, int family, const char *name)
{
    (void)family;               /* Linux: by name, any family (CAP_NET_RAW before 5.7) */
    return setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, name, (ka_socklen)strlen(name)) == 0 ? 0 : -1;
}
#elif defined(IP_BOUND_IF)
static int ka_bind_interface(ka_socket s, int family, const char *name)
{
    unsigned idx = if_nametoindex(name);        /* macOS: by index, per family */
    if (!idx) return -1;
    if (family == AF_INET6) return setsockopt(s, IPPROTO_IPV6, IPV6_BOUND_IF, &idx, sizeof idx) == 0 ? 0 : -1;
    return setsockopt(s, IPPROTO_IP, IP_BOUND_IF, &idx, sizeof idx) == 0 ? 0 : -1;
}
#elif defined(_WIN32)
#ifndef IP_UNICAST_IF
#define IP_UNICAST_IF 31
#endif
#ifndef IPV6_UNICAST_IF
#define IPV6_UNICAST_IF 31
#endif
typedef ULONG (WINAPI *ka_nametoindex_fn)(PCSTR);

/* IP_UNICAST_IF takes an interface index; if_nametoindex lives in
 * iphlpapi.dll, loaded here so that the library links ws2_32 alone. A
 * decimal name is taken as the index itself. */
static int ka_bind_interface(ka_socket s, int family, const char *name)
{
    DWORD idx = (DWORD)strtoul(name, NULL, 10), v;
    if (!idx) {
        HMODULE m = LoadLibraryA("iphlpapi.dll");
        ka_nametoindex_fn fn = m ? (ka_nametoindex_fn)(void (*)(void))GetProcAddress(m, "if_nametoindex") : NULL;
        idx = fn ? fn(name) : 0;
        if (m) FreeLibrary(m);
        if (!idx) { WSASetLastError(WSAEINVAL); return -1; }
    }
    if (family == AF_INET6) return setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_IF, (const char *)&idx, sizeof idx) == 0 ? 0 : -1;
    v = htonl(idx);             /* the IPv4 option wants network byte order */
    return setsockopt(s, IPPROTO_IP, IP_UNICAST_IF, (const char *)&v, sizeof v) == 0 ? 0 : -1;
}
#else
static int ka_bind_interface(ka_socket s, int family, const char *name)
{
    (void)s; (void)family; (void)name;
    return -2;
}
#endif

/* The kernel's view of a connection, where the OS gives it: what the busy
 * and stall deadlines are judged on. */
typedef struct ka_kview {
    unsigned valid;             /* KA_STATS_* bits, and KA_KV_DEADLINE: the fields the deadlines need */
    unsigned unacked;           /* segments sent and not yet acknowledged */
    unsigned probes;            /* probes (keepalive or zero-window) unanswered */
    unsigned long since_ack;    /* ms since the peer last acknowledged anything */
    unsigned long since_send;   /* ms since the kernel last sent data, retransmissions included */
    unsigned long notsent;      /* bytes the kernel holds but has not sent */
    uint32_t acked;             /* bytes the peer has acknowledged, mod 2^32 */
    uint32_t written;           /* bytes handed to the kernel, mod 2^32 */
    unsigned ca_state;          /* Linux: 0 open ... 3 recovery, 4 loss */
    unsigned gone;              /* the kernel has ended the connection (a reset, a keepalive verdict) */
    unsigned long rtt_us, rttvar_us, retransmits, total_retrans, unacked_bytes, send_queue_bytes, peer_window;
} ka_kview;

#define KA_KV_DEADLINE 0x10000u

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
    uint64_t delivery_rate, busy_time, rwnd_limited, sndbuf_limited;
    uint32_t delivered, delivered_ce;
    uint64_t bytes_sent, bytes_retrans;
    uint32_t dsack_dups, reord_seen, rcv_ooopack, snd_wnd;
};

#define KA_TI_HAS(len, field) ((size_t)(len) >= offsetof(struct ka_tcp_info, field) + sizeof(((struct ka_tcp_info *)0)->field))

static int ka_kernel_view(ka_socket s, ka_kview *v)
{
    struct ka_tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    memset(v, 0, sizeof *v);
    if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || !KA_TI_HAS(len, total_retrans)) return -1;
    v->valid = KA_STATS_RTT | KA_STATS_RTTVAR | KA_STATS_RETRANS | KA_STATS_PROBES;
    v->unacked = ti.unacked;
    v->probes = ti.probes;
    v->since_ack = ti.last_ack_recv;
    v->since_send = ti.last_data_sent;
    v->ca_state = ti.ca_state;
    v->gone = ti.state == 7;                    /* TCP_CLOSE */
    v->rtt_us = ti.rtt;
    v->rttvar_us = ti.rttvar;
    v->retransmits = ti.retransmits;
    v->total_retrans = ti.total_retrans;
    if (KA_TI_HAS(len, bytes_retrans)) {        /* Linux 4.19+: everything the deadlines need */
        /* bytes_acked counts the SYN (and later our FIN) as a byte each */
        uint64_t fresh = ti.bytes_sent - ti.bytes_retrans, acked = ti.bytes_acked ? ti.bytes_acked - 1 : 0;
        if (acked > fresh) acked = fresh;
        v->valid |= KA_KV_DEADLINE | KA_STATS_UNACKED | KA_STATS_SENDQ;
        v->notsent = ti.notsent_bytes;
        v->acked = (uint32_t)acked;
        v->written = (uint32_t)(fresh + ti.notsent_bytes);
        v->unacked_bytes = (unsigned long)(fresh - acked);
        v->send_queue_bytes = v->unacked_bytes + ti.notsent_bytes;
    }
    if (KA_TI_HAS(len, snd_wnd)) {
        v->valid |= KA_STATS_PEER_WND;
        v->peer_window = ti.snd_wnd;
    }
    return 0;
}
#elif defined(_WIN32)
#define KA_HAVE_KERNEL_VIEW 0   /* statistics only: TCP_MAXRT carries the busy deadline */
#ifndef SIO_TCP_INFO
#define SIO_TCP_INFO _WSAIORW(IOC_VENDOR, 39)
#endif
/* TCP_INFO_v0 as mstcpip.h has it (Windows 10 1703+); MinGW's headers may not. */
typedef struct ka_tcp_info_v0 {
    int State;
    ULONG Mss;
    ULONG64 ConnectionTimeMs;
    BOOLEAN TimestampsEnabled;
    ULONG RttUs, MinRttUs, BytesInFlight, Cwnd, SndWnd, RcvWnd, RcvBuf;
    ULONG64 BytesOut, BytesIn;
    ULONG BytesReordered, BytesRetrans, FastRetrans, DupAcksIn, TimeoutEpisodes;
    UCHAR SynRetrans;
} ka_tcp_info_v0;

static int ka_kernel_view(ka_socket s, ka_kview *v)
{
    DWORD version = 0, got = 0;
    ka_tcp_info_v0 ti;
    memset(v, 0, sizeof *v);
    if (WSAIoctl(s, SIO_TCP_INFO, &version, sizeof version, &ti, sizeof ti, &got, NULL, NULL) != 0 || got < sizeof ti) return -1;
    v->valid = KA_STATS_RTT | KA_STATS_RETRANS | KA_STATS_UNACKED | KA_STATS_PEER_WND;
    v->gone = ti.State == 0;                    /* TCPSTATE_CLOSED */
    v->rtt_us = ti.RttUs;
    v->retransmits = ti.TimeoutEpisodes;
    v->total_retrans = ti.BytesRetrans;
    v->unacked_bytes = ti.BytesInFlight;
    v->peer_window = ti.SndWnd;
    return 0;
}
#else
#define KA_HAVE_KERNEL_VIEW 0
static int ka_kernel_view(ka_socket s, ka_kview *v) { (void)s; memset(v, 0, sizeof *v); return -1; }
#endif

/* Name lookups run on a helper thread so that no call blocks; build with
 * -DKA_NO_THREADS for a blocking lookup in the caller instead. */
#ifndef KA_NO_THREADS
#ifdef _WIN32
typedef CRITICAL_SECTION ka_mutex;
static int ka_mutex_init(ka_mutex *m) { InitializeCriticalSection(m); return 0; }
static void ka_mutex_lock(ka_mutex *m) { EnterCriticalSection(m); }
static void ka_mutex_unlock(ka_mutex *m) { LeaveCriticalSection(m); }
static void ka_mutex_done(ka_mutex *m) { DeleteCriticalSection(m); }
static SRWLOCK ka_profiles_mu = SRWLOCK_INIT;      /* static: no init call to race on */
static void ka_profiles_lock(void) { AcquireSRWLockExclusive(&ka_profiles_mu); }
static void ka_profiles_unlock(void) { ReleaseSRWLockExclusive(&ka_profiles_mu); }
#define KA_THREAD_FN(name, arg) static DWORD WINAPI name(LPVOID arg)    /* NOLINT(bugprone-macro-parentheses): names, not values */
#define KA_THREAD_END return 0

static int ka_thread_start(LPTHREAD_START_ROUTINE fn, void *arg)
{
    HANDLE h = CreateThread(NULL, 0, fn, arg, 0, NULL);
    if (!h) return -1;
    CloseHandle(h);             /* detached: nobody waits for it */
    return 0;
}
#else
typedef pthread_mutex_t ka_mutex;
static int ka_mutex_init(ka_mutex *m) { return pthread_mutex_init(m, NULL) == 0 ? 0 : -1; }
static void ka_mutex_lock(ka_mutex *m) { pthread_mutex_lock(m); }
static void ka_mutex_unlock(ka_mutex *m) { pthread_mutex_unlock(m); }
static void ka_mutex_done(ka_mutex *m) { pthread_mutex_destroy(m); }
static pthread_mutex_t ka_profiles_mu = PTHREAD_MUTEX_INITIALIZER;     /* static: no init call to race on */
static void ka_profiles_lock(void) { pthread_mutex_lock(&ka_profiles_mu); }
static void ka_profiles_unlock(void) { pthread_mutex_unlock(&ka_profiles_mu); }
#define KA_THREAD_FN(name, arg) static void *name(void *arg)    /* NOLINT(bugprone-macro-parentheses): names, not values */
#define KA_THREAD_END return NULL

static int ka_thread_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t at;
    int rc;
    if (pthread_attr_init(&at) != 0) return -1;
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);  /* nobody waits for it */
    rc = pthread_create(&t, &at, fn, arg);
    pthread_attr_destroy(&at);
    return rc == 0 ? 0 : -1;
}
#endif
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

/* ---- 2. internal types -------------------------------------------------- */

#define KA_MAX_PORT_LEN 32      /* a service name; getaddrinfo takes no longer */

static int ka_is_alnum(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* One address, as connect() takes it; its length follows from its
 * family (a name keeps KA_MAX_ADDRS of them in every client's block, so
 * none is stored). Family 0: no address. */
typedef struct ka_addr {
    union { struct sockaddr sa; struct sockaddr_in in4; struct sockaddr_in6 in6; } u;
} ka_addr;

static ka_socklen ka_addr_len(const ka_addr *a)
{
    if (a->u.sa.sa_family == AF_INET) return (ka_socklen)sizeof a->u.in4;
    return a->u.sa.sa_family == AF_INET6 ? (ka_socklen)sizeof a->u.in6 : 0;
}

/* A client's settings: its config without what is the client's own (user,
 * the servers), with copies of the interface name and heartbeat bytes.
 * A config is 344 bytes on LP64, more than the rest of an idle client, and
 * a gateway's thousand clients usually differ only in server and user, so
 * clients made from equal configs share one: it lives in the block of the
 * client that made it first, which therefore outlives that client until
 * the last client sharing it is freed, and every client is still one
 * allocation. In no-heap mode and without threads (no lock) each client
 * keeps its own. cfg comes first, so a client's cfg pointer is its profile. */
typedef struct ka_profile {
    ka_config cfg;              /* host, port, endpoints, bind_address, user: NULL */
    ka_addr bind_addr;          /* family 0: no bind_address */
    struct ka_profile *next;    /* in the list of shared ones */
    void *block;                /* the client block it lives in, freed with the last reference; */
                                /* NULL: not shared (no-heap mode, no threads). Set before it is shared, then fixed */
    unsigned refs;              /* clients using it, under ka_profiles_lock */
} ka_profile;

/* One server: its name, and the addresses of its last good lookup (for an
 * address literal, parsed once in ka_client_new: no lookup ever). The
 * servers follow the client in its block, and keep where their strings
 * and addresses are in it as offsets: a pointer would be four times the
 * size, and every idle client carries this (the block's first 64 KiB hold
 * every server's record, slots and strings: see ka_layout). */
typedef struct ka_ep {
    uint16_t host_at;           /* the name, its port string right after */
    uint16_t addr_at;           /* KA_MAX_ADDRS slots for a name, 1 for a KA_LITERAL, none for a KA_LITERAL_PARSED */
    unsigned char numeric;      /* KA_NAME, KA_LITERAL or KA_LITERAL_PARSED */
    unsigned char naddr;        /* 0 until a lookup succeeds */
} ka_ep;

/* A socket the client watches, and the want on_socket was last told (so a
 * socket is announced once, and withdrawn before it is closed). */
typedef struct ka_watch {
    ka_socket s;
    int told;
} ka_watch;

/* A ring of bytes that grows on demand up to max (from the allocator), or
 * sits in the client's block at its full size (no-heap mode: fixed). */
/* Queue sizes are bounded by 1 GiB (ka_config_error): 32 bits hold them,
 * and an idle client's bookkeeping stays small. */
typedef unsigned ka_len;

typedef struct ka_ring {
    unsigned char *buf;
    ka_len size, head, len, max;
    int fixed;
} ka_ring;

typedef struct ka_queue {
    ka_ring data, lens;         /* message bytes back to back; each message's length */
    ka_len cap;                 /* bound on the bytes held */
    ka_len msgs;                /* messages held */
    ka_len done_msgs, done_bytes, done_lens;    /* from the head: handed over whole, kept for replay */
    ka_len part;                /* bytes of the message being written already handed over */
    int keep;                   /* keep what is handed over until acknowledged */
} ka_queue;

/* A client's two queues: what goes before the session is ready, and the
 * backlog. They live in a block of their own, allocated when a message
 * first has to wait (the kernel took it only in part, or replay keeps it)
 * and given back when their rings are, so a client that never queued holds
 * none; until then c->q points to ka_no_queues, which is never written.
 * In no-heap mode they sit in the client's block. */
typedef struct ka_queues {
    ka_queue hs, mq;
    unsigned long long trim_at; /* when emptied queues give back their memory (ka_now_ms); 0 = none due */
} ka_queues;

static const ka_queues ka_no_queues;

#define KA_RING_KEEP 16384      /* an empty ring up to this size keeps its buffer */
/* A larger one goes back as soon as its queue empties, unless the last
 * give-back was less than this long ago: then the queue is carrying a
 * stream, which refills it at once, and giving the memory back each time
 * cost a quarter of the bulk throughput on loopback (page faults, and
 * mmap/munmap for large rings). A stream's memory goes back within this
 * long after it last emptied, one timer wake-up later. */
#define KA_TRIM_DELAY_MS 100

/* Reads go to a buffer on the stack up to this size, so an idle client
 * holds none; a larger recv_buffer_size gets its own in the block.
 * Embedded builds with small stacks may lower it (-DKA_RECV_STACK=512). */
#ifndef KA_RECV_STACK
#define KA_RECV_STACK 16384
#endif

/* How many samples of "bytes written by then" the busy deadline keeps:
 * one per look, a look every eighth of the deadline. */
#define KA_WLOG 9

/* A name lookup on the helper thread, shared with it (see section 3). */
typedef struct ka_lookup ka_lookup;
typedef struct ka_work ka_work;

/* Where a connect attempt is. */
/* KA_PHASE_FAILED: the attempt failed inside a call that runs no callback
 * (start, retry_now, retry_in); the next poll reports it. */
enum { KA_PHASE_NONE, KA_PHASE_RESOLVE, KA_PHASE_RACE, KA_PHASE_HANDSHAKE, KA_PHASE_FAILED };

/* What only an attempt or only a busy connection needs, in a block of
 * its own so that an idle connected client does not carry it: the
 * lookup's signal, the race's sockets, and either the attempt's deadlines
 * and address order or the connection's write log (the two never overlap).
 * The block is allocated when an attempt begins and given back when the
 * connection is made; while connected, it is allocated when a look at the
 * kernel finds data waiting for its acknowledgement, and given back when
 * one finds it all acknowledged. A client in BACKOFF keeps it for the next
 * attempt. No-heap mode keeps it in the client's block for good. */
struct ka_work {
    union {
        struct {                        /* an attempt's (ka_attempt_work) */
            ka_watch lookup_w;          /* the lookup's end-of-lookup signal, while one is awaited */
            ka_watch race[KA_MAX_RACE]; /* attempts in flight */
            struct {                    /* cleared when an attempt begins */
                unsigned long long resolve_deadline, race_deadline, next_try_at;
                ka_reason fail_reason;  /* the most telling failure so far */
                int fail_err;
                unsigned char norder, next_addr;    /* the race's addresses, and the next one to try */
                unsigned char order[KA_MAX_ADDRS];
                unsigned char race_addr[KA_MAX_RACE];   /* the address each race slot dials */
            } a;
        } at;
        struct {                        /* a connection's (wk_log) */
            struct { uint32_t written, at; } log[KA_WLOG];  /* see ka_check_link */
            unsigned n;
        } w;
    } ph;
};

/* Ten reasons can end a connection; those of a connect attempt (REFUSED,
 * CONNECT_TIMEOUT, RESOLVE: see ka_classify) and NONE never do, so the
 * client counts ended connections in ten slots. -1 for the others. */
#define KA_DISC_SLOTS 10
typedef char ka_disc_slots_cover_every_reason[KA_REASON_TLS - 3 == KA_DISC_SLOTS ? 1 : -1];

static int ka_disc_slot(ka_reason r)
{
    if (r >= KA_REASON_PEER_CLOSED && r <= KA_REASON_UNREACHABLE) return (int)r - 1;
    if (r >= KA_REASON_HEARTBEAT && r <= KA_REASON_TLS) return (int)r - 4;
    return -1;
}

struct ka_client {
    /* The fields go widest first, so that none pads: an idle connected
     * client is this block and little else, and a gateway holds thousands
     * (see the README's memory figures). */
    const ka_config *cfg;       /* the settings: a ka_profile, shared or our own */
    void *user;                 /* cfg.user: each client has its own */
    ka_work *wk;                /* NULL when neither an attempt nor a busy connection needs it */
    ka_queues *q;               /* ka_no_queues (read only) until a message has to wait */

    /* times (ka_now_ms) */
    union {                     /* one state's each: they never overlap */
        unsigned long long retry_at;    /* BACKOFF: the next attempt; 0 while not set yet */
        unsigned long long check_at;    /* CONNECTED: the next look at the kernel's view of the connection; 0 = none */
    } when;
    unsigned long long connected_at;

    /* counters for ka_client_stats */
    unsigned long long n_attempts, n_bytes_sent, n_bytes_recv, n_msgs_sent, n_reads;
    unsigned long long n_dropped, up_ms_total;
    uint32_t last_send, last_recv;  /* low 32 bits of ka_now_ms: see ka_since */
    uint32_t high_water;        /* the queues hold at most 2 x 1 GiB (ka_config_error) */
    uint32_t trimmed_at;        /* when the queues last gave back memory (low 32 bits of
                                 * ka_now_ms, 0 = never): see ka_trim_later */
    unsigned n_disc[KA_DISC_SLOTS];     /* connections ended, by ka_disc_slot: every connection
                                         * ends in ka_lost, so these and the one up (if any) are
                                         * all the connections made (see ka_client_stats) */

    unsigned epoch;             /* bumped by every transition: callbacks check it */
    int depth;                  /* callbacks currently running */
    int broken_err;             /* with broken */

    /* backoff */
    unsigned fails;             /* consecutive failed attempts */
    unsigned retries;           /* retries scheduled since start or last good connection */
    unsigned rng;
    unsigned override_ms;

    ka_watch conn;              /* the connection */

    /* Enums and small counts are chars, flags are bits. */
    unsigned char state;        /* ka_state */
    unsigned char broken;       /* ka_reason: a write failed where the client could not act
                                 * (inside ka_client_send): the next step reports it */
    unsigned char phase;        /* KA_PHASE_*: where a connect attempt is */
    unsigned char nep, cur_ep, next_ep;     /* servers: at most KA_MAX_ENDPOINTS */
    unsigned char last_family;  /* AF_* of the last good connection: raced first */
    unsigned char said;         /* KA_SAID_*: what on_log has been told once */
    signed char view;           /* TCP_INFO readable: 1 yes, -1 no, 0 not asked yet */
    unsigned hook_waiting : 1;  /* a resolve() hook's answer is awaited */
    unsigned quiet : 1;         /* inside start/retry_now/retry_in: failures wait for the next poll */
    unsigned free_pending : 1;  /* ka_client_free from a callback */
    unsigned owned : 1;         /* block came from ka_client_new, not the caller */
    unsigned degraded : 1;      /* on_health was last told "degraded" */
    unsigned probes_capped : 1; /* this connection's window-probe backoff is capped */
    unsigned has_override : 1;  /* ka_client_retry_in chose the next delay */
    unsigned read_more : 1;     /* the last read stopped at its bound with data left */
    unsigned read_wants_write : 1;  /* the transport session's last read waits for writability */
    unsigned write_wants_read : 1;  /* its last write waits for readability */
    /* sending: what goes before the session is ready, and the backlog */
    unsigned ready : 1;         /* this connection's session is ready: the backlog may go */
    unsigned finishing : 1;     /* ka_client_finish: deliver the queue, then close */
    unsigned wr_shut : 1;       /* this connection's write side is shut down */
    unsigned peer_fin : 1;      /* the peer shut down its side (keep_writing_after_fin) */
    unsigned has_ext : 1;       /* a ka_ext follows the client */
    unsigned wk_log : 1;        /* the work block holds the connection's write log */

    /* the ka_ext (if has_ext), the servers, their addresses and strings,
     * its own profile (if it shares none) with its strings and heartbeat
     * bytes, the receive
     * buffer and (no-heap mode) the work block, the queues and their
     * storage follow: see ka_layout */
};

#define KA_CONN(c) ((c)->conn.s)

/* What only some clients use, right behind the client when one of them
 * does (see ka_layout): a server given by name (the lookup's mailbox), a
 * transport other than plain TCP (its session and error), a receive
 * buffer too large for the stack. The others go without these 24 bytes:
 * a plain TCP session is the socket itself. */
typedef struct ka_ext {
    ka_lookup *lookup;          /* the helper thread's mailbox, while lookups need it (see ka_lookup_put_away) */
    void *tp_session;           /* the transport's session on this connection */
    int tp_err;                 /* the last KA_REASON_TLS code */
    uint32_t rbuf_at;           /* the receive buffer's offset in the block when recv_buffer_size
                                 * > KA_RECV_STACK; 0: on the stack */
} ka_ext;

static ka_ext *ka_ext_of(const ka_client *c) { return c->has_ext ? (ka_ext *)(void *)(uintptr_t)(c + 1) : NULL; }  /* NOLINT(performance-no-int-to-ptr): our own block */

/* The transport's session: a plain TCP client without a ka_ext has the
 * socket for one (see ka_plain_open). */
static void *ka_session(const ka_client *c)
{
    if (c->has_ext) return ka_ext_of(c)->tp_session;
    return c->conn.s != KA_INVALID_SOCKET ? (void *)(uintptr_t)c->conn.s : NULL;  /* NOLINT(performance-no-int-to-ptr) */
}

static void ka_set_session(ka_client *c, void *session) { if (c->has_ext) ka_ext_of(c)->tp_session = session; }

/* The transport failed with its own code (KA_TP_FAILED): only a transport
 * other than plain TCP does, and such a client has a ka_ext. */
static void ka_tp_failed(ka_client *c, int err) { if (c->has_ext) ka_ext_of(c)->tp_err = err; }

/* Milliseconds from then (the low 32 bits of a ka_now_ms reading) to now,
 * exact up to 49.7 days. last_send and last_recv are kept so: they are
 * only ever measured against the write log's 32-bit times or a heartbeat
 * interval or idle timeout taken through ka_span, which leaves a poll that
 * comes late at least 24.8 days to still see the interval as run out. */
static unsigned long long ka_since(unsigned long long now, uint32_t then) { return (uint32_t)((uint32_t)now - then); }

#define KA_SPAN_MAX 0x7FFFFFFFu     /* ms, about 24.8 days */
static unsigned ka_span(unsigned ms) { return ms < KA_SPAN_MAX ? ms : KA_SPAN_MAX; }

/* How a server's host is given (ka_ep.numeric). */
#define KA_NAME           0     /* a name: looked up at each attempt */
#define KA_LITERAL        1     /* an address literal parsed once (ka_parse_literal) */
#define KA_LITERAL_PARSED 2     /* one read again at each use (ka_parse_pton) */

/* Server i, right behind the client and its ka_ext (see ka_layout). */
static ka_ep *ka_ep_of(ka_client *c, unsigned i)
{
    return (ka_ep *)(void *)((unsigned char *)(c + 1) + (c->has_ext ? sizeof(ka_ext) : 0)) + i;
}
static ka_ep *ka_cur_ep(ka_client *c) { return ka_ep_of(c, c->cur_ep); }
static const char *ka_ep_host(const ka_client *c, const ka_ep *e) { return (const char *)c + e->host_at; }
static const char *ka_ep_port(const ka_client *c, const ka_ep *e)
{
    const char *host = ka_ep_host(c, e);
    return host + strlen(host) + 1;
}
static ka_addr *ka_ep_addr(ka_client *c, const ka_ep *e) { return (ka_addr *)(void *)((unsigned char *)c + e->addr_at); }

static const ka_profile *ka_prof(const ka_client *c) { return (const ka_profile *)c->cfg; }

/* -DKA_NO_LOG compiles logging out: on_log is never called, and a static
 * program no longer links snprintf (about 15 KB of .text with musl). */
static void ka_log(ka_client *c, int level, const char *fmt, ...)
{
#ifdef KA_NO_LOG
    (void)c; (void)level; (void)fmt;
#else
    char msg[320];
    va_list ap;
    if (!c->cfg->cb.on_log) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->depth++;
    c->cfg->cb.on_log(c, level, msg, c->user);
    c->depth--;
#endif
}

/* Some things are the same for every socket of a client (which keepalive
 * mechanism the OS took, an option it refuses): on_log hears them once. */
#define KA_SAID_KEEPALIVE 1u
#define KA_SAID_DEADLINE  2u
#define KA_SAID_RTO_MAX   4u
#define KA_SAID_NO_IFACE  8u

static int ka_first_time(ka_client *c, unsigned what)
{
    if (c->said & what) return 0;
    c->said |= what;
    return 1;
}

/* ---- 3. keepalive and deadlines ----------------------------------------- */

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

/* Linux 6.15+: the longest retransmission (and zero-window probe) backoff.
 * Capping it at half the busy deadline means a peer whose window is closed
 * is probed at least twice per deadline, so one that dies meanwhile is
 * found in about that time, not after probes two minutes apart. Set when a
 * window is first seen closed, not on every socket: it also caps the
 * SYN's backoff (the kernel's six SYN retries would then end a connect
 * before connect_timeout_ms), and most connections never need it. */
#if defined(__linux__) && !defined(TCP_RTO_MAX_MS)
#define TCP_RTO_MAX_MS 44
#endif

static void ka_cap_probe_backoff(ka_client *c, ka_socket s)
{
#ifdef TCP_RTO_MAX_MS
    unsigned ms = ka_busy_deadline_ms(c->cfg) / 2;
    int val = (int)(ms < 1000 ? 1000 : ms > 120000 ? 120000 : ms);
    if (!ka_busy_deadline_ms(c->cfg)) return;
    if (setsockopt(s, IPPROTO_TCP, TCP_RTO_MAX_MS, (const char *)&val, sizeof val) != 0 && ka_first_time(c, KA_SAID_RTO_MAX))
        ka_log(c, KA_LOG_INFO, "TCP_RTO_MAX_MS refused (error %d, kernel before 6.15): a peer that dies while its window is closed may be found up to 2 minutes late", ka_sock_err());
#else
    (void)c; (void)s;
#endif
}

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
    const ka_config *k = c->cfg;
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
    unsigned ms = ka_busy_deadline_ms(c->cfg);
    if (ms) ka_setopt(c, KA_CONN(c), IPPROTO_TCP, TCP_MAXRT, "TCP_MAXRT", (int)ka_ms_to_s(ms));
    if (ka_first_time(c, KA_SAID_DEADLINE))
        ka_log(c, KA_LOG_DEBUG, "busy deadline: %s %u ms", ms ? "TCP_MAXRT" : "off,", ms);
}
#else

static void ka_set_keepalive(ka_client *c, ka_socket s)
{
    const ka_config *k = c->cfg;
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
/* Whether TCP_INFO can be read on this system, asked once per client:
 * headers may have it while the kernel (or an emulator such as qemu-user,
 * which answers 4 bytes) does not. */
static int ka_view_works(ka_client *c)
{
    ka_kview v;
    if (!KA_HAVE_KERNEL_VIEW) return 0;
    if (!c->view) c->view = ka_kernel_view(KA_CONN(c), &v) == 0 && (v.valid & KA_KV_DEADLINE) ? 1 : -1;
    return c->view > 0;
}

static void ka_set_busy_deadline(ka_client *c)
{
    unsigned ms = ka_busy_deadline_ms(c->cfg);
    int level = KA_LOG_DEBUG, view = ka_view_works(c);     /* on_health and the stall deadline need it too */
    const char *how = "off";
    if (ms && view) how = "enforced from TCP_INFO";
    else if (ms) {
#if defined(TCP_MAXUNACKTIME)
        how = "TCP_MAXUNACKTIME";       /* FreeBSD, seconds */
        ka_setopt(c, KA_CONN(c), IPPROTO_TCP, TCP_MAXUNACKTIME, how, (int)ka_ms_to_s(ms));
#elif defined(TCP_RXT_CONNDROPTIME)
        how = "TCP_RXT_CONNDROPTIME";   /* macOS, seconds */
        ka_setopt(c, KA_CONN(c), IPPROTO_TCP, TCP_RXT_CONNDROPTIME, how, (int)ka_ms_to_s(ms));
#elif defined(TCP_USER_TIMEOUT)
        /* Linux whose TCP_INFO cannot be read: the kernel option, with the
         * couplings the library otherwise avoids. */
        level = KA_LOG_INFO;
        how = "TCP_USER_TIMEOUT, because TCP_INFO cannot be read here: a peer that stops reading is ended as TIMEOUT after it, and it replaces the keepalive probe count";
        ka_setopt(c, KA_CONN(c), IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT", (int)ms);
#else
        level = KA_LOG_WARN;
        how = "no busy-path option on this platform: a path lost under load is found only by the OS's retransmission limit";
#endif
    }
    if (ka_first_time(c, KA_SAID_DEADLINE)) {
        ka_log(c, level, "busy deadline %u ms: %s", ms, how);
        if (c->cfg->stall_timeout_ms && c->view <= 0) ka_log(c, KA_LOG_WARN, "stall_timeout_ms needs TCP_INFO, which cannot be read here: not enforced");
    }
}
#endif

/* ---- 4. addresses and name lookups -------------------------------------- */

static int ka_family_of(int kaf) { return kaf == KA_FAMILY_IPV4 ? AF_INET : kaf == KA_FAMILY_IPV6 ? AF_INET6 : AF_UNSPEC; }

/* Keeps up to KA_MAX_ADDRS IPv4/IPv6 addresses of a getaddrinfo() answer
 * (or of a resolve() hook's), giving a port of 0 the endpoint's. */
static unsigned ka_addr_take(ka_addr *out, unsigned room, const struct sockaddr *sa, unsigned short port)
{
    if (!room || !sa) return 0;
    if (sa->sa_family == AF_INET) {
        memcpy(&out->u.in4, sa, sizeof out->u.in4);
        if (!out->u.in4.sin_port) out->u.in4.sin_port = htons(port);
        return 1;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(&out->u.in6, sa, sizeof out->u.in6);
        if (!out->u.in6.sin6_port) out->u.in6.sin6_port = htons(port);
        return 1;
    }
    return 0;
}

static unsigned short ka_port_number(const char *port)
{
    unsigned long v = strtoul(port, NULL, 10);
    return (unsigned short)(v <= 65535 ? v : 0);
}

/* Keeps the answer's addresses in the server's KA_MAX_ADDRS slots. */
static void ka_ep_store(ka_client *c, ka_ep *e, const struct addrinfo *ai)
{
    ka_addr *slots = ka_ep_addr(c, e);
    unsigned n = 0;
    for (; ai && n < KA_MAX_ADDRS; ai = ai->ai_next) n += ka_addr_take(&slots[n], KA_MAX_ADDRS - n, ai->ai_addr, 0);
    e->naddr = (unsigned char)n;
}

/* A host as stored: an IPv6 literal without the brackets of "[v6]". Its
 * length, and its copy into out (KA_MAX_HOST_LEN + 1 bytes). */
static size_t ka_host_len(const char *h) { return h[0] == '[' ? strlen(h) - 2 : strlen(h); }

static void ka_host_copy(char *out, const char *h)
{
    size_t n = ka_host_len(h);
    if (h[0] == '[') h++;
    memcpy(out, h, n);
    out[n] = '\0';
}

/* An address literal inet_pton reads whole, with a numeric port (the
 * usual "192.0.2.7", "7000"), is read again at each use: cheaper than
 * the 28 bytes of its sockaddr in every idle client. 0, or -1 for any
 * other host. */
static int ka_parse_pton(const char *host, const char *port, ka_addr *out)
{
    char h[64];                                 /* INET6_ADDRSTRLEN is 46 */
    size_t n = ka_host_len(host), p = strlen(port);
    if (n >= sizeof h || !p || p > 5 || strspn(port, "0123456789") != p || strtoul(port, NULL, 10) > 65535) return -1;
    ka_host_copy(h, host);
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, h, &out->u.in4.sin_addr) == 1) {
        out->u.in4.sin_family = AF_INET;
        out->u.in4.sin_port = htons(ka_port_number(port));
        return 0;
    }
    if (inet_pton(AF_INET6, h, &out->u.in6.sin6_addr) == 1) {
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons(ka_port_number(port));
        return 0;
    }
    return -1;
}

/* Server e's addresses: its slots, or its literal read into *tmp. */
static const ka_addr *ka_ep_addrs(ka_client *c, const ka_ep *e, ka_addr *tmp)
{
    if (e->numeric != KA_LITERAL_PARSED) return ka_ep_addr(c, e);
    if (ka_parse_pton(ka_ep_host(c, e), ka_ep_port(c, e), tmp) != 0) memset(tmp, 0, sizeof *tmp);   /* cannot fail: see ka_layout */
    return tmp;
}

/* Any other address literal (a scoped IPv6 one, a service name for the
 * port) needs no resolver either: parsed without blocking (the flags
 * forbid any lookup), once, when the client is made. */
static int ka_parse_literal(const char *host, const char *port, ka_addr *out)
{
    struct addrinfo hints, *ai = NULL;
    unsigned n;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | (port && port[0] >= '0' && port[0] <= '9' ? AI_NUMERICSERV : 0);
    if (getaddrinfo(host, port, &hints, &ai) != 0) return -1;
    n = ka_addr_take(out, 1, ai->ai_addr, 0);
    freeaddrinfo(ai);
    return n ? 0 : -1;
}

static int ka_is_literal(const char *host)
{
    unsigned char bin[16];
    return inet_pton(AF_INET, host, bin) == 1 || strchr(host, ':') != NULL;   /* v6 literals were checked in ka_config_error */
}

/* A failure the resolver may get over (timeout, EAI_AGAIN, SERVFAIL...),
 * as opposed to a name that does not exist. */
static int ka_resolve_transient(int err)
{
    if (err == EAI_NONAME) return 0;
#ifdef EAI_NODATA
    if (err == EAI_NODATA) return 0;
#endif
    return 1;
}

#ifndef KA_NO_THREADS
/* The helper thread's mailbox. The client owns one from a lookup until
 * its connection is made (see ka_lookup_put_away) or ka_client_free; each
 * running thread holds a reference too, so a lookup the client gave up on
 * (timeout, stop, free) finishes on its own and the last one out frees
 * everything: no call ever waits for a lookup. gen is the query the
 * client still wants; a thread whose answer is for another query throws
 * it away. Allocated with malloc, not mem_alloc: it may outlive the
 * client and the application's allocator. */
typedef struct ka_query ka_query;

struct ka_lookup {
    ka_mutex lock;
    int refs;
    ka_socket rd, wr;           /* the end-of-lookup signal */
    unsigned gen;               /* the query the client waits for */
    unsigned run_gen;           /* run's */
    ka_query *run;              /* the newest thread's query while it runs (its name is
                                 * read there, not copied: every client with a name has
                                 * a mailbox), NULL once it has ended */
    int done, err;              /* the answer to gen */
    struct addrinfo *res;
};

/* A thread's own copy of what it looks up: the client may be gone before
 * getaddrinfo() returns. */
struct ka_query {
    ka_lookup *l;
    unsigned gen;
    int family;
    char host[KA_MAX_HOST_LEN + 1], port[KA_MAX_PORT_LEN + 1];
};

static void ka_lookup_free(ka_lookup *l)
{
    if (l->res) freeaddrinfo(l->res);
    ka_signal_close(l->rd, l->wr);
    ka_mutex_done(&l->lock);
    free(l);
}

/* Drops one reference; the last one frees. */
static void ka_lookup_release(ka_lookup *l)
{
    int last;
    ka_mutex_lock(&l->lock);
    last = --l->refs == 0;
    ka_mutex_unlock(&l->lock);
    if (last) ka_lookup_free(l);
}

KA_THREAD_FN(ka_lookup_run, arg)
{
    ka_query *q = (ka_query *)arg;
    ka_lookup *l = q->l;
    struct addrinfo hints, *res = NULL;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = q->family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    rc = getaddrinfo(q->host, q->port, &hints, &res);
    ka_mutex_lock(&l->lock);
    if (l->gen == q->gen && !l->done) {         /* still wanted: hand it over, wake the loop */
        l->res = res;
        l->err = rc;
        l->done = 1;
        res = NULL;
        send(l->wr, "!", 1, KA_SEND_FLAGS);
    }
    if (l->run == q) l->run = NULL;             /* before q goes: nothing reads it after */
    ka_mutex_unlock(&l->lock);
    if (res) freeaddrinfo(res);
    free(q);
    ka_lookup_release(l);
    KA_THREAD_END;
}

static ka_lookup *ka_lookup_new(void)
{
    ka_lookup *l = (ka_lookup *)calloc(1, sizeof *l);
    if (!l) return NULL;
    if (ka_mutex_init(&l->lock) != 0) { free(l); return NULL; }
    if (ka_signal_open(&l->rd, &l->wr) != 0) { ka_mutex_done(&l->lock); free(l); return NULL; }
    l->refs = 1;
    return l;
}

/* Starts looking up host/port, or joins a thread already looking up the
 * same (a lookup the client gave up on a moment ago): at most one thread
 * per name, however often the client restarts. 0, or an EAI_ code. */
static int ka_lookup_start(ka_lookup *l, const char *host, const char *port, int family)
{
    ka_query *q;
    int rc = 0;
    ka_mutex_lock(&l->lock);
    l->gen++;
    l->done = 0;
    if (l->res) { freeaddrinfo(l->res); l->res = NULL; }
    if (l->run && l->run->family == family && strcmp(l->run->host, host) == 0 && strcmp(l->run->port, port) == 0) {
        l->gen = l->run_gen;                    /* its answer is ours */
    } else if ((q = (ka_query *)malloc(sizeof *q)) == NULL) {
        rc = EAI_MEMORY;
    } else {
        ka_query *prev = l->run;                /* another name's thread, if one runs */
        unsigned prev_gen = l->run_gen;
        q->l = l;
        q->gen = l->gen;
        q->family = family;
        strcpy(q->host, host);
        strcpy(q->port, port);
        l->refs++;
        l->run = q;                             /* under the lock: the thread cannot end first */
        l->run_gen = l->gen;
        if (ka_thread_start(ka_lookup_run, q) != 0) {
            l->run = prev;
            l->run_gen = prev_gen;
            l->refs--;
            free(q);
            rc = EAI_AGAIN;
        }
    }
    ka_mutex_unlock(&l->lock);
    return rc;
}

/* The answer, if it has come: 1 with *res / *err set (res is the caller's
 * to free), 0 if not yet. Drains the signal. */
static int ka_lookup_answer(ka_lookup *l, struct addrinfo **res, int *err)
{
    char buf[16];
    int done;
    while (recv(l->rd, buf, sizeof buf, 0) > 0) { }
    ka_mutex_lock(&l->lock);
    done = l->done;
    if (done) {
        *res = l->res;
        *err = l->err;
        l->res = NULL;
        l->done = 0;
        l->gen++;                               /* consumed: nothing more is wanted */
    }
    ka_mutex_unlock(&l->lock);
    return done;
}

/* No thread of this mailbox is running. */
static int ka_lookup_idle(ka_lookup *l)
{
    int idle;
    ka_mutex_lock(&l->lock);
    idle = l->run == NULL;
    ka_mutex_unlock(&l->lock);
    return idle;
}

/* The client no longer wants the answer. */
static void ka_lookup_abandon(ka_lookup *l)
{
    ka_mutex_lock(&l->lock);
    l->gen++;
    l->done = 0;
    if (l->res) { freeaddrinfo(l->res); l->res = NULL; }
    ka_mutex_unlock(&l->lock);
}
#endif

/* ---- 5. send queue ------------------------------------------------------ */

/* Memory from the application's allocator hooks, or malloc. */
static void *ka_alloc(const ka_client *c, size_t n)
{
    return c->cfg->mem_alloc ? c->cfg->mem_alloc(n, c->cfg->mem_user) : malloc(n);
}

static void ka_dealloc(const ka_client *c, void *p)
{
    if (!p) return;
    if (c->cfg->mem_alloc) c->cfg->mem_free(p, c->cfg->mem_user);
    else free(p);
}

/* Room for n more bytes in r: 0, KA_EAGAIN (it would pass r->max) or
 * KA_ENOMEM. A growing ring doubles (256 bytes at first), copying its bytes
 * in order into the new buffer; a fixed one (no-heap mode) never moves. */
static int ka_ring_room(const ka_client *c, ka_ring *r, size_t n)
{
    size_t want, first;
    unsigned char *nb;
    if (r->size - r->len >= n) return 0;
    if (r->fixed || n > r->max - r->len) return KA_EAGAIN;
    want = r->size ? r->size * 2 : 256;
    if (want < r->len + n) want = r->len + n;
    if (want > r->max) want = r->max;
    if ((nb = (unsigned char *)ka_alloc(c, want)) == NULL) return KA_ENOMEM;
    first = r->size - r->head < r->len ? r->size - r->head : r->len;
    if (r->len) {
        memcpy(nb, r->buf + r->head, first);
        memcpy(nb + first, r->buf, r->len - first);
    }
    ka_dealloc(c, r->buf);
    r->buf = nb;
    r->size = (ka_len)want;
    r->head = 0;
    return 0;
}

static void ka_ring_put(ka_ring *r, const void *src, size_t n)
{
    size_t tail = (r->head + r->len) % r->size, first = r->size - tail < n ? r->size - tail : n;
    memcpy(r->buf + tail, src, first);
    memcpy(r->buf, (const unsigned char *)src + first, n - first);
    r->len += (ka_len)n;
}

/* The bytes from offset off on: where they start and how many of them (up
 * to n) lie there back to back. */
static const unsigned char *ka_ring_span(const ka_ring *r, size_t off, size_t n, size_t *got)
{
    size_t at = (r->head + off) % r->size, room = r->size - at;
    *got = n < room ? n : room;
    return r->buf + at;
}

static void ka_ring_drop(ka_ring *r, size_t n)
{
    if (!n) return;
    r->head = (ka_len)((r->head + n) % r->size);
    r->len -= (ka_len)n;
    if (!r->len) r->head = 0;
}

/* An empty growing ring gives its buffer back. */
static void ka_ring_release(const ka_client *c, ka_ring *r)
{
    if (r->fixed || r->len || !r->buf) return;
    ka_dealloc(c, r->buf);
    r->buf = NULL;
    r->size = r->head = 0;
}

/* Message lengths, LEB128: 1 byte under 128, 2 under 16384, ... */
static size_t ka_varint_len(size_t v)
{
    size_t n = 1;
    while (v >= 128) { v >>= 7; n++; }
    return n;
}

static void ka_varint_put(ka_ring *r, size_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n] = (unsigned char)(v & 127);
        v >>= 7;
        if (v) b[n] |= 128;
        n++;
    } while (v);
    ka_ring_put(r, b, n);
}

/* Reads the length at offset off; returns how many bytes it takes. */
static size_t ka_varint_get(const ka_ring *r, size_t off, size_t *v)
{
    size_t n = 0, x = 0;
    unsigned shift = 0;
    unsigned char b;
    do {
        b = r->buf[(r->head + off + n++) % r->size];
        x |= (size_t)(b & 127) << shift;
        shift += 7;
    } while (b & 128);
    *v = x;
    return n;
}

/* A queue keeps messages back to back in `data` and their lengths in
 * `lens`, so boundaries cost memory per message, not per byte, and many
 * messages go to the kernel in one write. From the head: messages handed
 * over whole and kept for replay (done_*, only with keep), then the
 * message being written (part of it handed over), then the rest. Without
 * keep, bytes are dropped as they are handed over, the message being
 * written included. */
static size_t ka_q_unsent_at(const ka_queue *q) { return q->done_bytes + (q->keep ? q->part : 0); }
static size_t ka_q_unsent(const ka_queue *q) { return q->data.len - ka_q_unsent_at(q); }

/* A whole message, or its unsent remainder after `already` bytes went
 * straight to the kernel (then it is the queue's only unsent message). */
static int ka_q_push(const ka_client *c, ka_queue *q, const unsigned char *p, size_t len, size_t already)
{
    size_t stored = q->keep ? len : len - already;
    int rc;
    if (stored > q->cap - q->data.len) return KA_EAGAIN;
    if ((rc = ka_ring_room(c, &q->lens, ka_varint_len(len))) != 0) return rc;
    if ((rc = ka_ring_room(c, &q->data, stored)) != 0) return rc;
    ka_varint_put(&q->lens, len);
    ka_ring_put(&q->data, p + (len - stored), stored);
    q->msgs++;
    return 0;
}

/* n more bytes went to the kernel: finished messages are kept for replay
 * (keep) or dropped. */
static size_t ka_q_sent(ka_queue *q, size_t n)
{
    size_t done = 0;
    while (n) {
        size_t len, vl = ka_varint_get(&q->lens, q->done_lens, &len), left = len - q->part;
        size_t step = n < left ? n : left;
        if (!q->keep) ka_ring_drop(&q->data, step);
        n -= step;
        q->part += (ka_len)step;
        if (q->part < len) return done;
        q->part = 0;
        done++;
        if (q->keep) {
            q->done_msgs++;
            q->done_bytes += (ka_len)len;
            q->done_lens += (ka_len)vl;
        } else {
            ka_ring_drop(&q->lens, vl);
            q->msgs--;
        }
    }
    return done;
}

/* The peer confirmed the k oldest messages handed over whole. */
static int ka_q_ack(ka_queue *q, size_t k)
{
    if (k > q->done_msgs) return KA_EINVAL;
    while (k--) {
        size_t len, vl = ka_varint_get(&q->lens, 0, &len);
        ka_ring_drop(&q->data, len);
        ka_ring_drop(&q->lens, vl);
        q->msgs--;
        q->done_msgs--;
        q->done_bytes -= (ka_len)len;
        q->done_lens -= (ka_len)vl;
    }
    return 0;
}

/* The connection ended. Kept messages, and the one being written, go
 * again whole next time; without keep, a message partly handed over
 * cannot resume on a new connection (it would corrupt the stream): it is
 * dropped, and how much of it never went out is returned. */
static size_t ka_q_rewind(ka_queue *q)
{
    size_t len, vl, lost;
    if (!q->msgs) return 0;                     /* nothing held, nothing to reset (or ka_no_queues) */
    if (q->keep || !q->part) {
        q->done_msgs = q->done_bytes = q->done_lens = q->part = 0;
        return 0;
    }
    vl = ka_varint_get(&q->lens, 0, &len);
    lost = len - q->part;
    ka_ring_drop(&q->data, lost);
    ka_ring_drop(&q->lens, vl);
    q->msgs--;
    q->part = 0;
    return lost;
}

static int ka_q_oversized(const ka_queue *q)
{
    return (!q->data.fixed && q->data.size > KA_RING_KEEP) || (!q->lens.fixed && q->lens.size > KA_RING_KEEP);
}

/* An empty queue still holding what it grew past KA_RING_KEEP for a burst. */
static int ka_q_spare(const ka_queue *q) { return !q->msgs && ka_q_oversized(q); }

/* A spare queue gives both its rings back, so the burst leaves nothing
 * behind; one that stayed small keeps them for a steady flow. Returns
 * whether anything went back. */
static int ka_q_trim(const ka_client *c, ka_queue *q)
{
    if (!ka_q_spare(q)) return 0;
    ka_ring_release(c, &q->data);
    ka_ring_release(c, &q->lens);
    return 1;
}

/* Drops everything; returns the bytes that never went out. */
static size_t ka_q_clear(const ka_client *c, ka_queue *q)
{
    size_t lost = ka_q_unsent(q);
    if (q->msgs) {                              /* else all of it is 0 already (or ka_no_queues) */
        q->data.len = q->data.head = q->lens.len = q->lens.head = 0;
        q->msgs = q->done_msgs = q->done_bytes = q->done_lens = q->part = 0;
    }
    ka_q_trim(c, q);
    return lost;
}

static int ka_has_queues(const ka_client *c) { return c->q != &ka_no_queues; }

static size_t ka_session_cap(const ka_config *k);
static void ka_queue_init(ka_queue *q, size_t cap, int keep);

static void ka_queues_init(ka_client *c)
{
    ka_queue_init(&c->q->hs, ka_session_cap(c->cfg), 0);
    ka_queue_init(&c->q->mq, c->cfg->send_buffer_size, c->cfg->replay_until_acked);
}

/* The queues' block, allocated now if the client has none: 0 or KA_ENOMEM. */
static int ka_own_queues(ka_client *c)
{
    ka_queues *qs;
    if (ka_has_queues(c)) return 0;
    if ((qs = (ka_queues *)ka_alloc(c, sizeof *qs)) == NULL) return KA_ENOMEM;
    memset(qs, 0, sizeof *qs);
    c->q = qs;
    ka_queues_init(c);
    return 0;
}

/* A queue's bound: the session queue's (see ka_session_cap) or send_buffer_size. */
static size_t ka_q_cap(const ka_client *c, int session)
{
    return session ? ka_session_cap(c->cfg) : c->cfg->send_buffer_size;
}

/* Gives back the queues' rings and block (heap mode); they must be empty. */
static void ka_queues_drop(ka_client *c)
{
    if (!ka_has_queues(c) || c->q->mq.data.fixed) return;
    ka_ring_release(c, &c->q->hs.data);
    ka_ring_release(c, &c->q->hs.lens);
    ka_ring_release(c, &c->q->mq.data);
    ka_ring_release(c, &c->q->mq.lens);
    ka_dealloc(c, c->q);
    c->q = (ka_queues *)&ka_no_queues;          /* NOLINT: never written, see ka_queues */
}

/* An emptied queue's burst memory goes back (a queue in use again is
 * trimmed when it next empties); when no ring is left, the queues' block
 * goes too. Only a real give-back counts for KA_TRIM_DELAY_MS. */
static void ka_trim(ka_client *c, unsigned long long now)
{
    const ka_queue *hs = &c->q->hs, *mq = &c->q->mq;
    int gave = ka_q_trim(c, &c->q->hs);
    gave |= ka_q_trim(c, &c->q->mq);
    c->q->trim_at = 0;
    if (gave) c->trimmed_at = (uint32_t)now;
    if (!hs->msgs && !mq->msgs && !hs->data.buf && !hs->lens.buf && !mq->data.buf && !mq->lens.buf) ka_queues_drop(c);
}

/* A queue emptied: its memory goes back now, or a while later if the last
 * give-back was recent (see KA_TRIM_DELAY_MS). A stopped client runs no
 * timer (ka_client_ack may empty its queue), so it gives back at once. */
static void ka_trim_later(ka_client *c)
{
    unsigned long long now;
    if (c->q->trim_at || !(ka_q_spare(&c->q->hs) || ka_q_spare(&c->q->mq))) return;
    now = ka_now_ms();
    /* 32 bits of milliseconds: a give-back 49.7 days ago may pass for a
     * recent one, which costs one KA_TRIM_DELAY_MS wait, nothing more. */
    if (c->state != KA_STATE_STOPPED && c->trimmed_at && (uint32_t)now - c->trimmed_at < KA_TRIM_DELAY_MS)
        c->q->trim_at = now + KA_TRIM_DELAY_MS;
    else ka_trim(c, now);
}

static void ka_trim_due(ka_client *c, unsigned long long now)
{
    if (c->q->trim_at && now >= c->q->trim_at) ka_trim(c, now);
}

/* A work block as new: an attempt's, holding no socket. */
static void ka_work_init(ka_client *c)
{
    unsigned i;
    memset(c->wk, 0, sizeof *c->wk);
    c->wk->ph.at.lookup_w.s = KA_INVALID_SOCKET;
    for (i = 0; i < KA_MAX_RACE; i++) c->wk->ph.at.race[i].s = KA_INVALID_SOCKET;
    c->wk_log = 0;
}

/* The work block (see ka_work), allocated if need be; NULL if the
 * allocator failed. */
static ka_work *ka_work_get(ka_client *c)
{
    if (c->wk) return c->wk;
    if ((c->wk = (ka_work *)ka_alloc(c, sizeof *c->wk)) != NULL) ka_work_init(c);
    return c->wk;
}

/* The work block while it serves an attempt: its sockets and deadlines.
 * NULL while there is none, or while it holds a write log instead. */
static ka_work *ka_attempt_work(const ka_client *c) { return c->wk_log ? NULL : c->wk; }

/* The race's sockets in flight. */
static int ka_race_size(const ka_client *c)
{
    const ka_work *w = ka_attempt_work(c);
    int i, n = 0;
    for (i = 0; w && i < KA_MAX_RACE; i++) n += w->ph.at.race[i].s != KA_INVALID_SOCKET;
    return n;
}

/* The work block is no longer needed: given back, or (no-heap mode, where
 * it is part of the client's block) emptied in place, so that the next
 * user finds it as a new one: an empty write log, no socket. Kept while
 * it still holds a socket. */
static void ka_work_drop(ka_client *c)
{
    const ka_work *w = ka_attempt_work(c);
    if (!c->wk || (w && w->ph.at.lookup_w.s != KA_INVALID_SOCKET) || ka_race_size(c)) return;
    if (!c->owned) { ka_work_init(c); return; }
    ka_dealloc(c, c->wk);
    c->wk = NULL;
    c->wk_log = 0;
}

/* ---- 6. transports ------------------------------------------------------ */

/* Plain TCP, through the same interface as TLS. Its session is the socket. */
static ka_socket ka_plain_socket(void *session) { return (ka_socket)(uintptr_t)session; }

static int ka_plain_open(void *ctx, ka_socket s, const char *host, void **session, int *err)
{
    (void)ctx; (void)host; (void)err;
    *session = (void *)(uintptr_t)s;   /* NOLINT(performance-no-int-to-ptr): the socket is the whole session */
    return 0;
}

static long ka_plain_io_result(long n, int *err)
{
    int e;
    if (n >= 0) return n;
    e = ka_sock_err();
    if (ka_would_block(e)) return KA_TP_WANT_READ;      /* the caller knows which way it waits */
    *err = e;
    return KA_TP_SOCKET;
}

static long ka_plain_read(void *session, void *buf, size_t len, int *err)
{
    long n;
    do {
        n = (long)recv(ka_plain_socket(session), (char *)buf, (ka_iolen)(len > INT_MAX ? INT_MAX : len), 0);
    } while (n < 0 && ka_sock_err() == KA_ERR_INTR);
    return ka_plain_io_result(n, err);
}

/* One send(): a short count means the kernel is full now, and asking again
 * would only hear EAGAIN. */
static long ka_plain_write(void *session, const void *buf, size_t len, int *err)
{
    long n;
    do {
        n = (long)send(ka_plain_socket(session), (const char *)buf, (ka_iolen)(len > INT_MAX ? INT_MAX : len), KA_SEND_FLAGS);
    } while (n < 0 && ka_sock_err() == KA_ERR_INTR);
    n = ka_plain_io_result(n, err);
    return n == KA_TP_WANT_READ ? KA_TP_WANT_WRITE : n;
}

static const ka_transport ka_plain = {
    NULL, ka_plain_open, NULL, ka_plain_read, ka_plain_write, NULL, NULL, NULL, NULL, "TCP"
};

/* What a failed transport call means for the connection. */
static ka_reason ka_tp_reason(long rc, int err, int connecting);

/* ---- 7. state machine --------------------------------------------------- */

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

static void ka_enter(ka_client *c, ka_state s)
{
    if (c->wk_log) ka_work_init(c);             /* the write log ends with its connection */
    c->state = (unsigned char)s;
    c->epoch++;
    if (s == KA_STATE_STOPPED) ka_trim_due(c, c->q->trim_at);     /* no timer runs from here on */
    if (s == KA_STATE_CONNECTED || s == KA_STATE_STOPPED) ka_work_drop(c);  /* a BACKOFF keeps it for the next attempt */
}

static ka_reason ka_classify(int err, int connecting)
{
    if (err == KA_ERR_CONNABORTED && err != KA_ERR_CONNRESET) return KA_REASON_ABORTED;
    if (err == KA_ERR_CONNRESET || err == KA_ERR_PIPE) return KA_REASON_PEER_RESET;
    if (err == KA_ERR_TIMEDOUT || err == KA_ERR_NETRESET || err == KA_ERR_LOCALABORT)
        return connecting ? KA_REASON_CONNECT_TIMEOUT : KA_REASON_TIMEOUT;
    if (err == KA_ERR_HOSTUNREACH || err == KA_ERR_NETUNREACH || err == KA_ERR_HOSTDOWN || err == KA_ERR_NETDOWN)
        return KA_REASON_UNREACHABLE;
    if (err == KA_ERR_REFUSED) return connecting ? KA_REASON_REFUSED : KA_REASON_PEER_RESET;  /* a refusal after the handshake is the peer's RST */
    return KA_REASON_ERROR;
}

/* Callback bracket: returns nonzero if the client is still where it was. */
static unsigned ka_cb_enter(ka_client *c) { c->depth++; return c->epoch; }
static int ka_cb_leave(ka_client *c, unsigned epoch) { c->depth--; return c->epoch == epoch; }

/* ---- 8. watched sockets ------------------------------------------------- */

/* Tells on_socket what s waits for now, if that changed. */
static void ka_tell(ka_client *c, ka_watch *w, int want)
{
    if (w->told == want || w->s == KA_INVALID_SOCKET) return;
    w->told = want;
    if (c->cfg->cb.on_socket) c->cfg->cb.on_socket(c, w->s, want, c->user);
}

/* Withdraws s (on_socket with want 0) before anything closes it. */
static void ka_unwatch(ka_client *c, ka_watch *w)
{
    ka_tell(c, w, 0);
    w->s = KA_INVALID_SOCKET;
}

static void ka_close_watched(ka_client *c, ka_watch *w)
{
    ka_socket s = w->s;
    ka_unwatch(c, w);
    if (s != KA_INVALID_SOCKET) ka_sock_close(s);
}

/* Something may be written now: the session queue, the backlog once the
 * session is ready, or the end of the write side when finishing. */
static int ka_has_output(const ka_client *c)
{
    if (c->wr_shut) return 0;
    if (ka_q_unsent(&c->q->hs) || (c->ready && ka_q_unsent(&c->q->mq))) return 1;
    return c->finishing && !ka_q_unsent(&c->q->mq);
}

/* Heartbeats go once the session is ready, when nothing else is waiting. */
static int ka_heartbeat_due(const ka_client *c)
{
    return c->cfg->heartbeat_interval_ms && c->ready && !c->finishing && !c->wr_shut &&
           !ka_q_unsent(&c->q->hs) && !ka_q_unsent(&c->q->mq);
}

/* What the connection waits for. Reading stops once the peer's FIN came
 * (an EOF stays readable for ever); a transport may need the other
 * direction to go on (TLS renegotiation). */
static int ka_conn_want(const ka_client *c)
{
    int want = 0;
    if (KA_CONN(c) == KA_INVALID_SOCKET) return 0;
    if (c->state == KA_STATE_CONNECTING) return c->phase == KA_PHASE_HANDSHAKE ? c->read_wants_write ? KA_WRITE : KA_READ : 0;
    if (c->state != KA_STATE_CONNECTED) return 0;
    if (!c->peer_fin || c->write_wants_read) want |= KA_READ;
    if ((ka_has_output(c) && !c->write_wants_read) || c->read_wants_write) want |= KA_WRITE;
    return want;
}

/* Announces new sockets and changed wants; run at the end of every public
 * call, so an event loop sees the client's sockets as they now are. */
static void ka_sync_watch(ka_client *c)
{
    unsigned i;
    ka_work *w = ka_attempt_work(c);
    if (w) {
        ka_tell(c, &w->ph.at.lookup_w, w->ph.at.lookup_w.s != KA_INVALID_SOCKET ? KA_READ : 0);
        for (i = 0; i < KA_MAX_RACE; i++) ka_tell(c, &w->ph.at.race[i], w->ph.at.race[i].s != KA_INVALID_SOCKET ? KA_WRITE : 0);
    }
    ka_tell(c, &c->conn, ka_conn_want(c));
}

/* ---- 9. attempts and connections ---------------------------------------- */

/* Keeps the most telling failure across a race's addresses: a timeout
 * (something swallows packets) beats an unreachable route beats a refusal
 * (the host is there, nothing listens) beats anything else. */
static int ka_fail_rank(ka_reason r)
{
    switch (r) {
    case KA_REASON_CONNECT_TIMEOUT: return 4;
    case KA_REASON_UNREACHABLE: return 3;
    case KA_REASON_REFUSED: return 2;
    case KA_REASON_NONE: return 0;
    default: return 1;
    }
}

static void ka_note_failure(ka_client *c, ka_reason why, int err)
{
    if (!ka_attempt_work(c)) return;            /* the allocator failed: see ka_attempt_failed */
    if (ka_fail_rank(why) < ka_fail_rank(c->wk->ph.at.a.fail_reason)) return;
    c->wk->ph.at.a.fail_reason = why;
    c->wk->ph.at.a.fail_err = err;
}

/* Whatever the attempt holds goes: the lookup (its thread finishes alone),
 * a resolve() hook's pending answer, every socket of the race. */
static void ka_end_attempt(ka_client *c)
{
    unsigned i;
#ifndef KA_NO_THREADS
    if (ka_attempt_work(c) && c->wk->ph.at.lookup_w.s != KA_INVALID_SOCKET) {
        ka_unwatch(c, &c->wk->ph.at.lookup_w);
        ka_lookup_abandon(ka_ext_of(c)->lookup);
    }
#endif
    if (c->hook_waiting) {
        c->hook_waiting = 0;
        if (c->cfg->resolve_cancel) c->cfg->resolve_cancel(c, c->user);
    }
    for (i = 0; ka_attempt_work(c) && i < KA_MAX_RACE; i++) ka_close_watched(c, &c->wk->ph.at.race[i]);
    c->phase = KA_PHASE_NONE;
}

/* RFC 8305 section 4: alternate the families, starting with the family of
 * the last good connection (else the resolver's first choice, which
 * getaddrinfo has already ordered by RFC 6724), keeping each family's own
 * order. Only the family asked for, and only the family of bind_address. */
static void ka_order_addresses(ka_client *c)
{
    const ka_ep *e = ka_cur_ep(c);
    ka_addr lit;
    const ka_addr *addr = ka_ep_addrs(c, e, &lit);
    int want = ka_addr_len(&ka_prof(c)->bind_addr) ? ka_prof(c)->bind_addr.u.sa.sa_family : ka_family_of(c->cfg->family);
    int fam = c->last_family ? c->last_family : e->naddr ? addr[0].u.sa.sa_family : AF_INET6;
    unsigned pos[2] = { 0, 0 };                 /* where each family's next address is: [0] IPv6, [1] IPv4 */
    int dry = 0;                                /* families in a row with nothing left */
    c->wk->ph.at.a.norder = c->wk->ph.at.a.next_addr = 0;
    while (dry < 2) {
        int k = fam == AF_INET;
        unsigned i = pos[k];
        while (i < e->naddr && addr[i].u.sa.sa_family != fam) i++;
        pos[k] = i < e->naddr ? i + 1 : e->naddr;
        if (i < e->naddr) {
            dry = 0;
            if (want == AF_UNSPEC || want == fam) c->wk->ph.at.a.order[c->wk->ph.at.a.norder++] = (unsigned char)i;
        } else {
            dry++;
        }
        fam = fam == AF_INET ? AF_INET6 : AF_INET;
    }
}

/* Puts the bound interface and address on s; 0, or an error number. */
static int ka_bind_source(ka_client *c, ka_socket s, int family)
{
    if (c->cfg->bind_interface) {
        int rc = ka_bind_interface(s, family, c->cfg->bind_interface);
        if (rc == -2) {
            if (ka_first_time(c, KA_SAID_NO_IFACE)) ka_log(c, KA_LOG_WARN, "bind_interface is not supported on this platform: ignored");
        } else if (rc != 0) {
            return ka_sock_err();
        }
    }
    if (ka_addr_len(&ka_prof(c)->bind_addr) && bind(s, &ka_prof(c)->bind_addr.u.sa, ka_addr_len(&ka_prof(c)->bind_addr)) != 0)
        return ka_sock_err();
    return 0;
}

/* Opens, configures and connects one socket to address idx of the current
 * endpoint. The socket, in flight (or connected at once: writability
 * tells), or KA_INVALID_SOCKET with the failure noted. */
static ka_socket ka_dial(ka_client *c, const ka_addr *a)
{
    ka_socket s;
    int err;
    unsigned epoch = c->epoch;
    s = ka_socket_open(a->u.sa.sa_family, SOCK_STREAM, IPPROTO_TCP);
    if (s == KA_INVALID_SOCKET) { ka_note_failure(c, KA_REASON_ERROR, ka_sock_err()); return s; }
    ka_set_keepalive(c, s);
    if (c->epoch != epoch) { ka_sock_close(s); return KA_INVALID_SOCKET; }    /* on_log moved us */
    err = ka_bind_source(c, s, a->u.sa.sa_family);
    if (!err && c->cfg->cb.on_configure) err = c->cfg->cb.on_configure(c, s, c->user);
    if (err) {
        ka_note_failure(c, KA_REASON_ERROR, err);
        ka_sock_close(s);
        return KA_INVALID_SOCKET;
    }
    err = connect(s, &a->u.sa, ka_addr_len(a)) == 0 ? 0 : ka_sock_err();
    if (err == 0 || ka_would_block(err) || err == KA_ERR_INTR) return s;     /* an interrupted connect goes on too */
    ka_note_failure(c, ka_classify(err, 1), err);
    ka_sock_close(s);
    return KA_INVALID_SOCKET;
}

static void ka_attempt_failed(ka_client *c);

/* Starts the next address of the race, unless the race is full: addresses
 * that fail at once are skipped at once. When nothing is in flight and
 * nothing is left, the attempt has failed. */
static void ka_race_next(ka_client *c)
{
    unsigned epoch = c->epoch;
    while (c->wk->ph.at.a.next_addr < c->wk->ph.at.a.norder) {
        unsigned slot, idx = c->wk->ph.at.a.order[c->wk->ph.at.a.next_addr];
        ka_socket s;
        ka_addr lit;
        for (slot = 0; slot < KA_MAX_RACE && c->wk->ph.at.race[slot].s != KA_INVALID_SOCKET; slot++) { }
        if (slot == KA_MAX_RACE) return;        /* full: the next one waits for a slot */
        c->wk->ph.at.a.next_addr++;
        s = ka_dial(c, &ka_ep_addrs(c, ka_cur_ep(c), &lit)[idx]);
        if (c->epoch != epoch) { if (s != KA_INVALID_SOCKET) ka_sock_close(s); return; }
        if (s == KA_INVALID_SOCKET) continue;
        c->wk->ph.at.race[slot].s = s;
        c->wk->ph.at.race[slot].told = 0;
        c->wk->ph.at.a.race_addr[slot] = (unsigned char)idx;
        c->wk->ph.at.a.next_try_at = ka_now_ms() + c->cfg->connection_attempt_delay_ms;
        return;
    }
    if (ka_race_size(c) == 0) ka_attempt_failed(c);
}

static void ka_race_start(ka_client *c)
{
    ka_order_addresses(c);
    if (c->wk->ph.at.a.norder == 0) {              /* no address in the family asked for */
        ka_note_failure(c, KA_REASON_RESOLVE, EAI_FAMILY);
        ka_attempt_failed(c);
        return;
    }
    c->phase = KA_PHASE_RACE;
    c->wk->ph.at.a.race_deadline = ka_now_ms() + c->cfg->connect_timeout_ms;
    ka_log(c, KA_LOG_DEBUG, "connecting to %s port %s: %u address%s", ka_ep_host(c, ka_cur_ep(c)), ka_ep_port(c, ka_cur_ep(c)),
           c->wk->ph.at.a.norder, c->wk->ph.at.a.norder == 1 ? "" : "es");
    ka_race_next(c);
}

/* A lookup ended: race its addresses; or, if it failed for a reason the
 * resolver may get over and an earlier lookup of this name worked, race
 * those (a device whose DNS is down but whose server is up stays
 * connected). A name that no longer exists is not papered over. */
static void ka_resolved(ka_client *c, int err)
{
    ka_ep *e = ka_cur_ep(c);
    unsigned epoch = c->epoch;
    if (err && e->naddr && ka_resolve_transient(err)) {
        ka_log(c, KA_LOG_WARN, "resolving %s failed (%s): using its last good addresses", ka_ep_host(c, e), ka_sys_strerror(KA_REASON_RESOLVE, err));
        if (c->epoch != epoch) return;
        err = 0;
    }
    if (err) {
        if (!ka_resolve_transient(err)) e->naddr = 0;
        ka_note_failure(c, KA_REASON_RESOLVE, err);
        ka_attempt_failed(c);
        return;
    }
    ka_race_start(c);
}

#ifndef KA_NO_THREADS
/* The lookup thread's answer, when its signal fires. */
static void ka_lookup_ready(ka_client *c)
{
    struct addrinfo *res = NULL;
    int err = 0;
    if (!ka_lookup_answer(ka_ext_of(c)->lookup, &res, &err)) return;
    ka_unwatch(c, &c->wk->ph.at.lookup_w);
    if (!err) ka_ep_store(c, ka_cur_ep(c), res);
    if (res) freeaddrinfo(res);
    if (!err && ka_cur_ep(c)->naddr == 0) err = EAI_NONAME;
    ka_resolved(c, err);
}
#endif

/* Starts the name lookup for the current endpoint: the application's
 * resolve() hook, else the helper thread, else (-DKA_NO_THREADS) a
 * blocking getaddrinfo(). */
static void ka_resolve(ka_client *c)
{
    ka_ep *e = ka_cur_ep(c);
    int err;
    c->phase = KA_PHASE_RESOLVE;
    c->wk->ph.at.a.resolve_deadline = ka_now_ms() + c->cfg->resolve_timeout_ms;
    if (c->cfg->resolve) {
        unsigned epoch;
        c->hook_waiting = 1;
        epoch = ka_cb_enter(c);                 /* it may answer at once, from inside */
        err = c->cfg->resolve(c, ka_ep_host(c, e), ka_ep_port(c, e), ka_family_of(c->cfg->family), c->user);
        if (!ka_cb_leave(c, epoch) || !c->hook_waiting) return;
        if (err) { c->hook_waiting = 0; ka_resolved(c, err); }
        return;
    }
#ifdef KA_NO_THREADS
    {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = ka_family_of(c->cfg->family);
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        err = getaddrinfo(ka_ep_host(c, e), ka_ep_port(c, e), &hints, &res);
        if (!err) ka_ep_store(c, e, res);
        if (res) freeaddrinfo(res);
        if (!err && e->naddr == 0) err = EAI_NONAME;
        ka_resolved(c, err);
    }
#else
    ka_ext *x = ka_ext_of(c);                   /* a server given by name has one: see ka_layout */
    if (!x->lookup && (x->lookup = ka_lookup_new()) == NULL) { ka_resolved(c, EAI_MEMORY); return; }
    err = ka_lookup_start(x->lookup, ka_ep_host(c, e), ka_ep_port(c, e), ka_family_of(c->cfg->family));
    if (err) { ka_resolved(c, err); return; }
    c->wk->ph.at.lookup_w.s = x->lookup->rd;
    c->wk->ph.at.lookup_w.told = 0;
#endif
}

/* Connected: the lookup's mailbox (its signal's two sockets, 88 bytes) goes
 * until the next lookup, unless a thread of it still runs (one the client
 * gave up on): it is kept then, so that a lookup of the same name joins
 * that thread instead of starting another. */
static void ka_lookup_put_away(ka_client *c)
{
#ifndef KA_NO_THREADS
    ka_ext *x = ka_ext_of(c);
    if (!x || !x->lookup || !ka_lookup_idle(x->lookup)) return;
    ka_lookup_release(x->lookup);
    x->lookup = NULL;
#else
    (void)c;
#endif
}

static void ka_begin_attempt(ka_client *c)
{
    ka_enter(c, KA_STATE_CONNECTING);
    c->n_attempts++;
    c->cur_ep = c->next_ep;
    if (!ka_work_get(c)) { ka_attempt_failed(c); return; }
    memset(&c->wk->ph.at.a, 0, sizeof c->wk->ph.at.a);    /* the last attempt's */
    c->wk->ph.at.a.fail_reason = KA_REASON_NONE;
    if (ka_cur_ep(c)->numeric) ka_race_start(c);
    else ka_resolve(c);
}

/* For the calls that promise no callback but on_log and the hooks that
 * start an attempt: an attempt that fails at once is reported (on_retry,
 * on_give_up) by the next poll instead. */
static void ka_begin_quietly(ka_client *c)
{
    c->quiet = 1;
    ka_begin_attempt(c);
    c->quiet = 0;
}

/* The delay before the next attempt: what ka_client_retry_in asked for,
 * else the backoff rule, which the application's next_delay may replace
 * (capped by backoff_max_ms all the same). */
static unsigned ka_next_delay(ka_client *c, ka_retry_info *ri)
{
    unsigned d;
    if (c->has_override) {
        c->has_override = 0;
        return c->override_ms;
    }
    d = ka_backoff_delay(c->cfg, ri->attempt, &c->rng);
    if (!c->cfg->next_delay) return d;
    ri->delay_ms = d;
    c->depth++;                         /* a free from inside waits for the end of the call */
    d = c->cfg->next_delay(c, ri, d, c->user);
    c->depth--;
    return d < c->cfg->backoff_max_ms ? d : c->cfg->backoff_max_ms;
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
    if (c->cfg->max_attempts && c->fails >= c->cfg->max_attempts) {
        ri.attempt = c->fails;
        ri.delay_ms = 0;
        ka_enter(c, KA_STATE_STOPPED);
        if (c->cfg->cb.on_give_up) {
            epoch = ka_cb_enter(c);
            c->cfg->cb.on_give_up(c, &ri, c->user);
            ka_cb_leave(c, epoch);
        }
        return;
    }
    ri.attempt = ++c->retries;
    ri.delay_ms = ka_next_delay(c, &ri);
    ka_enter(c, KA_STATE_BACKOFF);
    c->when.retry_at = ka_now_ms() + ri.delay_ms;
    if (c->cfg->cb.on_retry) {
        epoch = ka_cb_enter(c);
        c->cfg->cb.on_retry(c, &ri, c->user);
        ka_cb_leave(c, epoch);
    }
}

static void ka_attempt_failed(ka_client *c)
{
    /* No work block: the allocator failed before the attempt could begin. */
    const ka_work *w = ka_attempt_work(c);
    ka_reason why = !w ? KA_REASON_ERROR : w->ph.at.a.fail_reason ? w->ph.at.a.fail_reason : KA_REASON_CONNECT_TIMEOUT;
    int err = w ? w->ph.at.a.fail_err : KA_E(WSAENOBUFS, ENOMEM);
    unsigned epoch;
    ka_end_attempt(c);
    if (c->quiet) {
        c->phase = KA_PHASE_FAILED;
        return;
    }
    c->next_ep = (unsigned char)((c->cur_ep + 1) % c->nep);    /* the next attempt goes to the next server */
    epoch = c->epoch;
    ka_log(c, KA_LOG_DEBUG, "connect failed: %s (%s), %s port %s", ka_reason_str(why), ka_sys_strerror(why, err),
           ka_ep_host(c, ka_cur_ep(c)), ka_ep_port(c, ka_cur_ep(c)));
    if (c->epoch == epoch) ka_schedule_retry(c, why, err, 1);
}

/* Race slot won: it becomes the connection, the others are closed. */
static void ka_arm_link_check(ka_client *c, unsigned long long now);

/* Hands up to n bytes to the transport: how many it took, or a KA_TP_
 * code. Each write counts as activity for the heartbeat and opens a look at
 * the busy path. */
static long ka_write(ka_client *c, const unsigned char *p, size_t n, int *err)
{
    long w = c->cfg->transport->write(ka_session(c), p, n, err);
    if (w > 0) {
        unsigned long long now = ka_now_ms();
        c->n_bytes_sent += (unsigned long long)w;
        c->last_send = (uint32_t)now;
        ka_arm_link_check(c, now);
    }
    return w;
}

/* Hands the queue's unsent bytes to the transport until it would block.
 * 0, or KA_TP_SOCKET / KA_TP_FAILED with *err. */
static long ka_q_write(ka_client *c, ka_queue *q, int *err)
{
    while (ka_q_unsent(q)) {
        size_t got;
        const unsigned char *p = ka_ring_span(&q->data, ka_q_unsent_at(q), ka_q_unsent(q), &got);
        long n = ka_write(c, p, got, err);
        if (n == KA_TP_WANT_READ) c->write_wants_read = 1;
        if (n == KA_TP_WANT_READ || n == KA_TP_WANT_WRITE) return 0;
        if (n < 0) return n;
        c->n_msgs_sent += ka_q_sent(q, (size_t)n);
        if ((size_t)n < got) return 0;          /* the kernel is full for now */
    }
    if (!q->msgs) ka_trim_later(c);
    return 0;
}

/* Ends this side of the connection once everything is out: the
 * transport's own end (TLS close_notify), then FIN. */
static long ka_shut_write(ka_client *c, int *err)
{
    long rc = c->cfg->transport->shutdown ? c->cfg->transport->shutdown(ka_session(c), err) : 0;
    if (rc == KA_TP_WANT_READ) c->write_wants_read = 1;
    if (rc == KA_TP_WANT_READ || rc == KA_TP_WANT_WRITE) return 0;
    if (rc < 0) return rc;
    c->wr_shut = 1;
    shutdown(KA_CONN(c), KA_SHUT_WR);
    return 0;
}

/* Everything that may go now goes: the session queue first, then, once
 * the session is ready, the backlog; finishing, the end of the write side.
 * Never runs callbacks, so ka_client_send may call it. 0, or a KA_TP_
 * failure with *err. */
static long ka_flush(ka_client *c, int *err)
{
    long rc;
    c->write_wants_read = 0;
    if (c->wr_shut) return 0;
    if ((rc = ka_q_write(c, &c->q->hs, err)) != 0 || ka_q_unsent(&c->q->hs) || c->write_wants_read) return rc;
    if (c->ready && (rc = ka_q_write(c, &c->q->mq, err)) != 0) return rc;
    if (c->finishing && !ka_q_unsent(&c->q->mq) && !c->write_wants_read) return ka_shut_write(c, err);
    return 0;
}

/* A write failed where the client cannot act (inside ka_client_send): the
 * next step reports it. */
static void ka_note_broken(ka_client *c, long rc, int err)
{
    if (c->broken) return;
    c->broken = (unsigned char)ka_tp_reason(rc, err, 0);
    c->broken_err = err;
    if (rc == KA_TP_FAILED) ka_tp_failed(c, err);
}

/* Queues a message on q, or writes it straight from the caller's buffer
 * when nothing is ahead of it: the kernel takes what it can and only the
 * rest is copied (with replay, all of it is kept). */
static int ka_enqueue(ka_client *c, int session, const void *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    ka_queue *q = session ? &c->q->hs : &c->q->mq;
    long n = 0;
    int keep = !session && c->cfg->replay_until_acked;
    int err = 0, direct = c->state == KA_STATE_CONNECTED && !c->broken && !c->wr_shut && !c->write_wants_read &&
                          !ka_q_unsent(&c->q->hs) && (session || (c->ready && !ka_q_unsent(&c->q->mq)));
    if (len > ka_q_cap(c, session) - q->data.len) return KA_EAGAIN;
    if (direct) {
        n = ka_write(c, p, len, &err);
        if (n == KA_TP_WANT_READ) c->write_wants_read = 1;
        if (n < 0 && n != KA_TP_WANT_READ && n != KA_TP_WANT_WRITE) ka_note_broken(c, n, err);
        if (n < 0) n = 0;
        if ((size_t)n == len && !keep) {
            c->n_msgs_sent++;
            return 0;
        }
    }
    if (ka_own_queues(c) == 0) q = session ? &c->q->hs : &c->q->mq;
    else q = NULL;
    if (!q || ka_q_push(c, q, p, len, (size_t)n) != 0) {
        if (!n) return KA_ENOMEM;               /* room was checked: only the allocator can fail */
        ka_note_broken(c, KA_TP_SOCKET, KA_E(WSAENOBUFS, ENOMEM));      /* half a message is out: the stream cannot go on */
        return 0;
    }
    if (n && q->keep) c->n_msgs_sent += ka_q_sent(q, (size_t)n);
    else if (n) q->part = (ka_len)n;            /* the only unsent message; those bytes were never stored */
    if (c->q->hs.data.len + c->q->mq.data.len > c->high_water) c->high_water = (uint32_t)(c->q->hs.data.len + c->q->mq.data.len);
    return 0;
}

/* The session is up (after the transport's handshake): the client is
 * CONNECTED. What on_connect sends goes first; without hold_until_ready the
 * backlog follows as soon as on_connect returns. */
static void ka_connected(ka_client *c)
{
    unsigned epoch;
    long rc;
    int err = 0;
    ka_end_attempt(c);
    ka_enter(c, KA_STATE_CONNECTED);
    ka_lookup_put_away(c);
    c->wr_shut = c->peer_fin = c->read_more = 0;
    c->ready = 0;
    c->when.check_at = 0;
    c->connected_at = ka_now_ms();
    c->last_send = c->last_recv = (uint32_t)c->connected_at;
    c->degraded = c->probes_capped = 0;
    ka_set_busy_deadline(c);
    if (c->state != KA_STATE_CONNECTED) return;     /* on_log moved us */
    if (c->cfg->cb.on_connect) {
        epoch = ka_cb_enter(c);
        c->cfg->cb.on_connect(c, c->user);
        if (!ka_cb_leave(c, epoch)) return;
    }
    if (!c->cfg->hold_until_ready) c->ready = 1;
    if ((rc = ka_flush(c, &err)) != 0) ka_note_broken(c, rc, err);
    /* The server's first bytes may have come with the end of the handshake:
     * already decrypted, they will not make the socket readable again. */
    if (c->cfg->transport->pending && ka_session(c) && c->cfg->transport->pending(ka_session(c))) c->read_more = 1;
}

static void ka_handshake_step(ka_client *c);

/* Race slot won: its socket becomes the connection (keeping what on_socket
 * was told), the others are closed, and the transport's session starts. */
static void ka_session_start(ka_client *c, unsigned slot)
{
    int err = 0;
    void *session = NULL;
    ka_addr lit;
    c->conn = c->wk->ph.at.race[slot];
    c->wk->ph.at.race[slot].s = KA_INVALID_SOCKET;
    c->wk->ph.at.race[slot].told = 0;
    c->last_family = (unsigned char)ka_ep_addrs(c, ka_cur_ep(c), &lit)[c->wk->ph.at.a.race_addr[slot]].u.sa.sa_family;
    ka_end_attempt(c);
    c->read_wants_write = c->write_wants_read = 0;
    if (c->cfg->transport->open(c->cfg->transport->ctx, KA_CONN(c), ka_ep_host(c, ka_cur_ep(c)), &session, &err) != 0) {
        ka_tp_failed(c, err);
        ka_close_watched(c, &c->conn);
        ka_note_failure(c, KA_REASON_TLS, err);
        ka_attempt_failed(c);
        return;
    }
    ka_set_session(c, session);
    if (!c->cfg->transport->handshake) { ka_connected(c); return; }
    c->phase = KA_PHASE_HANDSHAKE;              /* still CONNECTING: on_connect waits for the session */
    ka_handshake_step(c);
}


/* The transport's session on the connection ends, then the socket. */
static void ka_close_conn(ka_client *c, int abortive)
{
    ka_socket s = KA_CONN(c);
    if (ka_session(c) && c->cfg->transport->close) c->cfg->transport->close(ka_session(c));
    ka_set_session(c, NULL);
    ka_unwatch(c, &c->conn);
    if (s == KA_INVALID_SOCKET) return;
    if (abortive) ka_sock_abort(s);
    else ka_sock_close(s);
}

/* Advances the handshake; up: CONNECTED, failed: a failed attempt. */
static void ka_handshake_step(ka_client *c)
{
    int err = 0;
    int rc = c->cfg->transport->handshake(ka_session(c), &err);
    c->read_wants_write = rc == KA_TP_WANT_WRITE;
    if (rc == KA_TP_WANT_READ || rc == KA_TP_WANT_WRITE) return;
    if (rc == 0) { ka_connected(c); return; }
    if (rc == KA_TP_FAILED) ka_tp_failed(c, err);
    ka_close_conn(c, 0);
    ka_note_failure(c, ka_tp_reason(rc, err, 1), err);
    ka_attempt_failed(c);
}

/* An established connection ended. The session queue dies with it; the
 * backlog stays, and with replay_until_acked what was not confirmed goes
 * again. */
static void ka_lost(ka_client *c, ka_reason why, int err, int retry)
{
    ka_disconnect_info di;
    unsigned epoch;
    unsigned long long up = ka_now_ms() - c->connected_at;
    ka_close_conn(c, 0);
    di.reason = why;
    di.sys_error = err;
    di.connected_ms = up > ULONG_MAX ? ULONG_MAX : (unsigned long)up;    /* 32-bit long: 49 days */
    di.unsent_bytes = ka_q_clear(c, &c->q->hs) + ka_q_rewind(&c->q->mq);
    c->broken = (unsigned char)KA_REASON_NONE;
    c->ready = 0;
    if (c->finishing && !c->q->mq.msgs) retry = 0;  /* nothing left to deliver: done */
    /* After a good run the next outage starts again from the first server;
     * a connection that died young counts as a failed try of this one. */
    c->next_ep = (unsigned char)(up >= c->cfg->backoff_reset_ms ? 0 : (c->cur_ep + 1) % c->nep);
    ka_enter(c, retry ? KA_STATE_BACKOFF : KA_STATE_STOPPED);
    c->when.retry_at = 0;                       /* set by ka_schedule_retry, after on_disconnect */
    c->n_disc[ka_disc_slot(why) >= 0 ? ka_disc_slot(why) : ka_disc_slot(KA_REASON_ERROR)]++;
    c->n_dropped += di.unsent_bytes;
    c->up_ms_total += up;
    if (c->cfg->cb.on_disconnect) {
        epoch = ka_cb_enter(c);
        c->cfg->cb.on_disconnect(c, &di, c->user);
        if (!ka_cb_leave(c, epoch)) return;
    }
    /* A connection that died young is a failed attempt: a server that
     * accepts and closes at once must not pull us into a tight loop. */
    if (retry) ka_schedule_retry(c, why, err, up < c->cfg->backoff_reset_ms);
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

#define KA_SELF_CONNECT (-1)    /* not an error number on any platform */

/* The error the kernel holds for a socket (and clears): 0 if none. */
static int ka_pending_error(ka_socket s)
{
    int err = 0;
    ka_socklen len = sizeof err;
    return getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &len) == 0 ? err : 0;
}

/* 0 connected, 1 still connecting, KA_SELF_CONNECT, else the error that
 * failed it. A peer
 * address proves the connect finished (a caller may report readiness
 * spuriously, and SO_ERROR is also 0 while the connect is in flight);
 * without one, SO_ERROR tells a failure from a connect still under way. */
static int ka_connect_result(ka_client *c, ka_socket s)
{
    struct sockaddr_storage peer, self;
    ka_socklen plen = sizeof peer, slen = sizeof self, elen = sizeof(int);
    int err = 0;
    if (getpeername(s, (struct sockaddr *)&peer, &plen) == 0) {
        /* Dialling a local port in the ephemeral range with nothing
         * listening can connect the socket to itself (TCP simultaneous
         * open): it would read its own bytes back and hold the port the
         * real server needs. Nothing listens there: a refusal. */
        if (getsockname(s, (struct sockaddr *)&self, &slen) != 0 || !ka_same_endpoint(&peer, &self)) return 0;
        ka_log(c, KA_LOG_INFO, "connected to itself (local address = peer address, nothing listens there): treated as refused");
        return KA_SELF_CONNECT;
    }
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &elen) != 0) err = ka_sock_err();
    return err == 0 || err == KA_ERR_INPROGRESS || err == KA_ERR_ALREADY ? 1 : err;
}

/* An attempt of the race finished one way or the other: the first to
 * connect wins; a failure starts the next address at once. */
static void ka_check_attempt(ka_client *c, unsigned slot)
{
    unsigned epoch = c->epoch;
    int rc = ka_connect_result(c, c->wk->ph.at.race[slot].s);
    if (c->epoch != epoch || rc == 1) return;   /* on_log moved us, or still connecting */
    if (rc == 0) { ka_session_start(c, slot); return; }
    if (rc == KA_SELF_CONNECT) {
        /* RST, not FIN: a FIN would leave TIME_WAIT on the port, and the
         * real server could not bind it for a minute. */
        ka_socket s = c->wk->ph.at.race[slot].s;
        ka_unwatch(c, &c->wk->ph.at.race[slot]);
        ka_sock_abort(s);
        rc = KA_ERR_REFUSED;
    }
    ka_note_failure(c, ka_classify(rc, 1), rc);
    ka_close_watched(c, &c->wk->ph.at.race[slot]);
    ka_race_next(c);
}

/* Readiness of socket s while connecting: the lookup's signal, one of
 * the race's attempts, or the winner's handshake. */
static void ka_connecting_ready(ka_client *c, ka_socket s)
{
    unsigned i;
    if (c->phase == KA_PHASE_HANDSHAKE) {
        if (s == KA_CONN(c)) ka_handshake_step(c);
        return;
    }
    if (!ka_attempt_work(c)) return;            /* the allocator failed (see ka_attempt_failed), or connected */
#ifndef KA_NO_THREADS
    if (s == c->wk->ph.at.lookup_w.s) { ka_lookup_ready(c); return; }
#endif
    for (i = 0; i < KA_MAX_RACE; i++)
        if (c->wk->ph.at.race[i].s == s) { ka_check_attempt(c, i); return; }
}

/* The attempt's timers: the lookup's bound, the race's bound, the next
 * address's turn. */
static void ka_connecting_timers(ka_client *c, unsigned long long now)
{
    unsigned epoch = c->epoch;
    if (c->phase == KA_PHASE_FAILED) {
        ka_attempt_failed(c);
        return;
    }
    if (c->phase == KA_PHASE_RESOLVE && now >= c->wk->ph.at.a.resolve_deadline) {
        ka_end_attempt(c);                      /* the lookup finishes alone */
        ka_log(c, KA_LOG_INFO, "resolving %s: no answer in %u ms", ka_ep_host(c, ka_cur_ep(c)), c->cfg->resolve_timeout_ms);
        if (c->epoch == epoch) ka_resolved(c, EAI_AGAIN);
        return;
    }
    if (c->phase != KA_PHASE_RACE && c->phase != KA_PHASE_HANDSHAKE) return;
    if (now >= c->wk->ph.at.a.race_deadline) {    /* the TCP race and the handshake share the bound */
        if (c->phase == KA_PHASE_HANDSHAKE) ka_close_conn(c, 0);
        ka_note_failure(c, KA_REASON_CONNECT_TIMEOUT, 0);
        ka_attempt_failed(c);
        return;
    }
    if (now >= c->wk->ph.at.a.next_try_at && c->wk->ph.at.a.next_addr < c->wk->ph.at.a.norder) ka_race_next(c);
}

/* How often a connection whose peer has closed its side is looked at (see
 * ka_look_after_fin): every keepalive interval, but at least every second. */
static unsigned ka_fin_look_ms(const ka_config *k)
{
    return k->keepalive_interval_ms < 1000 ? k->keepalive_interval_ms : 1000;
}

/* The peer shut down its side. Without keep_writing_after_fin that ends
 * the connection; with it, the client stops reading, says so, and keeps
 * sending until its own side is finished too. */
static void ka_peer_closed(ka_client *c)
{
    unsigned epoch;
    if (!c->cfg->keep_writing_after_fin || c->wr_shut) { ka_lost(c, KA_REASON_PEER_CLOSED, 0, 1); return; }
    if (c->peer_fin) return;
    c->peer_fin = 1;
    if (!c->when.check_at) c->when.check_at = ka_now_ms() + ka_fin_look_ms(c->cfg);
    ka_log(c, KA_LOG_INFO, "the peer closed its side: still sending");
    if (c->cfg->cb.on_eof && c->state == KA_STATE_CONNECTED) {
        epoch = ka_cb_enter(c);
        c->cfg->cb.on_eof(c, c->user);
        ka_cb_leave(c, epoch);
    }
}

/* Reads until the transport has nothing more, but at most 16 buffers per
 * call so a peer that floods us cannot starve the timers; stopping at the
 * bound sets read_more, which makes ka_client_timeout_ms 0 and the next
 * call read on, so an edge-triggered loop (EPOLLET) never strands data.
 * The buffer is on the stack (up to KA_RECV_STACK): an idle client holds
 * none. */
static void ka_read(ka_client *c)
{
    unsigned char stack_buf[KA_RECV_STACK > 0 ? KA_RECV_STACK : 1];
    unsigned char *buf = c->has_ext && ka_ext_of(c)->rbuf_at ? (unsigned char *)c + ka_ext_of(c)->rbuf_at : stack_buf;
    int rounds, err = 0;
    c->read_more = 0;
    c->read_wants_write = 0;
    for (rounds = 0; rounds < 16; rounds++) {
        long n = c->cfg->transport->read(ka_session(c), buf, c->cfg->recv_buffer_size, &err);
        if (n > 0) {
            c->last_recv = (uint32_t)ka_now_ms();
            c->n_bytes_recv += (unsigned long long)n;
            c->n_reads++;
            if (c->cfg->cb.on_data) {
                unsigned epoch = ka_cb_enter(c);
                c->cfg->cb.on_data(c, buf, (size_t)n, c->user);
                if (!ka_cb_leave(c, epoch)) return;
            }
            /* A short plain read emptied the socket: no recv() just to
             * hear EAGAIN. A TLS record is short by nature: read on. */
            if ((size_t)n < c->cfg->recv_buffer_size && c->cfg->transport == &ka_plain) return;
            continue;
        }
        if (n == 0) { ka_peer_closed(c); return; }
        if (n == KA_TP_WANT_WRITE) c->read_wants_write = 1;
        if (n == KA_TP_WANT_READ || n == KA_TP_WANT_WRITE) return;
        if (n == KA_TP_FAILED) ka_tp_failed(c, err);
        ka_lost(c, ka_tp_reason(n, err, 0), err, 1);
        return;
    }
    c->read_more = 1;
}

/* The library's own verdict that a live-looking socket is dead: abort it
 * (RST) rather than leave the kernel retransmitting, then report. */
static void ka_declare_dead(ka_client *c, ka_reason why, int err)
{
    ka_close_conn(c, 1);
    ka_lost(c, why, err, 1);
}

static ka_reason ka_tp_reason(long rc, int err, int connecting)
{
    return rc == KA_TP_FAILED ? KA_REASON_TLS : ka_classify(err, connecting);
}

/* How often a connection with data outstanding is looked at while an
 * application listens for on_health: retransmissions begin within one
 * RTO, and the warning should not wait for an eighth of the deadline. */
#define KA_HEALTH_LOOK 250

/* How long sent data may wait for its acknowledgement before on_health
 * calls the link degraded. With the busy deadline off and no threshold
 * set there is no quarter to take: waiting alone never degrades it (the
 * retransmission and closed-window causes still do). */
static unsigned ka_health_threshold(const ka_config *k)
{
    unsigned busy = ka_busy_deadline_ms(k);
    if (k->health_threshold_ms) return k->health_threshold_ms;
    return busy ? busy / 4 : UINT_MAX;
}

/* The first look at a connection that has just sent from idle: an eighth
 * of the busy deadline on, or sooner for the stall deadline or on_health. */
static void ka_arm_link_check(ka_client *c, unsigned long long now)
{
    unsigned busy = ka_busy_deadline_ms(c->cfg), first = busy / 8;
    if (c->view <= 0 || c->when.check_at) return;
    if (c->cfg->stall_timeout_ms && (!first || c->cfg->stall_timeout_ms < first)) first = c->cfg->stall_timeout_ms;
    if (c->cfg->cb.on_health && (!first || first > KA_HEALTH_LOOK)) first = KA_HEALTH_LOOK;
    if (first) c->when.check_at = now + (first < 10 ? 10 : first);
}

/* Tells on_health when the link turns bad or good again. 0, or nonzero
 * when the callback moved the client. */
static int ka_health_report(ka_client *c, const ka_kview *v, unsigned cause, unsigned long unacked_ms, unsigned long left_ms)
{
    ka_health h;
    unsigned epoch;
    if (!c->cfg->cb.on_health || (cause != 0) == c->degraded) return 0;
    c->degraded = cause != 0;
    h.degraded = c->degraded;
    h.cause = cause;
    h.unacked_ms = unacked_ms;
    h.rtt_us = v->rtt_us;
    h.retransmits = v->retransmits;
    h.deadline_ms = left_ms;
    epoch = ka_cb_enter(c);
    c->cfg->cb.on_health(c, &h, c->user);
    return !ka_cb_leave(c, epoch);
}

/* "By time at, written bytes had been handed to the kernel": one sample
 * per look, while data is outstanding. */
static void ka_wlog_add(ka_client *c, uint32_t written, uint32_t at)
{
    if (!ka_work_get(c)) return;                /* the allocator failed: see ka_wlog_oldest */
    if (!c->wk_log) {                           /* the block served the attempt: no socket left in it */
        memset(&c->wk->ph.w, 0, sizeof c->wk->ph.w);
        c->wk_log = 1;
    }
    if (c->wk->ph.w.n && c->wk->ph.w.log[c->wk->ph.w.n - 1].written == written) return;     /* nothing new since */
    if (c->wk->ph.w.n == KA_WLOG) memmove(c->wk->ph.w.log, c->wk->ph.w.log + 1, --c->wk->ph.w.n * sizeof c->wk->ph.w.log[0]);
    c->wk->ph.w.log[c->wk->ph.w.n].written = written;
    c->wk->ph.w.log[c->wk->ph.w.n++].at = at;
}

/* By when the oldest unacknowledged byte had been written: the first
 * sample past what is acknowledged (a late bound, at most one look late).
 * Samples wholly acknowledged are dropped. */
static uint32_t ka_wlog_oldest(ka_client *c, uint32_t acked)
{
    unsigned drop = 0;
    if (!c->wk_log) return c->last_send;        /* no log: the last write is a later bound */
    while (drop < c->wk->ph.w.n && (int32_t)(c->wk->ph.w.log[drop].written - acked) <= 0) drop++;
    memmove(c->wk->ph.w.log, c->wk->ph.w.log + drop, (c->wk->ph.w.n - drop) * sizeof c->wk->ph.w.log[0]);
    c->wk->ph.w.n -= drop;
    return c->wk->ph.w.log[0].at;   /* the newest sample is past acked: data is outstanding */
}

/* Data is outstanding: judge the connection on the kernel's view.
 *  - Everything acknowledged: idle again (and healthy), no more looks
 *    until the next send.
 *  - Window closed (nothing in flight, data waiting: the peer reads no
 *    more): the peer is alive while it answers window probes; two probes
 *    unanswered and no acknowledgement for the busy deadline make it dead.
 *    A window closed stall_timeout_ms (counted from the last data sent)
 *    makes it STALLED. Never TIMEOUT for a peer that answers: its kernel
 *    is there, its application is slow.
 *  - Data in flight: dead when the busy deadline has passed since the later
 *    of the last acknowledgement and the moment the oldest unacknowledged
 *    byte was written (the kernel's last-send time would not do: every
 *    retransmission refreshes it). An ICMP error the kernel kept (a soft
 *    error, read through SO_ERROR) makes it UNREACHABLE, not TIMEOUT.
 * On the way, on_health hears when the link degrades (data waiting longer
 * than health_threshold_ms, retransmissions, a closed window) and when it
 * is good again. */
static void ka_check_link(ka_client *c, unsigned long long now, const ka_kview *seen)
{
    ka_kview v;
    unsigned long busy = ka_busy_deadline_ms(c->cfg), stall = c->cfg->stall_timeout_ms, look = busy / 8;
    unsigned long waited = 0, left = 0, wait;
    unsigned cause = 0;
    c->when.check_at = 0;
    if (seen) v = *seen;                        /* the caller has just read it */
    else if (ka_kernel_view(KA_CONN(c), &v) != 0) return;
    if (!(v.valid & KA_KV_DEADLINE)) return;
    if (v.unacked == 0 && v.notsent == 0) {
        ka_work_drop(c);                        /* the write log is done with */
        ka_health_report(c, &v, 0, 0, 0);
        return;
    }
    ka_wlog_add(c, v.written, (uint32_t)now);
    if (v.unacked == 0) {
        if (!c->probes_capped) {
            c->probes_capped = 1;
            ka_cap_probe_backoff(c, KA_CONN(c));
        }
        if (busy && v.probes >= 2 && v.since_ack >= busy) { ka_declare_dead(c, KA_REASON_TIMEOUT, KA_ERR_TIMEDOUT); return; }
        if (stall && v.since_send >= stall) { ka_declare_dead(c, KA_REASON_STALLED, 0); return; }
        cause = KA_HEALTH_STALLED;
        wait = busy ? busy / 4 : 1000;          /* watch for probes going unanswered */
        if (stall && stall - v.since_send < wait) wait = stall - v.since_send;
    } else {
        uint32_t written_by = ka_wlog_oldest(c, v.acked), last = c->last_send;
        uint32_t since = (uint32_t)(now - v.since_ack);         /* the last acknowledgement */
        if ((int32_t)(last - written_by) < 0) written_by = last;    /* it was written by our last write, too */
        if ((int32_t)(written_by - since) > 0) since = written_by;
        waited = (uint32_t)now - since;
        if (busy && waited >= busy) {
            int soft = ka_pending_error(KA_CONN(c));
            ka_declare_dead(c, soft ? ka_classify(soft, 0) : KA_REASON_TIMEOUT, soft ? soft : KA_ERR_TIMEDOUT);
            return;
        }
        left = busy ? busy - waited : 0;
        wait = busy ? left : stall;
        if (look && look < wait) wait = look;
        if (waited >= ka_health_threshold(c->cfg)) cause |= KA_HEALTH_UNACKED;
        if (v.retransmits || v.ca_state >= 3) cause |= KA_HEALTH_RETRANS;  /* RTO backoff, or loss recovery */
    }
    if (ka_health_report(c, &v, cause, waited, left)) return;
    if (c->cfg->cb.on_health && (!wait || wait > KA_HEALTH_LOOK)) wait = KA_HEALTH_LOOK;
    if (wait) c->when.check_at = now + (wait < 10 ? 10 : wait);
}

/* After the peer's FIN (keep_writing_after_fin) the socket reads as ready
 * for good, so readiness cannot tell of what may still end the connection:
 * the peer's reset, the keepalive's verdict. The connection is looked at
 * instead, every ka_fin_look_ms, and judged as ka_check_link does while
 * data is outstanding. Where the kernel says nothing of the connection's
 * state, a pending socket error or a read that fails ends it. */
static void ka_look_after_fin(ka_client *c, unsigned long long now)
{
    ka_kview v;
    int err = 0, have = ka_kernel_view(KA_CONN(c), &v) == 0;
    char b;
    if (!have || v.gone) err = ka_pending_error(KA_CONN(c));
    /* Windows reports a reset to recv() even after a FIN; Linux answers 0. */
    if (!err && !have && recv(KA_CONN(c), &b, 1, MSG_PEEK) < 0 && !ka_would_block(ka_sock_err())) err = ka_sock_err();
    if (err || (have && v.gone)) {
        ka_lost(c, err ? ka_classify(err, 0) : KA_REASON_ERROR, err, 1);
        return;
    }
    if (have) ka_check_link(c, now, &v);
    else c->when.check_at = 0;
    if (c->state == KA_STATE_CONNECTED && !c->when.check_at) c->when.check_at = now + ka_fin_look_ms(c->cfg);
}

/* The dispatcher, in two halves that every ka_client_poll and
 * ka_client_process* call ends in: readiness of one watched socket, then
 * whatever timer is due. */
static void ka_on_ready(ka_client *c, ka_socket s, int ready)
{
    long rc;
    int err = 0;
    if (!ready || s == KA_INVALID_SOCKET) return;
    if (c->state == KA_STATE_CONNECTING) { ka_connecting_ready(c, s); return; }
    if (c->state != KA_STATE_CONNECTED || s != KA_CONN(c) || c->broken) return;     /* gone, or ka_on_timers reports it */
    if (((ready & KA_READ) && !c->peer_fin) || ((ready & KA_WRITE) && c->read_wants_write)) ka_read(c);
    if (c->state != KA_STATE_CONNECTED) return;
    if ((ready & KA_WRITE) || ((ready & KA_READ) && c->write_wants_read)) {
        if ((rc = ka_flush(c, &err)) != 0) { ka_note_broken(c, rc, err); return; }
    }
    if (c->peer_fin && c->wr_shut) ka_lost(c, KA_REASON_PEER_CLOSED, 0, 1);    /* both sides done */
}

static void ka_connected_timers(ka_client *c, unsigned long long now)
{
    if (c->broken) { ka_lost(c, (ka_reason)c->broken, c->broken_err, 1); return; }
    if (c->peer_fin && c->wr_shut) { ka_lost(c, KA_REASON_PEER_CLOSED, 0, 1); return; }    /* both sides done */
    if (c->read_more) {
        ka_read(c);
        if (c->state != KA_STATE_CONNECTED) return;
        now = ka_now_ms();                      /* reading took time and moved last_recv */
    }
    if (c->when.check_at && now >= c->when.check_at) {
        if (c->peer_fin) ka_look_after_fin(c, now);
        else ka_check_link(c, now, NULL);
    }
    if (c->state != KA_STATE_CONNECTED) return;
    /* After the peer's FIN nothing more will come: silence is expected. */
    if (c->cfg->idle_timeout_ms && !c->peer_fin && ka_since(now, c->last_recv) >= ka_span(c->cfg->idle_timeout_ms)) {
        ka_lost(c, KA_REASON_HEARTBEAT, 0, 1);
        return;
    }
    /* A heartbeat that finds no room (the allocator failed) is skipped, not
     * retried at once: the next one is an interval away. */
    if (ka_heartbeat_due(c) && ka_since(now, c->last_send) >= ka_span(c->cfg->heartbeat_interval_ms) &&
        ka_enqueue(c, 1, c->cfg->heartbeat_data, c->cfg->heartbeat_len) != 0)
        c->last_send = (uint32_t)now;
}

static void ka_on_timers(ka_client *c)
{
    unsigned long long now = ka_now_ms();
    ka_trim_due(c, now);
    switch ((ka_state)c->state) {
    case KA_STATE_CONNECTING:
        ka_connecting_timers(c, now);
        return;
    case KA_STATE_CONNECTED:
        ka_connected_timers(c, now);
        return;
    case KA_STATE_BACKOFF:
        if (now >= c->when.retry_at) ka_begin_attempt(c);
        return;
    default:
        return;
    }
}

/* Runs once the outermost library call that may have run callbacks is
 * done: the place where a deferred ka_client_free happens, and where
 * on_socket hears of new sockets and changed wants. */
static void ka_release(ka_client *c);
static int ka_leave(ka_client *c, int rc)
{
    if (c->depth > 0) return rc;
    if (c->free_pending) ka_release(c);
    else ka_sync_watch(c);
    return rc;
}

/* ---- 10. public API ----------------------------------------------------- */

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
    cfg->resolve_timeout_ms = 5000;
    cfg->connection_attempt_delay_ms = 250;
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

static int ka_backoff_ok(const ka_config *k)
{
    return k->backoff_initial_ms <= k->backoff_max_ms &&
           k->backoff_multiplier >= 1.0 && k->backoff_multiplier <= 1000.0 &&     /* also false for NaN */
           k->backoff_jitter >= 0.0 && k->backoff_jitter <= 1.0;
}

static int ka_keepalive_ms_ok(unsigned ms) { return ms >= 1 && ms <= KA_MAX_KEEPALIVE_MS; }
static int ka_size_ok(size_t n) { return n >= 1 && n <= (size_t)1 << 30; }

/* A literal host must parse here, without any lookup, as it will in
 * ka_client_new; "[v6]" without its brackets. */
static int ka_literal_ok(const char *host, const char *port)
{
    char h[KA_MAX_HOST_LEN + 1];
    ka_addr a;
    ka_host_copy(h, host);
    return ka_parse_literal(h, port, &a) == 0;
}

/* "host" or "port" if this server is not one the library can dial. */
static const char *ka_server_error(const char *host, const char *port)
{
    if (!host || !ka_host_ok(host)) return "host";
    if (!port || !ka_port_ok(port)) return "port";
    if (ka_is_literal(host) && !ka_literal_ok(host, port)) return port[0] >= '0' && port[0] <= '9' ? "host" : "port";
    return NULL;
}

static int ka_ifname_ok(const char *n)
{
    size_t len = strlen(n), i;
    if (len == 0 || len > 15) return 0;         /* IFNAMSIZ - 1 on Linux and the BSDs */
    for (i = 0; i < len; i++) if ((unsigned char)n[i] <= ' ' || n[i] == '/') return 0;
    return 1;
}

/* A handshake is small: room of its own up to 4 KiB by default. */
static size_t ka_session_cap(const ka_config *k)
{
    if (k->session_buffer_size) return k->session_buffer_size;
    return k->send_buffer_size < 4096 ? k->send_buffer_size : 4096;
}

const char *ka_config_error(const ka_config *k)
{
    size_t i;
    if (!k) return "cfg";
    if (k->endpoint_count > KA_MAX_ENDPOINTS || (k->endpoint_count && !k->endpoints)) return "endpoints";
    for (i = 0; i < k->endpoint_count; i++)
        if (ka_server_error(k->endpoints[i].host, k->endpoints[i].port)) return "endpoints";
    if (!k->endpoint_count) {
        const char *bad = ka_server_error(k->host, k->port);
        if (bad) return bad;
    }
    if (!ka_keepalive_ms_ok(k->keepalive_idle_ms)) return "keepalive_idle_ms";
    if (!ka_keepalive_ms_ok(k->keepalive_interval_ms)) return "keepalive_interval_ms";
    if (k->keepalive_count == 0 || k->keepalive_count > KA_MAX_KEEPALIVE_CNT) return "keepalive_count";
    if (k->user_timeout_ms > INT_MAX && k->user_timeout_ms != KA_TIMEOUT_OFF) return "user_timeout_ms";
    if (k->connect_timeout_ms == 0 || k->connect_timeout_ms > INT_MAX) return "connect_timeout_ms";
    if (k->resolve_timeout_ms == 0 || k->resolve_timeout_ms > INT_MAX) return "resolve_timeout_ms";
    if (k->connection_attempt_delay_ms > INT_MAX) return "connection_attempt_delay_ms";
    if (k->stall_timeout_ms > INT_MAX) return "stall_timeout_ms";
    if (k->backoff_initial_ms == 0 || k->backoff_initial_ms > k->backoff_max_ms) return "backoff_initial_ms";
    if (!(k->backoff_multiplier >= 1.0 && k->backoff_multiplier <= 1000.0)) return "backoff_multiplier";
    if (!(k->backoff_jitter >= 0.0 && k->backoff_jitter <= 1.0)) return "backoff_jitter";
    if (!ka_size_ok(k->send_buffer_size)) return "send_buffer_size";
    if (!ka_size_ok(k->recv_buffer_size)) return "recv_buffer_size";
    if (k->heartbeat_interval_ms && !k->heartbeat_data) return "heartbeat_data";
    if (k->session_buffer_size && !ka_size_ok(k->session_buffer_size)) return "session_buffer_size";
    /* A heartbeat is sent apart from the backlog, in the session queue's room. */
    if (k->heartbeat_interval_ms && (k->heartbeat_len == 0 || k->heartbeat_len > ka_session_cap(k))) return "heartbeat_len";
    if (k->mem_alloc && !k->mem_free) return "mem_free";
    if (k->mem_free && !k->mem_alloc) return "mem_alloc";
    if (k->family != KA_FAMILY_ANY && k->family != KA_FAMILY_IPV4 && k->family != KA_FAMILY_IPV6) return "family";
    if (k->bind_address && (!ka_host_ok(k->bind_address) || !ka_is_literal(k->bind_address) || !ka_literal_ok(k->bind_address, "0")))
        return "bind_address";
    if (k->bind_interface && !ka_ifname_ok(k->bind_interface)) return "bind_interface";
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

/* The servers a config names: its endpoints, or host/port as one. */
static size_t ka_server_count(const ka_config *k) { return k->endpoint_count ? k->endpoint_count : 1; }

static void ka_server(const ka_config *k, size_t i, const char **host, const char **port)
{
    *host = k->endpoint_count ? k->endpoints[i].host : k->host;
    *port = k->endpoint_count ? k->endpoints[i].port : k->port;
}

/* Copies n bytes to the block at *at (if there is a block) and moves on. */
static void *ka_carve(unsigned char *base, size_t *at, const void *src, size_t n)
{
    void *p = base ? base + *at : NULL;
    if (base && src) memcpy(p, src, n);
    *at += n;
    return p;
}

static size_t ka_round8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Fills p from k, the interface name and heartbeat bytes copied to extra
 * (NULL: p points at k's own, enough to compare); returns the bytes extra
 * takes. p NULL: only that. The config is copied with memcpy, padding
 * included, so that equal configs compare equal byte for byte. */
static size_t ka_profile_build(ka_profile *p, const ka_config *k, unsigned char *extra)
{
    size_t iface = k->bind_interface ? strlen(k->bind_interface) + 1 : 0;
    size_t hb = k->heartbeat_interval_ms ? k->heartbeat_len : 0;
    if (!p) return iface + hb;
    memset(p, 0, sizeof *p);
    memcpy(&p->cfg, k, sizeof p->cfg);
    p->cfg.host = p->cfg.port = NULL;           /* the servers live in the client's ep */
    p->cfg.endpoints = NULL;
    p->cfg.endpoint_count = 0;
    p->cfg.bind_address = NULL;                 /* parsed into bind_addr */
    p->cfg.user = NULL;
    if (!p->cfg.transport) p->cfg.transport = &ka_plain;
    p->cfg.heartbeat_len = hb;
    p->cfg.heartbeat_data = hb ? k->heartbeat_data : NULL;
    if (extra && iface) p->cfg.bind_interface = (const char *)memcpy(extra, k->bind_interface, iface);
    if (extra && hb) p->cfg.heartbeat_data = memcpy(extra + iface, k->heartbeat_data, hb);
    if (k->bind_address) {
        char h[KA_MAX_HOST_LEN + 1];
        ka_host_copy(h, k->bind_address);
        ka_parse_literal(h, "0", &p->bind_addr);
    }
    return iface + hb;
}

#ifndef KA_NO_THREADS
#define KA_SHARE_PROFILES 1
static ka_profile *ka_profiles;     /* the shared ones, under ka_profiles_lock */

/* Byte for byte: a field added to ka_config is compared without anyone
 * remembering to. Bytes that differ where values are equal (padding, -0.0)
 * only cost a second copy, never a wrong share; ka_config_init and the
 * address parser zero the padding, so equal configs compare equal. */
static int ka_profile_same(const ka_profile *a, const ka_profile *b)
{
    ka_config x, y;
    memcpy(&x, &a->cfg, sizeof x);
    memcpy(&y, &b->cfg, sizeof y);
    x.bind_interface = y.bind_interface = NULL;     /* compared by content below */
    x.heartbeat_data = y.heartbeat_data = NULL;
    if (memcmp(&x, &y, sizeof x) != 0) return 0;   /* NOLINT(bugprone-suspicious-memory-comparison,cert-exp42-c,cert-flp37-c): see above */
    if (memcmp(&a->bind_addr, &b->bind_addr, sizeof a->bind_addr) != 0) return 0;  /* NOLINT(bugprone-suspicious-memory-comparison,cert-exp42-c,cert-flp37-c): zeroed, then parsed */
    if (!a->cfg.bind_interface != !b->cfg.bind_interface) return 0;
    if (a->cfg.bind_interface && strcmp(a->cfg.bind_interface, b->cfg.bind_interface) != 0) return 0;
    return !x.heartbeat_len || memcmp(a->cfg.heartbeat_data, b->cfg.heartbeat_data, x.heartbeat_len) == 0;
}

/* Under the lock: a counted reference to the shared profile equal to key,
 * or NULL. */
static const ka_profile *ka_profile_find(const ka_profile *key)
{
    ka_profile *p;
    for (p = ka_profiles; p && !ka_profile_same(p, key); p = p->next) {}
    if (p) p->refs++;
    return p;
}

/* A reference to a shared profile equal to k's, or NULL if there is none
 * yet: the new client then carries one in its block (ka_profile_publish). */
static const ka_profile *ka_profile_share(const ka_config *k)
{
    ka_profile key;
    const ka_profile *p;
    ka_profile_build(&key, k, NULL);
    ka_profiles_lock();
    p = ka_profile_find(&key);
    ka_profiles_unlock();
    return p;
}

/* Shares the profile built in a new client's block, unless an equal one
 * appeared meanwhile (another thread): returns the one the client uses. */
static const ka_profile *ka_profile_publish(ka_profile *mine, void *block)
{
    const ka_profile *p;
    ka_profiles_lock();
    if ((p = ka_profile_find(mine)) == NULL) {
        mine->refs = 1;
        mine->block = block;
        mine->next = ka_profiles;
        ka_profiles = mine;
        p = mine;
    }
    ka_profiles_unlock();
    return p;
}

/* Drops a client's reference; the last one frees the block the profile
 * lives in (a client that was freed before the others sharing its profile
 * leaves its block behind until then). */
static void ka_profile_put(const ka_profile *cp)
{
    ka_profile *p = (ka_profile *)cp, **pp;     /* NOLINT: the list owns it; clients only read */
    int last;
    if (!p || !p->block) return;               /* not shared: it goes with its client */
    ka_profiles_lock();
    if ((last = --p->refs == 0) != 0)
        for (pp = &ka_profiles; *pp; pp = &(*pp)->next)
            if (*pp == p) { *pp = p->next; break; }
    ka_profiles_unlock();
    if (!last) return;
    if (p->cfg.mem_alloc) p->cfg.mem_free(p->block, p->cfg.mem_user);
    else free(p->block);
}
#else
#define KA_SHARE_PROFILES 0
static const ka_profile *ka_profile_share(const ka_config *k) { (void)k; return NULL; }
static const ka_profile *ka_profile_publish(ka_profile *mine, void *block) { (void)block; return mine; }
static void ka_profile_put(const ka_profile *p) { (void)p; }
#endif

/* One block holds the client, in this order: the client, the servers
 * (their records, then address slots, then strings), its own profile if
 * it shares none with the profile's strings and heartbeat bytes, the
 * receive buffer if it is too large for the stack, and in no-heap mode the
 * work block, the queues and their storage (from ka_client_new the work
 * block and the queues come on demand instead). With c NULL it only
 * measures; else it lays the block out in c. Buffers are not written
 * here, so the pages they span stay untouched until used. */
/* Room for the message lengths of a queue of cap bytes: one byte for each
 * message of 8 bytes or more, and at least 64 messages. */
static size_t ka_lens_cap(size_t cap) { return cap / 8 + 64; }

/* Whether the client needs a ka_ext: see there. */
static int ka_needs_ext(const ka_config *k)
{
    size_t i;
    const char *host, *port;
    if ((k->transport && k->transport != &ka_plain) || k->recv_buffer_size > KA_RECV_STACK) return 1;
    for (i = 0; i < ka_server_count(k); i++) {
        ka_server(k, i, &host, &port);
        if (!ka_is_literal(host)) return 1;
    }
    return 0;
}

static size_t ka_layout(const ka_config *k, ka_client *c, int fixed_queues, int own_profile)
{
    unsigned char *base = (unsigned char *)c;
    size_t at = sizeof(ka_client), i, n = ka_server_count(k);
    int ext = ka_needs_ext(k);
    ka_ep *ep;
    ka_profile *own;
    const char *host, *port;
    if (c) c->has_ext = (unsigned)ext;
    if (ext) {                                  /* right behind: see ka_ext_of */
        ka_ext *x = (ka_ext *)ka_carve(base, &at, NULL, sizeof(ka_ext));
        if (c) memset(x, 0, sizeof *x);
    }
    ep = (ka_ep *)ka_carve(base, &at, NULL, n * sizeof(ka_ep));     /* next: see ka_ep_of */
    /* At most 16 servers of 8 slots and 255 + 32 characters: all well
     * inside the 64 KiB an ep's offsets reach. */
    for (i = 0; i < n; i++) {
        int kind;
        ka_addr lit;
        ka_server(k, i, &host, &port);
        kind = ka_parse_pton(host, port, &lit) == 0 ? KA_LITERAL_PARSED : ka_is_literal(host) ? KA_LITERAL : KA_NAME;
        if (c) {
            memset(&ep[i], 0, sizeof ep[i]);
            ep[i].numeric = (unsigned char)kind;
        }
        if (kind == KA_LITERAL_PARSED) continue;  /* no slot: see ka_ep_addrs */
        at = (at + 3) & ~(size_t)3;
        if (c) ep[i].addr_at = (uint16_t)at;
        at += (kind == KA_LITERAL ? 1 : KA_MAX_ADDRS) * sizeof(ka_addr);
    }
    for (i = 0; i < n; i++) {
        ka_server(k, i, &host, &port);
        if (c) {
            ep[i].host_at = (uint16_t)at;
            ka_host_copy((char *)base + at, host);
        }
        at += ka_host_len(host) + 1;            /* the port follows: see ka_ep_port */
        ka_carve(base, &at, port, strlen(port) + 1);
    }
    if (own_profile) {
        at = ka_round8(at);
        own = (ka_profile *)ka_carve(base, &at, NULL, sizeof(ka_profile));
        if (c) {
            ka_profile_build(own, k, base + at);
            c->cfg = &own->cfg;
        }
        at += ka_profile_build(NULL, k, NULL);
    }
    if (c) {
        c->nep = (unsigned char)n;
        if (ext) ka_ext_of(c)->rbuf_at = k->recv_buffer_size > KA_RECV_STACK ? (uint32_t)at : 0;
    }
    if (k->recv_buffer_size > KA_RECV_STACK) at += k->recv_buffer_size;
    if (fixed_queues) {                         /* no-heap mode: the work block, the queues' whole storage, touched only as used */
        ka_queue *q[2];
        size_t j;
        ka_queues *qs;
        ka_work *wk;
        at = ka_round8(at);
        wk = (ka_work *)ka_carve(base, &at, NULL, sizeof *wk);
        if (c) c->wk = wk;
        qs = (ka_queues *)ka_carve(base, &at, NULL, sizeof *qs);
        if (c) {
            memset(qs, 0, sizeof *qs);
            c->q = qs;
            q[0] = &qs->hs;
            q[1] = &qs->mq;
        }
        for (j = 0; j < 2; j++) {
            size_t cap = j ? k->send_buffer_size : ka_session_cap(k), lens = ka_lens_cap(cap);
            if (c) {
                q[j]->data.buf = base + at;
                q[j]->lens.buf = base + at + cap;
                q[j]->data.size = q[j]->data.max = (ka_len)cap;
                q[j]->lens.size = q[j]->lens.max = (ka_len)lens;
                q[j]->data.fixed = q[j]->lens.fixed = 1;
            }
            at += cap + lens;
        }
    }
    return ka_round8(at);
}

size_t ka_client_size(const ka_config *cfg)
{
    return cfg && ka_config_ok(cfg) ? ka_layout(cfg, NULL, 1, 1) : 0;
}

static void ka_queue_init(ka_queue *q, size_t cap, int keep)
{
    q->cap = (ka_len)cap;
    q->keep = keep;
    if (q->data.fixed) return;
    q->data.max = (ka_len)cap;
    q->lens.max = (ka_len)ka_lens_cap(cap);
}

/* A client in mem; shared: its profile, or NULL for one of its own. */
static ka_client *ka_setup(void *mem, const ka_config *cfg, int owned, const ka_profile *shared)
{
    ka_client *c = (ka_client *)mem;
    unsigned i;
    memset(c, 0, sizeof *c);
    ka_layout(cfg, c, !owned, !shared);
    if (shared) c->cfg = &shared->cfg;
    else if (owned && KA_SHARE_PROFILES) c->cfg = &ka_profile_publish((ka_profile *)c->cfg, c)->cfg;  /* NOLINT: our own block */
    c->user = cfg->user;
    if (c->q) ka_queues_init(c);                   /* no-heap mode: in the block */
    else c->q = (ka_queues *)&ka_no_queues;     /* NOLINT: never written, see ka_queues */
    for (i = 0; i < c->nep; i++) {
        ka_ep *e = ka_ep_of(c, i);
        /* a KA_LITERAL_PARSED one is read at each use: see ka_ep_addrs */
        if (e->numeric == KA_LITERAL_PARSED || (e->numeric && ka_parse_literal(ka_ep_host(c, e), ka_ep_port(c, e), ka_ep_addr(c, e)) == 0))
            e->naddr = 1;
    }
    KA_CONN(c) = KA_INVALID_SOCKET;
    if (c->wk) ka_work_init(c);                 /* no-heap mode: in the block */
    c->state = KA_STATE_IDLE;
    c->owned = owned;
    c->rng = cfg->random_seed ? cfg->random_seed : ka_default_seed(c);
    return c;
}

int ka_client_new(ka_client **out, const ka_config *cfg)
{
    const ka_profile *p = NULL;
    size_t size;
    void *mem;
    if (out) *out = NULL;
    if (!out || !cfg || !ka_config_ok(cfg)) return KA_EINVAL;
    if (KA_SHARE_PROFILES) p = ka_profile_share(cfg);
    size = ka_layout(cfg, NULL, 0, !p);
    mem = cfg->mem_alloc ? cfg->mem_alloc(size, cfg->mem_user) : malloc(size);
    if (mem && ka_net_init() != 0) {
        if (cfg->mem_alloc) cfg->mem_free(mem, cfg->mem_user);
        else free(mem);
        mem = NULL;
    }
    if (!mem) {
        ka_profile_put(p);
        return KA_ENOMEM;
    }
    *out = ka_setup(mem, cfg, 1, p);
    return 0;
}

int ka_client_init(ka_client **out, void *mem, size_t size, const ka_config *cfg)
{
    if (out) *out = NULL;
    if (!out || !mem || !cfg || !ka_config_ok(cfg)) return KA_EINVAL;
    /* the block holds pointers and 64-bit counters */
    if (size < ka_layout(cfg, NULL, 1, 1) || (size_t)mem % sizeof(unsigned long long) != 0 || (size_t)mem % sizeof(void *) != 0)
        return KA_EINVAL;
    if (ka_net_init() != 0) return KA_ENOMEM;
    *out = ka_setup(mem, cfg, 0, NULL);
    return 0;
}

int ka_client_start(ka_client *c)
{
    if (!c) return KA_EINVAL;
    if (c->state != KA_STATE_IDLE && c->state != KA_STATE_STOPPED) return KA_ESTATE;
    c->fails = c->retries = 0;
    c->finishing = 0;
    ka_begin_quietly(c);
    return ka_leave(c, 0);
}

int ka_client_send(ka_client *c, const void *data, size_t len)
{
    int rc, session;
    if (!c || (!data && len)) return KA_EINVAL;
    if (c->state == KA_STATE_STOPPED) return KA_ENOTCONN;
    /* Before the session is ready, what the client's own callbacks send
     * (on_connect's login, on_data's answer to the server's challenge)
     * belongs to this connection's handshake and goes first; whatever the
     * application sends from elsewhere meanwhile is backlog. */
    session = c->state == KA_STATE_CONNECTED && !c->ready && c->depth > 0;
    if (c->finishing && !session) return KA_ESTATE;        /* the handshake of a finishing client still goes */
    if (len == 0) return 0;
    if (len > ka_q_cap(c, session)) return KA_EMSGSIZE;
    rc = ka_enqueue(c, session, data, len);
    return ka_leave(c, rc);
}

int ka_client_finish(ka_client *c)
{
    long rc;
    int err = 0;
    if (!c) return KA_EINVAL;
    if (c->state == KA_STATE_IDLE || c->state == KA_STATE_STOPPED) return KA_ESTATE;
    c->finishing = 1;
    if (c->state == KA_STATE_CONNECTED) {
        if (!c->broken && (rc = ka_flush(c, &err)) != 0) ka_note_broken(c, rc, err);  /* half-closes at once if all is out */
    } else if (!c->q->mq.msgs) {
        ka_end_attempt(c);              /* nothing to deliver, no connection to close */
        ka_enter(c, KA_STATE_STOPPED);
    }
    return ka_leave(c, 0);
}

int ka_client_ready(ka_client *c)
{
    long rc;
    int err = 0;
    if (!c) return KA_EINVAL;
    if (c->state != KA_STATE_CONNECTED) return KA_ESTATE;
    if (c->ready) return 0;
    c->ready = 1;
    if (!c->broken && (rc = ka_flush(c, &err)) != 0) ka_note_broken(c, rc, err);
    return ka_leave(c, 0);
}

int ka_client_ack(ka_client *c, size_t messages)
{
    int rc;
    if (!c) return KA_EINVAL;
    if (!c->cfg->replay_until_acked) return KA_ESTATE;
    rc = ka_q_ack(&c->q->mq, messages);
    if (!c->q->mq.msgs) ka_trim_later(c);          /* all confirmed: a burst's memory comes back */
    return rc;
}

size_t ka_client_pending(const ka_client *c) { return c ? ka_q_unsent(&c->q->hs) + ka_q_unsent(&c->q->mq) : 0; }
size_t ka_client_unacked(const ka_client *c) { return c && c->cfg->replay_until_acked ? c->q->mq.done_bytes + c->q->mq.part : 0; }
size_t ka_client_unacked_messages(const ka_client *c) { return c && c->cfg->replay_until_acked ? c->q->mq.done_msgs : 0; }

int ka_client_stats(const ka_client *c, ka_stats *out)
{
    ka_stats st;
    ka_kview v;
    unsigned i;
    if (!c || !out || out->size < offsetof(ka_stats, disconnects)) return KA_EINVAL;
    memset(&st, 0, sizeof st);
    st.size = out->size;
    st.attempts = c->n_attempts;
    st.connections = c->state == KA_STATE_CONNECTED;
    for (i = 0; i < KA_DISC_SLOTS; i++) st.connections += c->n_disc[i];
    for (i = 0; i <= KA_REASON_TLS; i++) st.disconnects[i] = ka_disc_slot((ka_reason)i) >= 0 ? c->n_disc[ka_disc_slot((ka_reason)i)] : 0;
    st.bytes_sent = c->n_bytes_sent;
    st.bytes_received = c->n_bytes_recv;
    st.messages_sent = c->n_msgs_sent;
    st.messages_received = c->n_reads;
    st.bytes_dropped = c->n_dropped;
    st.queue_high_water = c->high_water;
    st.connected_ms_total = c->up_ms_total;
    if (c->state == KA_STATE_CONNECTED) {
        st.connected_ms = ka_now_ms() - c->connected_at;
        st.connected_ms_total += st.connected_ms;
        if (ka_kernel_view(KA_CONN(c), &v) == 0) {
            st.valid = v.valid & ~KA_KV_DEADLINE;
            st.rtt_us = v.rtt_us;
            st.rttvar_us = v.rttvar_us;
            st.retransmits = v.retransmits;
            st.total_retrans = v.total_retrans;
            st.unacked_bytes = v.unacked_bytes;
            st.send_queue_bytes = v.send_queue_bytes;
            st.peer_window = v.peer_window;
            st.probes = v.probes;
        }
    }
    memcpy(out, &st, out->size < sizeof st ? out->size : sizeof st);   /* an older, smaller ka_stats gets what it knows */
    return 0;
}

int ka_client_retry_in(ka_client *c, unsigned ms)
{
    if (!c) return KA_EINVAL;
    if (c->state == KA_STATE_IDLE || c->state == KA_STATE_STOPPED) return KA_ESTATE;
    if (c->state == KA_STATE_BACKOFF && c->when.retry_at) {    /* the pending delay moves */
        c->when.retry_at = ka_now_ms() + ms;
        if (ms == 0 && c->depth == 0) ka_begin_quietly(c);
        return ka_leave(c, 0);
    }
    c->has_override = 1;                        /* the delay of the retry to come */
    c->override_ms = ms;
    return 0;
}

const char *ka_client_transport_error(const ka_client *c)
{
    if (!c || !c->has_ext || !ka_ext_of(c)->tp_err || !c->cfg->transport->strerror) return NULL;
    return c->cfg->transport->strerror(c->cfg->transport->ctx, ka_ext_of(c)->tp_err);
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
    ka_begin_quietly(c);
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
    const ka_profile *p;
    int shared;
    ka_end_attempt(c);
    ka_close_conn(c, 0);
    ka_q_clear(c, &c->q->hs);
    ka_q_clear(c, &c->q->mq);
    ka_queues_drop(c);                  /* small rings too: they are kept only while in use */
    ka_work_drop(c);
#ifndef KA_NO_THREADS
    if (c->has_ext && ka_ext_of(c)->lookup) ka_lookup_release(ka_ext_of(c)->lookup);  /* a running lookup frees it when it ends */
#endif
    ka_net_done();
    if (!c->owned) return;              /* caller's memory: nothing to give back */
    p = ka_prof(c);
    if (p->block == c) {                /* the profile others may share lives here */
        ka_profile_put(p);
        return;
    }
    shared = p->block != NULL;          /* else p is in this block */
    if (p->cfg.mem_alloc) p->cfg.mem_free(c, p->cfg.mem_user);
    else free(c);
    if (shared) ka_profile_put(p);
}

void ka_client_free(ka_client *c)
{
    if (!c) return;
    if (c->depth > 0) {
        /* From a callback: stop now, release when the library call returns. */
        ka_end_attempt(c);
        ka_close_conn(c, 0);
        ka_enter(c, KA_STATE_STOPPED);
        c->free_pending = 1;
        return;
    }
    ka_release(c);
}

ka_state ka_client_state(const ka_client *c) { return c ? (ka_state)c->state : KA_STATE_STOPPED; }

int ka_client_endpoint(const ka_client *c)
{
    if (!c || !c->n_attempts) return -1;
    return (int)c->cur_ep;          /* also in on_retry / on_disconnect: the one that just ended */
}

/* Every socket the client watches now, with what it waits for. */
static int ka_watched(const ka_client *c, ka_pollset *set)
{
    const ka_work *w = ka_attempt_work(c);
    int n = 0, i;
    if (w && w->ph.at.lookup_w.s != KA_INVALID_SOCKET) { set[n].s = w->ph.at.lookup_w.s; set[n].want = KA_READ; set[n++].ready = 0; }
    for (i = 0; w && i < KA_MAX_RACE; i++)
        if (w->ph.at.race[i].s != KA_INVALID_SOCKET) { set[n].s = w->ph.at.race[i].s; set[n].want = KA_WRITE; set[n++].ready = 0; }
    if (ka_conn_want(c)) { set[n].s = KA_CONN(c); set[n].want = ka_conn_want(c); set[n++].ready = 0; }
    return n;
}

/* For loops without on_socket, one socket stands for the client: the
 * connection, else the newest attempt, else the lookup's signal. */
static int ka_main_socket(const ka_client *c, ka_pollset *one)
{
    ka_pollset set[KA_MAX_WATCH];
    int n = ka_watched(c, set);
    if (!n) return 0;
    *one = set[n - 1];
    if (c->state == KA_STATE_CONNECTING && c->phase == KA_PHASE_RACE) {
        unsigned i;
        for (i = 0; i < KA_MAX_RACE; i++)
            if (c->wk->ph.at.race[i].s != KA_INVALID_SOCKET && c->wk->ph.at.a.race_addr[i] == c->wk->ph.at.a.order[c->wk->ph.at.a.next_addr - 1]) one->s = c->wk->ph.at.race[i].s;
    }
    return 1;
}

ka_socket ka_client_socket(const ka_client *c)
{
    ka_pollset one;
    return c && ka_main_socket(c, &one) ? one.s : KA_INVALID_SOCKET;
}

int ka_client_want(const ka_client *c)
{
    ka_pollset one;
    return c && ka_main_socket(c, &one) ? one.want : 0;
}

static long ka_until(unsigned long long when, unsigned long long now)
{
    unsigned long long d = when > now ? when - now : 0;
    return d > LONG_MAX ? LONG_MAX : (long)d;
}

static long ka_sooner(long t, unsigned long long when, unsigned long long now)
{
    long u = ka_until(when, now);
    return t < 0 || u < t ? u : t;
}

static long ka_state_timeout(const ka_client *c, unsigned long long now)
{
    long t = -1;
    switch ((ka_state)c->state) {
    case KA_STATE_CONNECTING:
        if (c->phase == KA_PHASE_FAILED) return 0;
        if (c->phase == KA_PHASE_RESOLVE) return ka_until(c->wk->ph.at.a.resolve_deadline, now);
        t = ka_until(c->wk->ph.at.a.race_deadline, now);
        if (c->wk->ph.at.a.next_addr < c->wk->ph.at.a.norder) t = ka_sooner(t, c->wk->ph.at.a.next_try_at, now);
        /* Without on_socket the loop watches one attempt: look at the others that often. */
        if (!c->cfg->cb.on_socket && ka_race_size(c) > 1) t = ka_sooner(t, now + (c->cfg->connection_attempt_delay_ms ? c->cfg->connection_attempt_delay_ms : 50), now);
        return t;
    case KA_STATE_BACKOFF:
        return ka_until(c->when.retry_at, now);
    case KA_STATE_CONNECTED:
        if (c->broken || c->read_more || (c->peer_fin && c->wr_shut)) return 0;
        if (c->when.check_at) t = ka_until(c->when.check_at, now);
        if (c->cfg->idle_timeout_ms && !c->peer_fin)
            t = ka_sooner(t, now - ka_since(now, c->last_recv) + ka_span(c->cfg->idle_timeout_ms), now);
        if (ka_heartbeat_due(c)) t = ka_sooner(t, now - ka_since(now, c->last_send) + ka_span(c->cfg->heartbeat_interval_ms), now);
        return t;
    default:
        return -1;
    }
}

long ka_client_timeout_ms(const ka_client *c)
{
    unsigned long long now;
    long t;
    if (!c) return -1;
    now = ka_now_ms();
    t = ka_state_timeout(c, now);
    if (c->q->trim_at) t = ka_sooner(t, c->q->trim_at, now);    /* never due in IDLE or STOPPED: see ka_trim_later */
    return t;
}

/* Readiness of several sockets at once: each one still known is handled
 * (an earlier one may have closed a later one), then the timers. */
static int ka_process_set(ka_client *c, ka_pollset *set, int n)
{
    int i;
    if (c->state == KA_STATE_IDLE || c->state == KA_STATE_STOPPED) return KA_ESTATE;
    for (i = 0; i < n && c->state != KA_STATE_STOPPED; i++) ka_on_ready(c, set[i].s, set[i].ready);
    ka_on_timers(c);
    return ka_leave(c, 0);
}

int ka_client_process_socket(ka_client *c, ka_socket s, int ready)
{
    ka_pollset one;
    if (!c) return KA_EINVAL;
    one.s = s;
    one.want = 0;
    one.ready = ready & (KA_READ | KA_WRITE);
    return ka_process_set(c, &one, 1);
}

int ka_client_process_events(ka_client *c, int ready)
{
    ka_pollset set[KA_MAX_WATCH], one;
    int n = 0, i;
    if (!c) return KA_EINVAL;
    if (ka_main_socket(c, &one)) {
        one.ready = ready & (KA_READ | KA_WRITE);
        set[n++] = one;
    }
    /* The other attempts of a race the loop does not watch: ask each. */
    for (i = 0; c->state == KA_STATE_CONNECTING && c->wk && i < KA_MAX_RACE; i++) {
        if (c->wk->ph.at.race[i].s == KA_INVALID_SOCKET || (n && c->wk->ph.at.race[i].s == set[0].s)) continue;
        set[n].s = c->wk->ph.at.race[i].s;
        set[n++].ready = KA_WRITE;              /* ka_check_attempt asks the socket itself */
    }
    return ka_process_set(c, set, n);
}

int ka_client_fdset_ex(ka_client *c, fd_set *rd, fd_set *wr, fd_set *ex)
{
    ka_pollset set[KA_MAX_WATCH];
    int n, i, nfds = 0;
    if (!c) return KA_EINVAL;
    n = ka_watched(c, set);
    for (i = 0; i < n; i++)
        if ((rd && !ka_fd_fits(set[i].s, rd)) || (wr && !ka_fd_fits(set[i].s, wr)) || (ex && !ka_fd_fits(set[i].s, ex)))
            return KA_EFDSETSIZE;
    for (i = 0; i < n; i++) {
        if ((set[i].want & KA_READ) && rd) FD_SET(set[i].s, rd);
        if ((set[i].want & KA_WRITE) && wr) FD_SET(set[i].s, wr);
        if (set[i].want == KA_WRITE && c->state == KA_STATE_CONNECTING && ex) FD_SET(set[i].s, ex);
        if (ka_nfds(set[i].s) > nfds) nfds = ka_nfds(set[i].s);
    }
    return nfds;
}

int ka_client_fdset(ka_client *c, fd_set *rd, fd_set *wr) { return ka_client_fdset_ex(c, rd, wr, NULL); }

static int ka_isset(ka_socket s, const fd_set *set)
{
    return set && s != KA_INVALID_SOCKET && ka_fd_fits(s, set) && FD_ISSET(s, (fd_set *)set);
}

int ka_client_process_ex(ka_client *c, const fd_set *rd, const fd_set *wr, const fd_set *ex)
{
    ka_pollset set[KA_MAX_WATCH];
    int n, i;
    if (!c) return KA_EINVAL;
    n = ka_watched(c, set);
    for (i = 0; i < n; i++) {
        set[i].ready = (ka_isset(set[i].s, rd) ? KA_READ : 0) | (ka_isset(set[i].s, wr) ? KA_WRITE : 0);
        if (ka_isset(set[i].s, ex)) set[i].ready |= KA_READ | KA_WRITE;    /* Windows: connect failed */
    }
    return ka_process_set(c, set, n);
}

int ka_client_process(ka_client *c, const fd_set *rd, const fd_set *wr) { return ka_client_process_ex(c, rd, wr, NULL); }

int ka_client_poll(ka_client *c, int timeout_ms)
{
    fd_set rd, wr, ex;
    struct timeval tv;
    ka_pollset set[KA_MAX_WATCH];
    long t;
    int nfds, n;
    if (!c) return KA_EINVAL;
    if (c->state == KA_STATE_IDLE || c->state == KA_STATE_STOPPED) return KA_ESTATE;
    t = ka_client_timeout_ms(c);
    if (timeout_ms >= 0 && (t < 0 || timeout_ms < t)) t = timeout_ms;
    FD_ZERO(&rd); FD_ZERO(&wr); FD_ZERO(&ex);
    nfds = ka_client_fdset_ex(c, &rd, &wr, &ex);
    if (nfds == KA_EFDSETSIZE) {
        n = ka_watched(c, set);
        if (ka_poll_many(set, n, t < 0 ? -1 : (t > INT_MAX ? INT_MAX : (int)t)) < 0) return KA_ESYS;
        return ka_process_set(c, set, n);
    }
    tv.tv_sec = t / 1000;
    tv.tv_usec = (t % 1000) * 1000;
    n = ka_select(nfds, &rd, &wr, &ex, t < 0 ? NULL : &tv);
    if (n < 0 && ka_sock_err() != KA_ERR_INTR) return KA_ESYS;
    if (n <= 0) {                       /* timeout or signal: timers only */
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_ZERO(&ex);
    }
    return ka_client_process_ex(c, &rd, &wr, &ex);
}

int ka_client_resolved(ka_client *c, const struct sockaddr *const *addrs, size_t n, int error)
{
    ka_ep *e;
    size_t i;
    unsigned got = 0;
    if (!c || (n && !addrs)) return KA_EINVAL;
    if (!c->hook_waiting) return KA_ESTATE;
    e = ka_cur_ep(c);
    c->hook_waiting = 0;
    if (!error) {
        for (i = 0; i < n && got < KA_MAX_ADDRS; i++)
            got += ka_addr_take(&ka_ep_addr(c, e)[got], KA_MAX_ADDRS - got, addrs[i], ka_port_number(ka_ep_port(c, e)));
        if (got) e->naddr = (unsigned char)got;
        else error = EAI_NONAME;
    }
    ka_resolved(c, error);
    return ka_leave(c, 0);
}

const char *ka_reason_str(ka_reason r)
{
    static const char *const names[] = {
        "none", "peer closed", "peer reset", "timeout", "unreachable", "refused",
        "connect timeout", "name resolution failed", "idle timeout", "local", "socket error",
        "peer stalled (window closed)", "aborted by the local stack", "TLS / transport failure"
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
    if (reason == KA_REASON_TLS) return "transport error (see ka_client_transport_error)";
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
