/* ka_client: one TCP client connection kept alive. MIT licensed; see LICENSE.
 *
 * This is the whole public interface. It gives away no internals: the client
 * is opaque, configured through a plain struct, driven by ka_client_poll() or
 * by the application's own event loop, and it reports through callbacks.
 *
 * Contract rules (see README.md): enum values and error codes are only ever
 * added at the end, never renumbered or removed. Every function taking a
 * client accepts NULL and returns KA_EINVAL (or does nothing for void ones).
 */
#ifndef KA_CLIENT_H
#define KA_CLIENT_H

#define KA_VERSION_MAJOR 1
#define KA_VERSION_MINOR 1
#define KA_VERSION_PATCH 0
#define KA_VERSION_STRING "1.1.0"
#define KA_VERSION_NUM ((KA_VERSION_MAJOR << 16) | (KA_VERSION_MINOR << 8) | KA_VERSION_PATCH)

#include <stddef.h>
#ifdef _WIN32
/* SOCKET and fd_set: from <winsock2.h>, or from the <winsock.h> that a
 * <windows.h> included first has already brought (winsock2.h after it
 * would clash); either order works. */
#if !defined(_WINSOCK2API_) && !defined(_WINSOCKAPI_)
#include <winsock2.h>
#endif
#else
#include <sys/select.h>         /* fd_set */
#endif

struct sockaddr;                /* <sys/socket.h> / <winsock2.h>: only pointers to it here */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- types -------------------------------------------------------------- */

typedef struct ka_client ka_client;     /* opaque */

#ifdef _WIN32
typedef SOCKET ka_socket;
#define KA_INVALID_SOCKET INVALID_SOCKET
#else
typedef int ka_socket;
#define KA_INVALID_SOCKET (-1)
#endif

/* Return codes: 0 is success, failures are negative. */
#define KA_OK         0
#define KA_EINVAL     (-1)  /* NULL argument, bad config value */
#define KA_ENOMEM     (-2)  /* allocation failed */
#define KA_ESTATE     (-3)  /* not allowed in the client's current state */
#define KA_EAGAIN     (-4)  /* the send queue has no room for the whole message */
#define KA_ENOTCONN   (-5)  /* the client is stopped: nothing will be sent */
#define KA_EFDSETSIZE (-6)  /* socket number >= FD_SETSIZE: cannot go in an fd_set */
#define KA_ESYS       (-7)  /* select()/poll() failed; see errno / WSAGetLastError() */
#define KA_EMSGSIZE   (-8)  /* the message is larger than send_buffer_size: it can never fit */

typedef enum ka_state {
    KA_STATE_IDLE,        /* created, not started */
    KA_STATE_CONNECTING,  /* resolving / non-blocking connect in flight */
    KA_STATE_CONNECTED,
    KA_STATE_BACKOFF,     /* waiting before the next attempt */
    KA_STATE_STOPPED      /* ka_client_stop() was called, or it gave up */
} ka_state;

typedef enum ka_reason {
    KA_REASON_NONE = 0,
    KA_REASON_PEER_CLOSED,     /* orderly shutdown: recv() returned 0 (FIN) */
    KA_REASON_PEER_RESET,      /* ECONNRESET/EPIPE (ECONNREFUSED once connected): peer process died, or peer host rebooted and answered a probe with RST */
    KA_REASON_TIMEOUT,         /* ETIMEDOUT: keepalive probes or the user timeout ran out: host down, or path lost */
    KA_REASON_UNREACHABLE,     /* EHOSTUNREACH / ENETUNREACH / EHOSTDOWN */
    KA_REASON_REFUSED,         /* connect: ECONNREFUSED */
    KA_REASON_CONNECT_TIMEOUT, /* connect did not finish within connect_timeout_ms */
    KA_REASON_RESOLVE,         /* name resolution failed; sys_error holds the getaddrinfo() code */
    KA_REASON_HEARTBEAT,       /* nothing received for idle_timeout_ms */
    KA_REASON_LOCAL,           /* ka_client_disconnect() / ka_client_stop() */
    KA_REASON_ERROR,           /* any other socket error: see sys_error */
    KA_REASON_STALLED,         /* the peer answered but kept its receive window closed for stall_timeout_ms */
    KA_REASON_ABORTED,         /* ECONNABORTED: the local stack aborted the connection (e.g. `ss -K`, a mobile OS on a network change) */
    KA_REASON_TLS              /* the transport's session failed (TLS handshake, certificate, alert): sys_error is the transport's code, ka_client_transport_error() its text */
} ka_reason;

typedef struct ka_disconnect_info {
    ka_reason reason;
    int sys_error;              /* errno, or WSAGetLastError() on Windows; 0 if none */
    unsigned long connected_ms; /* how long the connection had been up (saturates at ULONG_MAX) */
    size_t unsent_bytes;        /* bytes accepted by ka_client_send that never reached the kernel and were dropped */
} ka_disconnect_info;

