/* demo_os.h: what the demos (kacat, own_loop, flaky_server) need that
 * differs between POSIX and Windows, written once. Include it before any
 * other header: it sets the POSIX feature-test macro and brings in the
 * socket headers.
 *
 *   now_ms()             monotonic milliseconds, for deadlines
 *   sleep_ms(ms)
 *   clock_text(buf, n)   time of day "HH:MM:SS.d", for log lines
 *   sock_errno()         the last socket error: errno, or WSAGetLastError()
 *   SOCK_EINTR           the error a signal gives select()
 *   wait_sockets()       select() that may be handed empty sets
 */
#ifndef DEMO_OS_H
#define DEMO_OS_H

#ifdef _WIN32

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef _CRT_SECURE_NO_WARNINGS
#define _CRT_SECURE_NO_WARNINGS         /* MSVC's advice to use the _s functions */
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <stdio.h>

#define SOCK_EINTR WSAEINTR

static inline unsigned long long now_ms(void) { return (unsigned long long)GetTickCount64(); }
static inline void sleep_ms(unsigned ms) { Sleep(ms); }
static inline int sock_errno(void) { return WSAGetLastError(); }

static inline void clock_text(char *buf, size_t n)
{
    SYSTEMTIME st;
    GetLocalTime(&st);
    snprintf(buf, n, "%02u:%02u:%02u.%u", st.wHour, st.wMinute, st.wSecond, st.wMilliseconds / 100u);
}

/* Windows select() fails at once (WSAEINVAL) when all three sets are
 * empty, and wants NULL for an empty one; nfds is ignored. With nothing
 * to watch, this sleeps for the timeout instead (a negative one counts as
 * a second, so the caller's loop comes round). */
static inline int wait_sockets(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, long timeout_ms)
{
    struct timeval tv;
    int any_rd = rd && rd->fd_count, any_wr = wr && wr->fd_count, any_ex = ex && ex->fd_count;
    (void)nfds;
    if (!any_rd && !any_wr && !any_ex) {
        Sleep(timeout_ms < 0 ? 1000u : (DWORD)timeout_ms);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    return select(0, any_rd ? rd : NULL, any_wr ? wr : NULL, any_ex ? ex : NULL, timeout_ms < 0 ? NULL : &tv);
}

#else /* POSIX */

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>

#define SOCK_EINTR EINTR

static inline unsigned long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static inline int sock_errno(void) { return errno; }

static inline void clock_text(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    snprintf(buf, n, "%02d:%02d:%02d.%d", tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 100000000L));
}

/* timeout_ms < 0: no timeout. A signal ends it with -1 and SOCK_EINTR. */
static inline int wait_sockets(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, long timeout_ms)
{
    struct timeval tv;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    return select(nfds, rd, wr, ex, timeout_ms < 0 ? NULL : &tv);
}

#endif /* _WIN32 */
#endif /* DEMO_OS_H */
