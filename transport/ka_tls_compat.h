/* ka_tls_compat.h: what the TLS adapters share, included by each adapter's
 * .c file only (not installed): the platform headers, the socket calls and
 * the clock each adapter's own BIO needs, the message helper, and the
 * check of the command-line form's options. MIT licensed; see README.md. */
#ifndef KA_TLS_COMPAT_H
#define KA_TLS_COMPAT_H

#ifndef _WIN32
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#ifndef _BSD_SOURCE
#define _BSD_SOURCE
#endif
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE
#endif
#endif

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ka_client.h"

#ifdef _WIN32
#define KA_TLS_SEND_FLAGS 0
static int  tls_sock_err(void) { return WSAGetLastError(); }
static int  tls_would_block(int e) { return e == WSAEWOULDBLOCK; }
static int  tls_interrupted(int e) { return e == WSAEINTR; }
static int  tls_peer_gone(int e) { return e == WSAECONNRESET || e == WSAECONNABORTED; }
static unsigned long long tls_now_us(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (unsigned long long)(c.QuadPart / f.QuadPart) * 1000000u +
           (unsigned long long)(c.QuadPart % f.QuadPart) * 1000000u / (unsigned long long)f.QuadPart;
}
#else
#ifdef MSG_NOSIGNAL
#define KA_TLS_SEND_FLAGS MSG_NOSIGNAL
#else
#define KA_TLS_SEND_FLAGS 0             /* the library set SO_NOSIGPIPE on the socket */
#endif
static int  tls_sock_err(void) { return errno; }
static int  tls_would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }
static int  tls_interrupted(int e) { return e == EINTR; }
static int  tls_peer_gone(int e) { return e == EPIPE || e == ECONNRESET; }
static unsigned long long tls_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000u + (unsigned long long)ts.tv_nsec / 1000u;
}
#endif

static void tls_msg(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (!msg || !len) return;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);      /* NOLINT(clang-analyzer-valist.Uninitialized): va_start is just above */
    va_end(ap);
}

/* An insecure transport works (KA_TLS_INSECURE), and each adapter's _new
 * says why it should not be used, in the same words. */
static void tls_warn_insecure(char *msg, size_t msglen)
{
    tls_msg(msg, msglen, "TLS: WARNING: server certificates are not verified (insecure): "
            "anyone on the path can read and change this connection");
}

/* The command-line form (--tls and its options): 1 when a transport is to
 * be made; 0 without --tls and none of its options (plain TCP, msg
 * emptied); KA_EINVAL for an option given without --tls. */
static int tls_args_want(int tls, const char *cafile, const char *cert, const char *key,
                         const char *servername, int insecure, char *msg, size_t msglen)
{
    if (tls) return 1;
    if (cafile || cert || key || servername || insecure) {
        tls_msg(msg, msglen, "--cafile, --cert, --key, --servername and --insecure need --tls");
        return KA_EINVAL;
    }
    tls_msg(msg, msglen, "%s", "");
    return 0;
}

#endif