typedef struct ka_retry_info {
    unsigned attempt;           /* 1 for the first retry after a success, 2 for the next, ... */
    unsigned delay_ms;          /* the next attempt starts this long from now */
    ka_reason reason;           /* why the previous connection or attempt ended */
    int sys_error;
} ka_retry_info;

/* Log levels passed to on_log. */
#define KA_LOG_DEBUG 0
#define KA_LOG_INFO  1
#define KA_LOG_WARN  2

struct ka_health;               /* below: on_health's argument */

/* Every callback runs from inside a ka_client_* call on the same thread
 * (poll, process, process_socket, resolved, disconnect, stop, finish;
 * start, retry_now and retry_in run only on_log and the hooks that open an
 * attempt: resolve, on_configure, on_socket), never from a signal or
 * another thread.
 * Any callback may call ka_client_send, ka_client_ready, ka_client_ack,
 * ka_client_retry_in, ka_client_disconnect, ka_client_retry_now,
 * ka_client_stop and ka_client_free on its own client.
 * ka_client_free from a callback is deferred: the client is released when
 * the outermost ka_client_* call that ran the callback returns, and must not
 * be touched after that. */
typedef struct ka_callbacks {
    void (*on_connect)(ka_client *c, void *user);
    void (*on_data)(ka_client *c, const void *data, size_t len, void *user);
    void (*on_disconnect)(ka_client *c, const ka_disconnect_info *info, void *user); /* an established connection ended */
    void (*on_retry)(ka_client *c, const ka_retry_info *info, void *user);           /* a new attempt is scheduled */
    void (*on_give_up)(ka_client *c, const ka_retry_info *last, void *user);         /* max_attempts reached; now STOPPED */
    /* Diagnostics the library never prints itself: a keepalive option the OS
     * refused and which keepalive mechanism was used (said once, for the
     * client's first socket), each connect attempt. */
    void (*on_log)(ka_client *c, int level, const char *msg, void *user);
    /* Socket notifications for event loops (c-ares' sock_state_cb, curl's
     * CURLMOPT_SOCKETFUNCTION): called whenever a socket the client wants
     * watched appears, changes what it waits for (want: KA_READ | KA_WRITE),
     * or goes away (want 0, called BEFORE the socket is closed, so an epoll
     * user never holds a stale registration even when the OS hands out the
     * same number again). Covers every socket: the connection, each attempt
     * of a Happy Eyeballs race, and the descriptor that signals the end of a
     * name lookup. Report readiness with ka_client_process_socket. It must
     * not call back into the client. */
    void (*on_socket)(ka_client *c, ka_socket s, int want, void *user);
    /* Called on each new socket before connect(): set TCP_NODELAY, SO_MARK,
     * a DSCP class... Non-zero fails that address (KA_REASON_ERROR, the
     * value as sys_error) and the race goes on with the next. It must not
     * call back into the client. */
    int  (*on_configure)(ka_client *c, ka_socket s, void *user);
    /* With keep_writing_after_fin: the peer has shut down its side (FIN)
     * and every byte it sent went to on_data. The client keeps sending its
     * queue; the connection ends (KA_REASON_PEER_CLOSED) once the client's
     * own side is finished (ka_client_finish, everything written) or the
     * peer resets or dies: with nothing left to send, the library looks at
     * the connection every keepalive interval (at most 1 s), since a
     * socket after a FIN reads as ready for good. */
    void (*on_eof)(ka_client *c, void *user);
    /* Early warning: the link turned from good to degraded, or back (see
     * ka_health). Comes before a deadline ends the connection; an idle
     * healthy connection is never woken to check. */
    void (*on_health)(ka_client *c, const struct ka_health *h, void *user);
} ka_callbacks;                 /* any member may be NULL */

/* ---- statistics and early warning ---------------------------------------- */

/* ka_health.cause: why the link is degraded */
#define KA_HEALTH_UNACKED  1u   /* sent data waited longer than health_threshold_ms for an acknowledgement */
#define KA_HEALTH_RETRANS  2u   /* the kernel is retransmitting (timeouts or loss recovery) */
#define KA_HEALTH_STALLED  4u   /* the peer's receive window is closed */

typedef struct ka_health {
    int degraded;               /* 1: the link turned bad; 0: good again */
    unsigned cause;             /* KA_HEALTH_* bits; 0 when good */
    unsigned long unacked_ms;   /* how long the oldest data has waited for an acknowledgement */
    unsigned long rtt_us;       /* smoothed round-trip time, 0 if unknown */
    unsigned long retransmits;  /* retransmissions of the oldest data so far */
    unsigned long deadline_ms;  /* left before the busy deadline ends the connection; 0 if none runs */
} ka_health;

/* ka_stats.valid: which kernel fields this OS gave for this connection */
#define KA_STATS_RTT        1u  /* rtt_us */
#define KA_STATS_RETRANS    2u  /* retransmits, total_retrans */
#define KA_STATS_UNACKED    4u  /* unacked_bytes */
#define KA_STATS_SENDQ      8u  /* send_queue_bytes */
#define KA_STATS_PEER_WND  16u  /* peer_window */
#define KA_STATS_PROBES    32u  /* probes */
#define KA_STATS_RTTVAR    64u  /* rttvar_us */

