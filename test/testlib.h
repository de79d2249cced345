/* Tiny test harness and real-socket helpers shared by the test programs.
 *
 * A test is a void function; CHECK() records a failure and returns from it,
 * SKIP() says why it could not run. Waiting is always "poll the client until
 * a condition holds or a deadline passes", never a bare sleep. */
#ifndef KA_TESTLIB_H
#define KA_TESTLIB_H

#include <stddef.h>
#include "ka_client.h"

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#define T_ECONNRESET WSAECONNRESET
#define T_ECONNREFUSED WSAECONNREFUSED
#define T_ENOMEM WSAENOBUFS
#else
#include <errno.h>
#include <netdb.h>
#define T_ECONNRESET ECONNRESET
#define T_ECONNREFUSED ECONNREFUSED
#define T_ENOMEM ENOMEM
#endif

/* ---- harness ---- */

typedef struct t_case { const char *name; void (*fn)(void); } t_case;

void t_fail(const char *file, int line, const char *what);
void t_skip(const char *why);
int  t_failed_now(void);
int  t_run(const t_case *cases, size_t n, int argc, char **argv);

#define CHECK(cond) do { if (!(cond)) { t_fail(__FILE__, __LINE__, #cond); return; } } while (0)
#define CHECK_EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) { char m_[256]; snprintf(m_, sizeof m_, "%s == %s (%lld vs %lld)", #a, #b, a_, b_); \
        t_fail(__FILE__, __LINE__, m_); return; } } while (0)
#define SKIP(why) do { t_skip(why); return; } while (0)

/* ---- time ---- */

/* 1 under the sanitizers, valgrind and emulators (KA_TEST_QUICK): loops
 * that only add confidence run fewer times. */
int t_quick(void);

unsigned long long t_now_ms(void);
void t_sleep_ms(int ms);

/* ---- sockets (the test's side of the connection) ---- */

void      t_net_init(void);
ka_socket t_listen(const char *addr, char *port_out, size_t port_len); /* non-blocking, ephemeral port */
ka_socket t_listen_on(const char *addr, const char *port, int backlog);  /* fixed port; KA_INVALID_SOCKET on failure */
void      t_close(ka_socket s);
void      t_reset(ka_socket s);                 /* close with SO_LINGER 0: the peer sees RST */
void      t_nonblock(ka_socket s);
int       t_set_rcvbuf(ka_socket s, int bytes);
int       t_set_sndbuf(ka_socket s, int bytes);
int       t_last_error(void);
int       t_under_wine(void);                   /* 1 when a Windows build runs under Wine */
int       t_free_port(char *port_out, size_t port_len); /* a loopback port nobody listens on */
long      t_open_fds(void);                     /* descriptors this process holds (Linux); -1 elsewhere */

/* Blocking-ish peer helpers that keep polling the client while they wait,
 * so client and peer can live in one thread. c may be NULL. */
ka_socket t_accept(ka_socket l, ka_client *c, int ms);
long      t_recv_some(ka_socket s, void *buf, size_t len, ka_client *c, int ms);   /* >0 bytes, 0 EOF, -1 error/timeout */
int       t_recv_exact(ka_socket s, void *buf, size_t len, ka_client *c, int ms);  /* 0 when all of it came */
int       t_send_all(ka_socket s, const void *buf, size_t len, ka_client *c, int ms);

/* ---- client side ---- */

/* What the recording callbacks saw. */
typedef struct t_rec {
    int connects, disconnects, retries, give_ups, warnings;
    ka_disconnect_info last_di;
    ka_retry_info last_ri;
    unsigned delays[64];           /* delay_ms of each on_retry, up to 64 */
    unsigned attempts[64];
    unsigned long long connect_ms, disconnect_ms;   /* t_now_ms() at the last of each */
    unsigned char data[65536];
    size_t dlen;
    char warning[160];             /* the first KA_LOG_WARN line */
} t_rec;

void t_config(ka_config *cfg, const char *host, const char *port, t_rec *rec); /* fast defaults + recording callbacks */
int  t_poll_until(ka_client *c, const int *counter, int target, int ms);        /* 0 when *counter >= target */
void t_poll_for(ka_client *c, int ms);
int  t_poll_data(ka_client *c, const t_rec *rec, size_t n, int ms);            /* 0 when rec->dlen >= n */                                           /* keep polling for ms */

#endif
