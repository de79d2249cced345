/* ka_openssl: TLS for ka_client through OpenSSL (1.1.1 or 3.x).
 * MIT licensed; see README.md, "TLS and other transports".
 *
 *   ka_openssl_config tc = { 0 };
 *   ka_transport *tls;
 *   char msg[256];
 *   tc.ca_file = "ca.pem";                 (NULL: the system's trust store)
 *   if (ka_openssl_new(&tls, &tc, msg, sizeof msg) < 0) { puts(msg); exit(1); }
 *   cfg.transport = tls;                   (then ka_client_new as usual)
 *   ...
 *   ka_client_free(c);
 *   ka_openssl_free(tls);                  (after every client that uses it)
 *
 * Every connection the client makes starts a TLS session over its socket:
 * the endpoint's host is sent as SNI (names only: never an IP literal) and
 * the server's certificate is checked against it (a name as a DNS name, an
 * IP literal as an IP address), unless server_name overrides it. The client
 * calls on_connect once the handshake is done and the certificate verified.
 * A failed handshake ends the attempt with KA_REASON_TLS: sys_error is one
 * of the codes below and ka_client_transport_error() says why in words
 * ("certificate has expired", "hostname mismatch"...); the usual backoff
 * applies. A socket error (reset, timeout) is reported as on plain TCP.
 *
 * Sessions are resumed across reconnects: the transport keeps the latest
 * session of each host (up to KA_OPENSSL_CACHE hosts) and offers it on the
 * next connection; a server that restarted simply does a full handshake.
 *
 * One transport may serve several clients, on one thread at a time (its
 * cache, its error text and its statistics are not locked; the words for a
 * code are those of the latest failure with that code). It must
 * outlive them: the client keeps a pointer to it. The library itself never
 * links OpenSSL: this file is its own library (libka_openssl.a), linked
 * with -lssl -lcrypto. */
#ifndef KA_OPENSSL_H
#define KA_OPENSSL_H

#include <stddef.h>
#include "ka_client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ka_openssl_config {
    const char *ca_file;        /* PEM file of trusted CAs; NULL: the system's store (OpenSSL's default paths) */
    const char *server_name;    /* name for SNI and the certificate check; NULL: each endpoint's host */
    const char *cert_file;      /* client certificate chain (PEM) for servers that ask; NULL: none */
    const char *key_file;       /* its private key (PEM); NULL: in cert_file */
    int insecure;               /* 1: accept any certificate (tests only): ka_openssl_new returns KA_TLS_INSECURE */
} ka_openssl_config;

/* ka_openssl_new's answer when cfg->insecure is set: the transport works,
 * verifies nothing, and msg holds a warning to show the user. */
#define KA_TLS_INSECURE 1

/* The transport's codes (KA_REASON_TLS's sys_error; text through
 * ka_client_transport_error() or tp->strerror(tp->ctx, code)). */
#define KA_OPENSSL_E_SETUP   1          /* the session could not be created (memory, bad name) */
#define KA_OPENSSL_E_EOF     2          /* the server closed the connection during the handshake (not TLS?) */
#define KA_OPENSSL_E_TLS     3          /* a TLS failure OpenSSL gave no code for */
#define KA_OPENSSL_E_VERIFY  0x100      /* + X509_V_ERR_*: the server's certificate was rejected */
/* 0x10000 and above: an OpenSSL error code (ERR_get_error: an alert from
 * the server, a protocol error...). */

#define KA_OPENSSL_CACHE 8              /* hosts whose session is kept for resumption */

/* What the handshakes cost, summed over the transport's life; last_* are
 * those of the latest handshake that finished. round_trips counts the times
 * the handshake sent something and then needed the server's answer: 1 for
 * TLS 1.3 and for a resumed TLS 1.2 session, 2 for a full TLS 1.2 one. The
 * same struct as ka_mbedtls.h's. */
#ifndef KA_TLS_STATS_DEFINED
#define KA_TLS_STATS_DEFINED
typedef struct ka_tls_stats {
    unsigned long handshakes;           /* finished */
    unsigned long resumed;              /* of which resumed a session */
    unsigned long failed;               /* ended with KA_REASON_TLS */
    unsigned long last_us;              /* from open() to the session being up */
    unsigned long last_bytes_in, last_bytes_out;
    unsigned last_round_trips;
    int last_resumed;
} ka_tls_stats;
#endif

/* Creates the transport from cfg (NULL: every default). Returns 0,
 * KA_TLS_INSECURE (working, with a warning in msg), or KA_EINVAL (a file
 * that does not load, a key that does not match: msg says which) or
 * KA_ENOMEM; *out is NULL on failure. msg may be NULL. */
int  ka_openssl_new(ka_transport **out, const ka_openssl_config *cfg, char *msg, size_t msglen);

/* Frees it. Every client using it must have been freed first. NULL is fine. */
void ka_openssl_free(ka_transport *tp);

/* Copies the handshake statistics into *st. */
void ka_openssl_stats(const ka_transport *tp, ka_tls_stats *st);

/* For command-line tools (kacat's --tls, --cafile, --cert, --key,
 * --servername, --insecure): tls 0 gives *out NULL (plain TCP) and 0,
 * unless one of the other five is set, which is an error (KA_EINVAL, msg
 * says so). Otherwise as ka_openssl_new. */
int  ka_openssl_from_args(ka_transport **out, int tls, const char *cafile, const char *cert,
                          const char *key, const char *servername, int insecure,
                          char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif /* KA_OPENSSL_H */