#define KA_REASON_SLOTS 32      /* room in ka_stats.disconnects for ka_reason values to come */

/* A picture of the link (ka_client_stats). The caller sets size to
 * sizeof(ka_stats) first: the struct only grows at its end, and a program
 * built against an older, smaller one still works (only the fields it
 * knows are written). Counters run from ka_client_new. */
typedef struct ka_stats {
    size_t size;
    unsigned long long attempts;        /* connect attempts started */
    unsigned long long connections;     /* sessions that came up (on_connect) */
    unsigned long long disconnects[KA_REASON_SLOTS];    /* connections ended, by ka_reason */
    unsigned long long bytes_sent;      /* handed to the transport */
    unsigned long long bytes_received;  /* delivered to on_data */
    unsigned long long messages_sent;   /* handed over whole */
    unsigned long long messages_received;   /* on_data calls */
    unsigned long long bytes_dropped;   /* ka_disconnect_info.unsent_bytes, summed */
    unsigned long long queue_high_water;    /* most bytes the queues ever held */
    unsigned long long connected_ms_total;  /* time connected, the current connection included */
    unsigned long long connected_ms;    /* the current connection; 0 when not connected */
    /* The current connection as the kernel sees it, where the OS tells
     * (Linux TCP_INFO, Windows SIO_TCP_INFO); fields not in valid are 0,
     * never made up. */
    unsigned valid;                     /* KA_STATS_* bits */
    unsigned long rtt_us, rttvar_us;    /* smoothed round trip and its variation */
    unsigned long retransmits;          /* retransmissions of the oldest data under way (Windows: timeout episodes) */
    unsigned long total_retrans;        /* segments retransmitted on this connection (Windows: bytes) */
    unsigned long unacked_bytes;        /* sent, not yet acknowledged */
    unsigned long send_queue_bytes;     /* in the kernel's send queue: unacknowledged plus not yet sent */
    unsigned long peer_window;          /* the peer's advertised receive window */
    unsigned long probes;               /* keepalive or window probes unanswered */
} ka_stats;

/* ---- transports ---------------------------------------------------------- */

/* What a transport's calls return besides a byte count. */
#define KA_TP_WANT_READ  (-1)   /* would block until the socket is readable */
#define KA_TP_WANT_WRITE (-2)   /* would block until the socket is writable */
#define KA_TP_SOCKET     (-3)   /* the socket failed: *err is errno (a WSA code on Windows) */
#define KA_TP_FAILED     (-4)   /* the transport failed (TLS alert, bad certificate...): *err is its own code */

/* A transport carries the application's bytes over each connection: TLS
 * adapters (transport/ka_openssl.h, transport/ka_mbedtls.h) fill one in;
 * NULL in ka_config means plain TCP, which goes through this same
 * interface. The client calls open() on every new connection, handshake()
 * until the session is up (on_connect comes only then), read()/write()
 * for data, shutdown() to end its write side, close() before it closes the
 * socket. A new connection always starts a new session: the send queue
 * holds application messages, never transport records, so what is
 * replayed after a reconnect is plaintext. Every call is made from the
 * client's thread; none may block or call back into the client. */
typedef struct ka_transport {
    void *ctx;                  /* the transport's own, passed back to open() and strerror() */
    /* A connection to host (the endpoint's name or address: for SNI and
     * the certificate check) is up on s. 0 with the session in *session,
     * or KA_TP_FAILED with *err. */
    int  (*open)(void *ctx, ka_socket s, const char *host, void **session, int *err);
    /* Advances the handshake: 0 once the session is up (peer verified),
     * KA_TP_WANT_READ/WRITE, or KA_TP_SOCKET/KA_TP_FAILED with *err.
     * NULL: there is none. */
    int  (*handshake)(void *session, int *err);
    /* Up to len bytes: > 0 read, 0 the peer's orderly end, or a KA_TP_ code. */
    long (*read)(void *session, void *buf, size_t len, int *err);
    /* Up to len bytes: > 0 written, or a KA_TP_ code; after a WANT the same
     * bytes come again (maybe from another address, and maybe more). */
    long (*write)(void *session, const void *buf, size_t len, int *err);
    /* Nonzero when read() has bytes without the socket being readable
     * (decrypted and buffered). NULL: never. */
    int  (*pending)(void *session);
    /* Sends the end of the write side (TLS close_notify): 0 done, or a
     * KA_TP_ code. The library then shuts down the socket's write side.
     * NULL: nothing to send. */
    int  (*shutdown)(void *session, int *err);
    /* Ends the session; the library closes the socket right after. */
    void (*close)(void *session);
    /* Text for one of the transport's own codes (KA_REASON_TLS's
     * sys_error); may use a buffer in ctx, valid until the next call. */
    const char *(*strerror)(void *ctx, int err);
    const char *name;           /* for logs: "TLS (OpenSSL 3.0.15)" */
} ka_transport;

