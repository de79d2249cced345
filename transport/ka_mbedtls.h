/* ka_mbedtls: TLS for ka_client through Mbed TLS (2.28; TLS 1.2).
 * MIT licensed; see README.md, "TLS and other transports".
 *
 *   ka_mbedtls_config tc = { 0 };
 *   ka_transport *tls;
 *   char msg[256];
 *   tc.ca_file = "ca.pem";                 (NULL: the system's CA bundle file)
 *   if (ka_mbedtls_new(&tls, &tc, msg, sizeof msg) < 0) { puts(msg); exit(1); }
 *   cfg.transport = tls;                   (then ka_client_new as usual)
 *   ...
 *   ka_client_free(c);
 *   ka_mbedtls_free(tls);                  (after every client that uses it)
 *
 * The same contract as ka_openssl.h: SNI with the endpoint's host (names
 * only), the server's certificate verified and checked against it (a name
 * as a DNS name, an IP literal against the certificate's IP addresses),
 * on_connect once the handshake is done, KA_REASON_TLS with words from
 * ka_client_transport_error() for a failure, socket errors as on plain
 * TCP, and the latest session of each host resumed on the next
 * connection (TLS 1.2: one round trip instead of two).
 *
 * With no ca_file, the first of the usual bundle files that exists is
 * loaded (/etc/ssl/certs/ca-certificates.crt on Debian). One transport
 * may serve several clients on one thread at a time, and must outlive
 * them. This file is its own library (libka_mbedtls.a), linked with
 * -lmbedtls -lmbedx509 -lmbedcrypto. */
#ifndef KA_MBEDTLS_H
#define KA_MBEDTLS_H

#include <stddef.h>
#include "ka_client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ka_mbedtls_config {
    const char *ca_file;        /* PEM file of trusted CAs; NULL: the system's bundle file */
    const char *server_name;    /* name for SNI and the certificate check; NULL: each endpoint's host */
    const char *cert_file;      /* client certificate chain (PEM) for servers that ask; NULL: none */
    const char *key_file;       /* its private key (PEM); NULL: in cert_file */
    int insecure;               /* 1: accept any certificate (tests only): ka_mbedtls_new returns KA_TLS_INSECURE */
} ka_mbedtls_config;

#define KA_TLS_INSECURE 1       /* as in ka_openssl.h */

/* The transport's codes (KA_REASON_TLS's sys_error). */
#define KA_MBEDTLS_E_SETUP   1          /* the session could not be created */
#define KA_MBEDTLS_E_EOF     2          /* the server closed the connection during the handshake (not TLS?) */
#define KA_MBEDTLS_E_ALERT   0x100      /* + the alert's number: the server refused (40 handshake failure, 48 unknown CA, 116 certificate required...) */
#define KA_MBEDTLS_E_ERROR   0x10000    /* + -(an Mbed TLS error code): an alert, a protocol error... */
#define KA_MBEDTLS_E_VERIFY  0x1000000  /* | MBEDTLS_X509_BADCERT_* flags: the certificate was rejected */

#define KA_MBEDTLS_CACHE 8              /* hosts whose session is kept for resumption */

#ifndef KA_TLS_STATS_DEFINED
#define KA_TLS_STATS_DEFINED
/* As in ka_openssl.h: handshakes, resumed ones, failures, and the cost of
 * the latest (time, bytes each way, round trips to the server). */
typedef struct ka_tls_stats {
    unsigned long handshakes;
    unsigned long resumed;
    unsigned long failed;
    unsigned long last_us;
    unsigned long last_bytes_in, last_bytes_out;
    unsigned last_round_trips;
    int last_resumed;
} ka_tls_stats;
#endif

/* As ka_openssl_new: 0, KA_TLS_INSECURE (working, warning in msg),
 * KA_EINVAL (msg says what did not load) or KA_ENOMEM. */
int  ka_mbedtls_new(ka_transport **out, const ka_mbedtls_config *cfg, char *msg, size_t msglen);
void ka_mbedtls_free(ka_transport *tp);
void ka_mbedtls_stats(const ka_transport *tp, ka_tls_stats *st);

/* As ka_openssl_from_args (kacat's six TLS options). */
int  ka_mbedtls_from_args(ka_transport **out, int tls, const char *cafile, const char *cert,
                          const char *key, const char *servername, int insecure,
                          char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif /* KA_MBEDTLS_H */