/* One server of several (ka_config.endpoints); host and port as in
 * ka_config. */
typedef struct ka_endpoint {
    const char *host;
    const char *port;
} ka_endpoint;

/* ka_config.family */
#define KA_FAMILY_ANY  0
#define KA_FAMILY_IPV4 4
#define KA_FAMILY_IPV6 6

/* The deadlines. Each holds on its own, whatever the others are set to,
 * counted in the units the OS really uses: Linux and the BSDs take the
 * keepalive times in whole seconds, so each of idle and interval is rounded
 * up to a whole second (at least 1 s) before the sums below are made.
 *
 *  idle dead peer   An idle connection whose peer has vanished is reported
 *                   (KA_REASON_TIMEOUT) keepalive_idle + keepalive_interval *
 *                   keepalive_count after the last packet it received. Kernel
 *                   keepalive probes and counts; an answered probe restarts it.
 *  busy dead path   A connection with sent data unacknowledged is reported
 *                   (KA_REASON_TIMEOUT, or KA_REASON_UNREACHABLE when ICMP
 *                   errors came back) user_timeout_ms after the later of the
 *                   last acknowledgement received and the last new data sent.
 *                   Default: the idle deadline. On Linux the library enforces
 *                   it from TCP_INFO; elsewhere the kernel does, counted from
 *                   the first retransmission (TCP_MAXRT on Windows,
 *                   TCP_RXT_CONNDROPTIME on macOS, TCP_MAXUNACKTIME on
 *                   FreeBSD, whole seconds).
 *  connect          An attempt that has not connected connect_timeout_ms after
 *                   its first connect() is reported (KA_REASON_CONNECT_TIMEOUT).
 *  stall            A peer that answers but keeps its receive window closed is
 *                   alive: it is never reported as a timeout. With
 *                   stall_timeout_ms set, a window closed that long ends the
 *                   connection (KA_REASON_STALLED); with 0 (the default) the
 *                   connection waits, the queue fills and ka_client_send says
 *                   KA_EAGAIN, and nothing is lost when the peer reads again.
 *
 * None of them moves another: the library sets no TCP_USER_TIMEOUT on Linux,
 * because that option also replaces the keepalive probe count, ends zero-window
 * probing of a live peer and cuts SYN retransmission (see README.md, "How a
 * dead peer is found"). */
typedef struct ka_config {   /* NOLINT(clang-analyzer-optin.performance.Padding): 1.0's field order stays; fields are only appended */
    const char *host;                 /* name, IPv4 or IPv6 literal; 1..255 characters */
    const char *port;                 /* number (1..65535) or service name */
    unsigned keepalive_idle_ms;       /* idle time before the first probe (default 5000) */
    unsigned keepalive_interval_ms;   /* between probes (default 5000) */
    unsigned keepalive_count;         /* unanswered probes before the connection is dead (default 3) */
    unsigned user_timeout_ms;         /* busy dead-path deadline (above); 0 = the idle deadline; KA_TIMEOUT_OFF = none */
    unsigned connect_timeout_ms;      /* bound on a whole attempt (default 10000) */
    unsigned backoff_initial_ms;      /* default 1000; at least 1 */
    unsigned backoff_max_ms;          /* default 30000; no delay ever exceeds it */
    double   backoff_multiplier;      /* 1..1000; default 2.0 */
    double   backoff_jitter;          /* 0..1: each delay is drawn uniformly from [d*(1-jitter), d]; default 0.5 */
    unsigned backoff_reset_ms;        /* a connection must stay up this long before the attempt count resets (default 5000) */
    unsigned max_attempts;            /* consecutive failed attempts before giving up; 0 = never give up */
    unsigned heartbeat_interval_ms;   /* send heartbeat_data after this long without sending; 0 = off; longer than 2^31 - 1 (24.8 days) acts as that */
    const void *heartbeat_data;
    size_t   heartbeat_len;           /* 1 .. the session queue's room (session_buffer_size): a heartbeat goes apart from the backlog */
    unsigned idle_timeout_ms;         /* disconnect (KA_REASON_HEARTBEAT) after this long without receiving; 0 = off; longer than 2^31 - 1 (24.8 days) acts as that */
    size_t   send_buffer_size;        /* bound of the outgoing queue (default 65536) */
    unsigned random_seed;             /* seeds this client's own jitter generator (same seed, same delays); 0 = mixed from process id, clock and address */
    ka_callbacks cb;
    void *user;
    /* additions to the original contract */
    size_t   recv_buffer_size;        /* largest chunk handed to on_data (default 16384) */
    /* Allocator hooks for ka_client_new/ka_client_free: both or neither.
     * NULL means malloc/free. ka_client_new allocates the client's block;
     * its queues then come through the same hooks when a message first has
     * to wait, and grow as messages wait (and shrink back when they empty;
     * a stream's 100 ms after it last emptied), so ka_client_send may fail
     * with KA_ENOMEM. Each connection attempt takes one small block (the
     * race's sockets, deadlines and address order: 88 bytes on LP64) and
     * gives it back when the connection is made; a connection takes it
     * again while a look finds sent data waiting for its acknowledgement
     * (the stall detector's write log). An attempt that cannot have it
     * fails with KA_REASON_ERROR (ENOMEM) and is retried. The hooks are
     * part of the settings clients share (see ka_client_new): the block
     * holding shared settings is freed through them too, possibly on
     * another thread than the one that allocated it. */
    void *(*mem_alloc)(size_t size, void *mem_user);
    void  (*mem_free)(void *ptr, void *mem_user);
    void   *mem_user;
    unsigned stall_timeout_ms;        /* end a connection whose peer kept its window closed this long (KA_REASON_STALLED); 0 = never */
    unsigned resolve_timeout_ms;      /* bound on a name lookup, apart from connect_timeout_ms (default 5000) */

    /* Reaching the server */
    const ka_endpoint *endpoints;     /* several servers (primary, backup...); host/port are then ignored. Copied. */
    size_t   endpoint_count;          /* 0 = host/port; at most KA_MAX_ENDPOINTS */
    unsigned connection_attempt_delay_ms; /* RFC 8305: start the next address this long after the previous one (default 250) */
    int      family;                  /* KA_FAMILY_ANY (default), KA_FAMILY_IPV4 or KA_FAMILY_IPV6 */
    const char *bind_address;         /* local address to connect from (IPv4 or IPv6 literal; only that family is dialled); NULL = any. Copied. */
    const char *bind_interface;       /* local interface name ("eth1", "wwan0"): SO_BINDTODEVICE on Linux, IP_BOUND_IF on macOS, IP_UNICAST_IF on Windows; NULL = any. Copied. */
    /* An asynchronous resolver of the application's own (c-ares...), in
     * place of the library's helper thread: resolve() starts a lookup and
     * returns 0 (or non-zero, a getaddrinfo-style code, for a failure at
     * once); the answer comes back through ka_client_resolved, from the
     * client's own thread, within resolve_timeout_ms. resolve_cancel()
     * (may be NULL) is called when the client no longer wants the answer
     * (timeout, stop, free); a late ka_client_resolved is then ignored.
     * resolve() may answer at once by calling ka_client_resolved from
     * inside; apart from that neither calls back into the client. */
    int  (*resolve)(ka_client *c, const char *host, const char *port, int family, void *user);
    void (*resolve_cancel)(ka_client *c, void *user);

    /* Sessions for real protocols; seeing the link */
    int      hold_until_ready;        /* 1: after each connect only what is sent from on_connect until ka_client_ready() goes out; the backlog waits */
    int      replay_until_acked;      /* 1: messages the kernel took are kept until ka_client_ack() and sent again on the next connection */
    int      keep_writing_after_fin;  /* 1: the peer's FIN ends its side only (on_eof); the client keeps sending */
    unsigned health_threshold_ms;     /* on_health: degraded when data waits this long for an ACK (0 = a quarter of the busy deadline; with user_timeout_ms KA_TIMEOUT_OFF, never for waiting alone) */
    size_t   session_buffer_size;     /* room for what is sent before the session is ready, apart from the backlog (0 = the smaller of send_buffer_size and 4096; at most 1 GiB) */
    const ka_transport *transport;    /* NULL = plain TCP; e.g. TLS from transport/ka_openssl.h */
    /* Retry policy: replaces the computed delay before each retry; info
     * says which attempt and why, proposed_ms is what the backoff rule
     * drew. The result is still capped by backoff_max_ms. It must not call
     * back into the client. NULL: the backoff rule alone. */
    unsigned (*next_delay)(ka_client *c, const ka_retry_info *info, unsigned proposed_ms, void *user);
} ka_config;

#define KA_MAX_ENDPOINTS 16
#define KA_MAX_ADDRS     8      /* addresses kept per name: the first 8 the resolver gives */

/* user_timeout_ms = KA_TIMEOUT_OFF: no busy-path deadline at all (the OS's
 * own retransmission limit applies: about 15 minutes on Linux). */
#define KA_TIMEOUT_OFF 0xFFFFFFFFu

/* Limits enforced by ka_client_new (the Linux kernel's own limits). */
#define KA_MAX_HOST_LEN       255
#define KA_MAX_KEEPALIVE_MS   32767000u   /* TCP_KEEPIDLE / TCP_KEEPINTVL: 32767 s */
#define KA_MAX_KEEPALIVE_CNT  127u        /* TCP_KEEPCNT */

/* Readiness bits for ka_client_want() / ka_client_process_events(). */
#define KA_READ  1
#define KA_WRITE 2

/* ---- configuration and life cycle ----------------------------------------- */


/* Fills every field with its default; host and port are NULL. */
void        ka_config_init(ka_config *cfg);

/* NULL if cfg is valid, else the name of its first invalid field, spelled as
 * in ka_config ("port", "backoff_jitter", ...), so an application can tell
 * its user which setting is wrong. NULL cfg: "cfg". The rules: host 1..255
 * characters, a name or an address, an IPv6 literal bare or in brackets
 * ("[::1]", taken without them), never "host:port"; port a plain decimal
 * 1..65535 or a service name starting with a letter; the ranges given in
 * ka_config and the limits below. */
const char *ka_config_error(const ka_config *cfg);

/* Validates cfg and creates a client in KA_STATE_IDLE. Copies host, port
 * and heartbeat_data, so cfg may go away afterwards. Returns 0, KA_EINVAL
 * (bad config: ka_config_error names the field) or KA_ENOMEM. *out is NULL on failure. The client makes one
 * allocation here, then grows its queues on demand and takes one small
 * block per connection attempt (see mem_alloc; getaddrinfo() allocates
 * inside libc), so that an idle connected client holds this block only.
 * Clients made from equal configs share one copy of the settings: every
 * field counts (callbacks, mem_user and the allocator hooks included)
 * except host, port, endpoints and user; strings, heartbeat bytes and
 * bind_address by content. The copy lives in the block of the first of
 * those clients, and that whole block stays allocated after its
 * ka_client_free until the last client sharing it is freed, through
 * mem_free and on whichever thread frees that client (hooks used by
 * clients on several threads must be thread-safe). Creating and freeing
 * clients on different threads at once is safe (the list of shared
 * settings has a lock). In no-heap mode, and in builds with
 * -DKA_NO_THREADS, each client keeps its own copy. */
int         ka_client_new(ka_client **out, const ka_config *cfg);

/* No-heap mode: ka_client_size(cfg) says how many bytes a client with this
 * config needs (0 if cfg is invalid); ka_client_init builds it inside mem,
 * which the caller owns and which must stay valid until ka_client_free (it
 * then closes the socket and releases nothing). mem must be aligned for
 * pointers and 64-bit integers: memory from malloc is; for a static or
 * stack array use a union with an unsigned long long. The size is a
 * multiple of 8, so clients can sit back to back in one array.
 * Returns 0, KA_EINVAL (bad config, too small or misaligned mem) or, on
 * Windows, KA_ENOMEM when WSAStartup fails. Name
 * resolution (getaddrinfo) may still allocate inside libc. */
size_t      ka_client_size(const ka_config *cfg);
int         ka_client_init(ka_client **out, void *mem, size_t size, const ka_config *cfg);

/* Starts the first attempt at once: a name lookup (on a helper thread,
 * never blocking the caller) or, for an address, the first connect.
 * Runs no callback but on_log and the hooks that open an attempt (resolve,
 * on_configure, on_socket); an attempt that fails at once (no usable
 * address, socket() refused) is reported, on_retry or on_give_up, by the
 * next poll/process, for which ka_client_timeout_ms is then 0. Allowed from IDLE and from STOPPED (a restart, e.g.
 * after giving up); KA_ESTATE otherwise. */
int         ka_client_start(ka_client *c);

/* One select() round: waits for the socket or the next timer, whichever is
 * nearer, but at most timeout_ms (any negative value: until something
 * happens), then runs whatever is due. Returns 0, KA_ESTATE when IDLE or STOPPED (nothing to
 * wait for), or KA_ESYS. A signal interrupting select() ends the round
 * early with 0. For a socket numbered >= FD_SETSIZE, poll() is used. */
int         ka_client_poll(ka_client *c, int timeout_ms);

/* Takes the whole message, or nothing: KA_EAGAIN when it does not fit in
 * what is left of send_buffer_size now, KA_EMSGSIZE when it is larger than
 * send_buffer_size and so can never fit. Connected with nothing queued, the
 * kernel takes it straight from data and only what it leaves is copied
 * (with replay_until_acked the message is kept as well); otherwise it is
 * copied into the queue. Allowed in every state but STOPPED (KA_ENOTCONN)
 * and finishing (KA_ESTATE).
 * Two queues: what the client's own callbacks send while a connection's
 * session is not ready (on_connect's login; with hold_until_ready, also
 * on_data's answers until ka_client_ready) goes on the wire first, in
 * order, with room of its own (session_buffer_size), and dies with that
 * connection; everything else, including what the application sends from
 * outside the callbacks meanwhile, is the backlog, which goes out once the
 * session is ready. A finishing client still takes its callbacks'
 * handshake messages. Backlog messages never handed to the
 * kernel survive a reconnect; a message partly written when a connection
 * died is dropped, its remainder counted in ka_disconnect_info.unsent_bytes
 * (with replay_until_acked it is kept whole and sent again). Each message
 * costs 1-5 bytes of bookkeeping (1 under 128 bytes), bounded by an eighth
 * of the queue plus 64 bytes: messages under 8 bytes fill it sooner. len 0
 * is a no-op, except that a STOPPED client still answers KA_ENOTCONN. */
int         ka_client_send(ka_client *c, const void *data, size_t len);

/* Graceful end: accept no more messages (ka_client_send returns
 * KA_ESTATE), deliver what is queued (reconnecting if need be, as usual;
 * with replay_until_acked, until it is acknowledged), then shut down the
 * write side (FIN) and stop heartbeats. The connection stays open for
 * reading: when the peer closes it, on_disconnect reports
 * KA_REASON_PEER_CLOSED (or whatever ended it) and the client is STOPPED
 * without a retry. With nothing queued and no connection it stops at once.
 * ka_client_stop still ends it at any time. KA_ESTATE when IDLE or STOPPED. */
int         ka_client_finish(ka_client *c);

/* The session is ready (e.g. MQTT CONNACK, redis +OK): with
 * hold_until_ready, the backlog and heartbeats go out from now on, in
 * order. 0 (also when already ready, or without hold_until_ready);
 * KA_ESTATE when not connected. */
int         ka_client_ready(ka_client *c);

/* With replay_until_acked: the peer's protocol confirmed the `messages`
 * oldest messages handed to the kernel (MQTT PUBACK, a line number...);
 * they are dropped from the queue. 0; KA_EINVAL if fewer than that many
 * messages were handed over whole (nothing is dropped then); KA_ESTATE
 * without replay_until_acked. Messages sent before the session was ready
 * and heartbeats are not counted: they belong to their connection. */
int         ka_client_ack(ka_client *c, size_t messages);

/* Drops the current connection (or connect attempt), runs on_disconnect
 * with KA_REASON_LOCAL if a connection was up, and schedules a reconnect per
 * the backoff rules. No-op in other states. */
void        ka_client_disconnect(ka_client *c);

/* In BACKOFF: starts the next attempt now, running callbacks as
 * ka_client_start does. KA_ESTATE in other states. */
int         ka_client_retry_now(ka_client *c);

/* Closes the connection (on_disconnect with KA_REASON_LOCAL if one was up)
 * and makes no more attempts; from IDLE too. Queued messages stay queued: ka_client_pending
 * shows them, and a later ka_client_start sends them. Idempotent. */
void        ka_client_stop(ka_client *c);

/* Closes and releases everything. NULL is fine. No callback runs but
 * on_socket (each watched socket withdrawn, want 0, before it closes) and
 * resolve_cancel (a pending lookup of the application's): once it returns,
 * nothing of the client is registered anywhere and no callback of it runs
 * again. A lookup on the helper thread finishes on its own. From a
 * callback, see ka_callbacks above. */
void        ka_client_free(ka_client *c);

ka_state    ka_client_state(const ka_client *c);   /* NULL: KA_STATE_STOPPED */

/* Which endpoint the current connection (or attempt) goes to: an index into
 * ka_config.endpoints (0 for the host/port form). In BACKOFF and STOPPED,
 * and so in on_disconnect, on_retry and on_give_up, the one whose attempt
 * or connection just ended; -1 before the first attempt. */
int         ka_client_endpoint(const ka_client *c);

/* The answer to a resolve() hook's lookup: n addresses (struct sockaddr_in
 * or sockaddr_in6, their family says which; a port of 0 is replaced by the
 * endpoint's port), in the resolver's order, or error non-zero (EAI_AGAIN:
 * resolver unreachable, EAI_NONAME: no such name, ...; see
 * ka_sys_strerror). At most KA_MAX_ADDRS are used. From the client's own
 * thread. Starts the connect; an error, or addresses that all fail at once,
 * runs on_retry or on_give_up from inside this call (answering from inside
 * resolve() under ka_client_start, the next poll reports it instead).
 * KA_ESTATE when no lookup is waiting for an answer (late or cancelled). */
int         ka_client_resolved(ka_client *c, const struct sockaddr *const *addrs, size_t n, int error);

/* Bytes queued and not yet handed to the kernel (both queues). With
 * replay_until_acked, ka_client_unacked is the bytes handed over and not
 * yet confirmed; send_buffer_size bounds the backlog's pending plus
 * unacked. ka_client_unacked_messages counts those messages. When a
 * connection ends, what was unconfirmed goes back to pending (it will be
 * sent again), so in on_disconnect both unacked counts are already 0. */
size_t      ka_client_pending(const ka_client *c);
size_t      ka_client_unacked(const ka_client *c);
size_t      ka_client_unacked_messages(const ka_client *c);

/* Fills *out (set out->size = sizeof(ka_stats) first; see ka_stats): 0,
 * or KA_EINVAL for a size too small for even the first counters. */
int         ka_client_stats(const ka_client *c, ka_stats *out);

/* Moves the next attempt: ms from now (a server said "retry after 30 s";
 * 0: the network just came back). In BACKOFF it replaces the pending
 * delay; while connecting or connected it is the delay for the next retry,
 * instead of the backoff rule. ms is not capped by backoff_max_ms (a
 * server's own retry-after wins). Allowed from callbacks. Called outside a
 * callback with 0 in BACKOFF, it starts the attempt as ka_client_retry_now
 * does. KA_ESTATE when IDLE or STOPPED. */
int         ka_client_retry_in(ka_client *c, unsigned ms);

/* Text for the last KA_REASON_TLS failure (the transport's strerror), or
 * NULL when there was none. Valid until the next call into the client. */
const char *ka_client_transport_error(const ka_client *c);

/* ---- the application's own select() loop ---------------------------------- */

/* Adds the client's sockets (the connection, or every address being raced,
 * and the lookup's wake-up socket) to rd and/or wr (never zeroes them) and
 * returns the nfds argument select() needs (highest socket + 1), 0 if
 * there is no socket now, or KA_EFDSETSIZE if a socket cannot be put in an fd_set
 * (number >= FD_SETSIZE on POSIX, set full on Windows): use ka_client_socket
 * with poll() then. On Windows a failed connect is signalled in the
 * exception set: use ka_client_fdset_ex / ka_client_process_ex there. */
int         ka_client_fdset(ka_client *c, fd_set *rd, fd_set *wr);

/* Milliseconds until the client's next timer, 0 if one is already due,
 * -1 if none. */
long        ka_client_timeout_ms(const ka_client *c);

/* Handles whatever select() reported for the client's socket in rd / wr
 * (either may be NULL) and runs due timers. Call it after every select(),
 * also when select() timed out. Returns 0, or KA_ESTATE when IDLE/STOPPED. */
int         ka_client_process(ka_client *c, const fd_set *rd, const fd_set *wr);

/* The same with the exception set, which Windows needs for connect. */
int         ka_client_fdset_ex(ka_client *c, fd_set *rd, fd_set *wr, fd_set *ex);
int         ka_client_process_ex(ka_client *c, const fd_set *rd, const fd_set *wr, const fd_set *ex);

/* ---- poll(), epoll, kqueue, GUI loops -------------------------------------- */

/* With on_socket set, the library says which sockets to watch and for
 * what; report each one's readiness here (KA_READ | KA_WRITE; treat
 * POLLERR/POLLHUP as KA_READ), or s = KA_INVALID_SOCKET and ready 0 for a
 * timer wake-up (ka_client_timeout_ms). Runs due timers too. Returns 0, or
 * KA_ESTATE when IDLE/STOPPED. A socket the client no longer knows is
 * ignored. */
int         ka_client_process_socket(ka_client *c, ka_socket s, int ready);

/* The single-socket calls below serve loops that do not set on_socket.
 * ka_client_socket is the connected socket; while connecting, the socket of
 * the newest attempt, or during a name lookup the descriptor that signals
 * its end (KA_INVALID_SOCKET if none). It changes on every reconnect: after
 * each ka_client_* call, compare and re-register. A closed socket's number
 * can come back at once for the next socket, which a comparison cannot
 * see and epoll (which drops a closed descriptor) does not survive: epoll
 * and libuv loops set on_socket instead; loops that rebuild their sets
 * every round (select, poll) are unaffected. Attempts other than the
 * newest are checked on every call, and at least every
 * connection_attempt_delay_ms. */
ka_socket   ka_client_socket(const ka_client *c);

/* KA_READ | KA_WRITE: what the client waits for on ka_client_socket() now. */
int         ka_client_want(const ka_client *c);

/* Reports readiness (KA_READ | KA_WRITE, or 0 for a timer wake-up; treat
 * POLLERR/POLLHUP as KA_READ) and runs due timers. */
int         ka_client_process_events(ka_client *c, int ready);

/* ---- strings and helpers ----------------------------------------------------- */

const char *ka_reason_str(ka_reason r);     /* "peer reset", ...; never NULL */
const char *ka_state_str(ka_state s);       /* "connected", ...; never NULL */
const char *ka_strerror(int err);           /* names each KA_E... code; never NULL */

/* Text for ka_disconnect_info.sys_error / ka_retry_info.sys_error, read the
 * way the reason says: a getaddrinfo() code for KA_REASON_RESOLVE, else an
 * errno value (a WSA code on Windows). Never NULL; the text is static and
 * the call is thread-safe (the library's own table for the network errors,
 * strerror() is not used). */
const char *ka_sys_strerror(ka_reason reason, int sys_error);

/* The library's version at run time, which may differ from the KA_VERSION_*
 * macros a program was compiled with: "1.1.0" and KA_VERSION_NUM's form. */
const char *ka_version(void);
unsigned    ka_version_num(void);

/* The backoff rule on its own, for tests, simulations and benchmarks: the
 * delay before retry `attempt` (1-based) under cfg's backoff fields, with
 * jitter drawn from *rng, the generator's 32-bit state (any value, 0
 * included; each call advances it). ka_client uses exactly this, with its
 * state seeded from random_seed. */
unsigned    ka_backoff_delay(const ka_config *cfg, unsigned attempt, unsigned *rng);

#ifdef __cplusplus
}
#endif
#endif /* KA_CLIENT_H */
