/* ka_mbedtls: TLS for ka_client through Mbed TLS. MIT licensed; see README.md.
 *
 * A ka_transport over each connection's non-blocking socket, through
 * mbedtls_ssl_set_bio with send/recv callbacks of our own: send() carries
 * MSG_NOSIGNAL, a would-block becomes MBEDTLS_ERR_SSL_WANT_READ/WRITE, and
 * the errno of a failed call is kept for the client (a reset is
 * classified as on plain TCP).
 *
 * What Mbed TLS's documentation (ssl.h) says and this file relies on:
 *  - After WANT_READ / WANT_WRITE, call the same function again when the
 *    socket is ready; mbedtls_ssl_write must then get the *same* length:
 *    the record is already built, and a longer length would be reported as
 *    written although only the first record's bytes went. The client
 *    retries with the same bytes and maybe more, so the length of a record
 *    left pending is remembered and passed again (curl does the same).
 *  - mbedtls_ssl_read returns 0 for an EOF without close_notify and
 *    MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY for a clean end: both are the
 *    peer's end, as a FIN on plain TCP.
 *  - mbedtls_ssl_get_session / mbedtls_ssl_set_session save and offer a
 *    session (ID or ticket); a resumed TLS 1.2 handshake skips the
 *    server's certificate, which is how it is recognised here (the
 *    handshake is driven step by step and its states watched).
 *  - Before 3.x, Mbed TLS checks a host name against the certificate's
 *    CN and DNS names only (iPAddress entries are not even listed), and
 *    sends whatever mbedtls_ssl_set_hostname got as SNI. So an IP literal
 *    is not given to it: the leaf's iPAddress entries are compared here,
 *    in the verify callback, and no SNI goes out (RFC 6066 forbids it).
 *  - A server that refuses the handshake sends its alert and closes; the
 *    client's next send then meets a reset. A send that fails that way
 *    during the handshake is reported after one more read, which finds the
 *    alert if there was one (MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE, the
 *    alert's number in the record just read). */

#include "ka_tls_compat.h"

#include <mbedtls/version.h>
#include <mbedtls/ssl.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/error.h>

#include "ka_mbedtls.h"

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define MBED_STATE(ssl) ((ssl)->MBEDTLS_PRIVATE(state))
#define MBED_IN_MSG(ssl) ((ssl)->MBEDTLS_PRIVATE(in_msg))
#else
#define MBED_STATE(ssl) ((ssl)->state)
#define MBED_IN_MSG(ssl) ((ssl)->in_msg)
#endif

/* ---- compat: the rest is in ka_tls_compat.h -------------------------------- */

#ifdef _WIN32
static int tls_file_exists(const char *path) { return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES; }
#else
static int tls_file_exists(const char *path) { return access(path, R_OK) == 0; }
#endif

/* ---- the transport and its sessions ---------------------------------------- */

typedef struct mbed_cached {
    char name[KA_MAX_HOST_LEN + 1];
    mbedtls_ssl_session sess;
    int valid;
    unsigned long used;
} mbed_cached;

typedef struct ka_mbed {
    ka_transport tp;                    /* what the application is handed: first */
    mbedtls_ssl_config conf;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    char *server_name;
    char ca_from[256];                  /* the file the trusted CAs came from, for messages */
    int insecure;
    mbed_cached cache[KA_MBEDTLS_CACHE];
    unsigned long tick;
    ka_tls_stats st;
    char name[64];
    int detail_code;
    char detail[600];
    char text[300];
} ka_mbed;

typedef struct mbed_session {
    ka_mbed *t;
    mbedtls_ssl_context ssl;
    ka_socket s;
    char name[KA_MAX_HOST_LEN + 1];     /* checked and cached under */
    unsigned char ip[16];               /* name as an address, when it is one */
    size_t iplen;
    int sock_err, eof, up, lost, fatal, shut_sent;
    int send_err;                       /* a send that failed in the handshake, reported after the next read */
    int full;                           /* the server sent its certificate: not resumed */
    size_t wpending;                    /* length of a record built but not yet sent */
    unsigned long long t0;
    unsigned long bytes_in, bytes_out;
    unsigned round_trips;
    int sent;                           /* the handshake sent since it last read */
    char subject[200], issuer[200], when[40];   /* the leaf, or the certificate out of its dates */
} mbed_session;

/* ---- the socket under TLS ------------------------------------------------------- */

static int mbed_send(void *ctx, const unsigned char *buf, size_t len)
{
    mbed_session *s = (mbed_session *)ctx;
    long n;
    int e = 0;
    if (len > 0x40000000u) len = 0x40000000u;
    do {
        n = (long)send(s->s, (const char *)buf, (int)len, KA_TLS_SEND_FLAGS);
    } while (n < 0 && tls_interrupted(e = tls_sock_err()));
    if (n >= 0) {
        s->bytes_out += (unsigned long)n;
        s->sent = 1;
        return (int)n;
    }
    if (tls_would_block(e)) return MBEDTLS_ERR_SSL_WANT_WRITE;
    if (!s->up && tls_peer_gone(e)) {   /* the server may have said why first: read it */
        s->send_err = e;
        return (int)len;
    }
    s->sock_err = e;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int mbed_recv(void *ctx, unsigned char *buf, size_t len)
{
    mbed_session *s = (mbed_session *)ctx;
    long n;
    int e = 0;
    if (len > 0x40000000u) len = 0x40000000u;
    if (s->sent && !s->up) s->round_trips++;
    s->sent = 0;
    do {
        n = (long)recv(s->s, (char *)buf, (int)len, 0);
    } while (n < 0 && tls_interrupted(e = tls_sock_err()));
    if (n > 0) s->bytes_in += (unsigned long)n;
    if (n > 0 || (n < 0 && tls_would_block(e) && !s->send_err)) return n > 0 ? (int)n : MBEDTLS_ERR_SSL_WANT_READ;
    if (n == 0 && !s->send_err) {
        s->eof = 1;
        return 0;
    }
    s->sock_err = s->send_err ? s->send_err : e;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* ---- the session cache: the latest session per host -------------------------- */

static mbed_cached *mbed_cache_find(ka_mbed *t, const char *name)
{
    int i;
    for (i = 0; i < KA_MBEDTLS_CACHE; i++)
        if (t->cache[i].valid && strcmp(t->cache[i].name, name) == 0) return &t->cache[i];
    return NULL;
}

static void mbed_cache_drop(ka_mbed *t, const char *name)
{
    mbed_cached *e = mbed_cache_find(t, name);
    if (!e) return;
    mbedtls_ssl_session_free(&e->sess);
    e->valid = 0;
}

static void mbed_cache_save(ka_mbed *t, mbed_session *s)
{
    mbed_cached *e = mbed_cache_find(t, s->name);
    int i;
    if (!e) {
        e = &t->cache[0];
        for (i = 1; i < KA_MBEDTLS_CACHE && e->valid; i++)
            if (!t->cache[i].valid || t->cache[i].used < e->used) e = &t->cache[i];
    }
    mbedtls_ssl_session_free(&e->sess);
    mbedtls_ssl_session_init(&e->sess);
    e->valid = mbedtls_ssl_get_session(&s->ssl, &e->sess) == 0;
    memcpy(e->name, s->name, strlen(s->name) + 1);
    e->used = ++t->tick;
}

/* ---- the certificate: IP addresses, and failures in words -------------------------- */

/* Whether the certificate's subjectAltName lists the address ip (DER walk
 * of the extensions with Mbed TLS's own ASN.1 reader). */
static int mbed_cert_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip, size_t iplen)
{
    unsigned char *p = crt->v3_ext.p, *end, *ext_end, *names_end;
    size_t len;
    if (!p || mbedtls_asn1_get_tag(&p, crt->v3_ext.p + crt->v3_ext.len, &len,
                                   MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return 0;
    end = p + len;
    while (p < end) {
        mbedtls_x509_buf oid;
        int critical = 0;
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return 0;
        ext_end = p + len;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID) != 0) return 0;
        oid.p = p;
        p += oid.len;
        (void)mbedtls_asn1_get_bool(&p, ext_end, &critical);    /* optional */
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0) return 0;
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) != 0) {
            p = ext_end;
            continue;
        }
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return 0;
        names_end = p + len;
        while (p < names_end) {
            int tag = *p++;
            if (mbedtls_asn1_get_len(&p, names_end, &len) != 0) return 0;
            if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && len == iplen && memcmp(p, ip, iplen) == 0) return 1;
            p += len;
        }
        return 0;
    }
    return 0;
}

static void mbed_date(const mbedtls_x509_time *tm, char *out, size_t len)
{
    tls_msg(out, len, "%04d-%02d-%02d %02d:%02d:%02d UTC", tm->year, tm->mon, tm->day, tm->hour, tm->min, tm->sec);
}

/* Called for each certificate of the chain: notes the leaf and the one out
 * of its dates, and checks an IP literal against the leaf. */
static int mbed_verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    mbed_session *s = (mbed_session *)ctx;
    if (depth == 0) {
        mbedtls_x509_dn_gets(s->subject, sizeof s->subject, &crt->subject);
        mbedtls_x509_dn_gets(s->issuer, sizeof s->issuer, &crt->issuer);
        if (s->iplen && !mbed_cert_has_ip(crt, s->ip, s->iplen)) *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    }
    if ((*flags & MBEDTLS_X509_BADCERT_EXPIRED) && !s->when[0]) mbed_date(&crt->valid_to, s->when, sizeof s->when);
    if ((*flags & MBEDTLS_X509_BADCERT_FUTURE) && !s->when[0]) mbed_date(&crt->valid_from, s->when, sizeof s->when);
    return 0;
}

/* Why the server's certificate was refused, with what a user needs to fix it. */
static void mbed_explain_verify(mbed_session *s, uint32_t flags)
{
    ka_mbed *t = s->t;
    char info[300], why[300] = "";
    size_t i, j;
    mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
    for (i = j = 0; info[i]; i++)       /* one line: "a\nb\n" -> "a; b" */
        if (info[i] != '\n') info[j++] = info[i];
        else if (info[i + 1]) { info[j++] = ';'; info[j++] = ' '; }
    info[j] = 0;
    if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
        tls_msg(why, sizeof why, " (%s expired %s)", s->subject, s->when);
    else if (flags & MBEDTLS_X509_BADCERT_FUTURE)
        tls_msg(why, sizeof why, " (%s is valid from %s: is the clock right?)", s->subject, s->when);
    else if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
        tls_msg(why, sizeof why, " (%s, issued by %s, which is not among the trusted CAs of %s)", s->subject,
                s->issuer, t->ca_from[0] ? t->ca_from : "(none)");
    else if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
        tls_msg(why, sizeof why, " (%s is not for %s)", s->subject, s->name);
    tls_msg(t->detail, sizeof t->detail, "TLS: the certificate of %s was rejected: %s%s", s->name, info, why);
}

/* ---- results of Mbed TLS calls ---------------------------------------------------- */

/* The alerts a server sends when it refuses (RFC 8446, 6.2). */
static const char *mbed_alert_name(int a)
{
    switch (a) {
    case 10: return "unexpected message";
    case 20: return "bad record MAC";
    case 40: return "handshake failure";
    case 42: return "bad certificate";
    case 43: return "unsupported certificate";
    case 44: return "certificate revoked";
    case 45: return "certificate expired";
    case 46: return "certificate unknown";
    case 47: return "illegal parameter";
    case 48: return "unknown CA";
    case 49: return "access denied";
    case 50: return "decode error";
    case 51: return "decrypt error";
    case 70: return "protocol version";
    case 71: return "insufficient security";
    case 80: return "internal error";
    case 86: return "inappropriate fallback";
    case 90: return "user canceled";
    case 109: return "missing extension";
    case 110: return "unsupported extension";
    case 112: return "unrecognized name";
    case 115: return "unknown PSK identity";
    case 116: return "certificate required";
    case 120: return "no application protocol";
    default: return "alert";
    }
}

/* An alert that may mean "show me a certificate" to a client without one. */
static int mbed_wants_cert(const ka_mbed *t, int a)
{
    return !t->cert.version && (a == 40 || a == 42 || a == 116);
}

static int mbed_failed(mbed_session *s, int code, int rc)
{
    ka_mbed *t = s->t;
    char why[160];
    s->fatal = 1;
    t->st.failed++;
    mbed_cache_drop(t, s->name);
    t->detail_code = code;
    if (code & KA_MBEDTLS_E_VERIFY) {
        mbed_explain_verify(s, (uint32_t)code & 0xffffffu);
    } else if (code >= KA_MBEDTLS_E_ALERT && code < KA_MBEDTLS_E_ALERT + 0x100) {
        int a = code - KA_MBEDTLS_E_ALERT;
        tls_msg(t->detail, sizeof t->detail, "TLS: %s refused the %s: alert %d (%s)%s", s->name,
                s->up ? "session" : "handshake", a, mbed_alert_name(a),
                mbed_wants_cert(t, a) ? " (does it want a client certificate?)" : "");
    } else if (code == KA_MBEDTLS_E_EOF) {
        tls_msg(t->detail, sizeof t->detail, "TLS: %s closed the connection during the handshake "
                "(not a TLS port? a client certificate it wants?)", s->name);
    } else {
        mbedtls_strerror(rc, why, sizeof why);
        tls_msg(t->detail, sizeof t->detail, "TLS: %s with %s: %s%s", s->up ? "session" : "handshake", s->name, why,
                rc == MBEDTLS_ERR_SSL_INVALID_RECORD || rc == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION ?
                " (is that port speaking TLS?)" : "");
    }
    return code;
}

/* Maps an Mbed TLS result below zero: a KA_TP_ code, or 0 for the peer's
 * end (read only). */
static long mbed_result(mbed_session *s, int rc, int *err)
{
    if (rc == MBEDTLS_ERR_SSL_WANT_READ) {
        return KA_TP_WANT_READ;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) return KA_TP_WANT_WRITE;
    if (s->sock_err) {
        s->lost = 1;
        *err = s->sock_err;
        return KA_TP_SOCKET;
    }
    if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == MBEDTLS_ERR_SSL_CONN_EOF || s->eof) {
        if (s->up) {
            s->lost = rc != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY;
            return 0;
        }
        *err = mbed_failed(s, KA_MBEDTLS_E_EOF, rc);
        return KA_TP_FAILED;
    }
    if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED)
        *err = mbed_failed(s, KA_MBEDTLS_E_VERIFY | (int)(mbedtls_ssl_get_verify_result(&s->ssl) & 0xffffffu), rc);
    else if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && MBED_IN_MSG(&s->ssl))
        *err = mbed_failed(s, KA_MBEDTLS_E_ALERT + MBED_IN_MSG(&s->ssl)[1], rc);
    else
        *err = mbed_failed(s, KA_MBEDTLS_E_ERROR + (-rc & 0xffff), rc);
    return KA_TP_FAILED;
}

static void mbed_begin(mbed_session *s)
{
    s->sock_err = 0;
    s->eof = 0;
}

/* ---- the transport's calls ---------------------------------------------------------- */

/* An IP literal (a zone "%eth0" is not part of it) is checked by us and
 * sent as no SNI; a name goes to Mbed TLS for both. */
static int mbed_set_peer(mbed_session *s)
{
    char ip[64];
    size_t n = strcspn(s->name, "%");
    if (n < sizeof ip) {
        memcpy(ip, s->name, n);
        ip[n] = 0;
        if (inet_pton(AF_INET, ip, s->ip) == 1) s->iplen = 4;
        else if (inet_pton(AF_INET6, ip, s->ip) == 1) s->iplen = 16;
    }
    mbedtls_ssl_set_verify(&s->ssl, mbed_verify_cb, s);
    return mbedtls_ssl_set_hostname(&s->ssl, s->iplen ? NULL : s->name);
}

static int mbed_open(void *ctx, ka_socket sock, const char *host, void **session, int *err)
{
    ka_mbed *t = (ka_mbed *)ctx;
    const char *name = t->server_name ? t->server_name : host;
    mbed_session *s = (mbed_session *)calloc(1, sizeof *s);
    mbed_cached *c;
    *session = NULL;
    if (!s) goto fail;
    mbedtls_ssl_init(&s->ssl);
    if (!name || strlen(name) > KA_MAX_HOST_LEN) goto fail;
    s->t = t;
    s->s = sock;
    s->t0 = tls_now_us();
    memcpy(s->name, name, strlen(name) + 1);
    if (mbedtls_ssl_setup(&s->ssl, &t->conf) != 0 || mbed_set_peer(s) != 0) goto fail;
    mbedtls_ssl_set_bio(&s->ssl, s, mbed_send, mbed_recv, NULL);
    c = mbed_cache_find(t, name);
    if (c && mbedtls_ssl_set_session(&s->ssl, &c->sess) == 0) c->used = ++t->tick;
    *session = s;
    return 0;
fail:
    if (s) mbedtls_ssl_free(&s->ssl);
    free(s);
    tls_msg(t->detail, sizeof t->detail, "TLS: could not set up a session for %s", name ? name : "(no host)");
    t->detail_code = *err = KA_MBEDTLS_E_SETUP;
    return KA_TP_FAILED;
}

/* Step by step, so that a certificate message can be seen going by. */
static int mbed_handshake(void *session, int *err)
{
    mbed_session *s = (mbed_session *)session;
    ka_mbed *t = s->t;
    mbed_begin(s);
    while (MBED_STATE(&s->ssl) != MBEDTLS_SSL_HANDSHAKE_OVER) {
        int rc = mbedtls_ssl_handshake_step(&s->ssl);
        if (MBED_STATE(&s->ssl) == MBEDTLS_SSL_SERVER_CERTIFICATE) s->full = 1;
        if (rc != 0) return (int)mbed_result(s, rc, err);
    }
    s->up = 1;
    t->st.handshakes++;
    t->st.last_resumed = !s->full;
    t->st.resumed += (unsigned long)t->st.last_resumed;
    t->st.last_us = (unsigned long)(tls_now_us() - s->t0);
    t->st.last_bytes_in = s->bytes_in;
    t->st.last_bytes_out = s->bytes_out;
    t->st.last_round_trips = s->round_trips;
    mbed_cache_save(t, s);
    return 0;
}

static long mbed_read(void *session, void *buf, size_t len, int *err)
{
    mbed_session *s = (mbed_session *)session;
    int rc;
    mbed_begin(s);
    rc = mbedtls_ssl_read(&s->ssl, (unsigned char *)buf, len);
    if (rc > 0) return rc;
    if (rc == 0) {                      /* EOF without close_notify: the peer's end */
        s->lost = 1;
        return 0;
    }
    return mbed_result(s, rc, err);
}

/* Record after record until len is out or the socket is full, as send()
 * would. A record left half-sent is finished first on the next call,
 * with the length it was built with. */
static long mbed_write(void *session, const void *buf, size_t len, int *err)
{
    mbed_session *s = (mbed_session *)session;
    const unsigned char *p = (const unsigned char *)buf;
    size_t done = 0;
    while (done < len) {
        size_t n = len - done;
        int rc, max = mbedtls_ssl_get_max_out_record_payload(&s->ssl);
        if (s->wpending && s->wpending <= n) n = s->wpending;
        else if (max > 0 && n > (size_t)max) n = (size_t)max;
        mbed_begin(s);
        rc = mbedtls_ssl_write(&s->ssl, p + done, n);
        if (rc >= 0) {
            s->wpending = 0;
            done += (size_t)rc;
            continue;
        }
        if (rc == MBEDTLS_ERR_SSL_WANT_WRITE || rc == MBEDTLS_ERR_SSL_WANT_READ) {
            s->wpending = n;
            if (done) break;
        }
        return mbed_result(s, rc, err);
    }
    return (long)done;
}

static int mbed_pending(void *session)
{
    mbed_session *s = (mbed_session *)session;
    return mbedtls_ssl_get_bytes_avail(&s->ssl) > 0 || mbedtls_ssl_check_pending(&s->ssl);
}

static int mbed_shutdown(void *session, int *err)
{
    mbed_session *s = (mbed_session *)session;
    int rc;
    if (s->shut_sent) return 0;
    mbed_begin(s);
    rc = mbedtls_ssl_close_notify(&s->ssl);
    if (rc == 0) {
        s->shut_sent = 1;
        return 0;
    }
    return (int)mbed_result(s, rc, err);
}

/* A live session says close_notify if the socket takes it now. */
static void mbed_close(void *session)
{
    mbed_session *s = (mbed_session *)session;
    if (!s) return;
    if (s->up && !s->fatal && !s->lost && !s->shut_sent) {
        mbed_begin(s);
        (void)mbedtls_ssl_close_notify(&s->ssl);
    }
    mbedtls_ssl_free(&s->ssl);
    free(s);
}

static const char *mbed_strerror(void *ctx, int code)
{
    ka_mbed *t = (ka_mbed *)ctx;
    char why[200];
    if (code == t->detail_code && t->detail[0]) return t->detail;
    if (code & KA_MBEDTLS_E_VERIFY) {
        mbedtls_x509_crt_verify_info(why, sizeof why, "", (uint32_t)code & 0xffffffu);
        why[strcspn(why, "\n")] = 0;
        tls_msg(t->text, sizeof t->text, "TLS: the server's certificate was rejected: %s", why);
    } else if (code >= KA_MBEDTLS_E_ALERT && code < KA_MBEDTLS_E_ALERT + 0x100) {
        tls_msg(t->text, sizeof t->text, "TLS: the server sent alert %d (%s)", code - KA_MBEDTLS_E_ALERT,
                mbed_alert_name(code - KA_MBEDTLS_E_ALERT));
    } else if (code >= KA_MBEDTLS_E_ERROR) {
        mbedtls_strerror(-(code - KA_MBEDTLS_E_ERROR), why, sizeof why);
        tls_msg(t->text, sizeof t->text, "TLS: %s", why);
    } else {
        tls_msg(t->text, sizeof t->text, "TLS: %s", code == KA_MBEDTLS_E_SETUP ? "could not set up a session" :
                code == KA_MBEDTLS_E_EOF ? "the server closed the connection during the handshake" :
                "the session failed");
    }
    return t->text;
}

/* ---- creating and freeing ------------------------------------------------------- */

static const char *mbed_error(int rc, char *buf, size_t len)
{
    mbedtls_strerror(rc, buf, len);
    return buf;
}

/* The trusted CAs: the file given, or the first system bundle there is. */
static int mbed_load_ca(ka_mbed *t, const char *file, char *msg, size_t msglen)
{
    static const char *const bundles[] = {
        "/etc/ssl/certs/ca-certificates.crt",   /* Debian, Ubuntu, Alpine, Arch */
        "/etc/pki/tls/certs/ca-bundle.crt",     /* Fedora, RHEL */
        "/etc/ssl/ca-bundle.pem",               /* openSUSE */
        "/etc/ssl/cert.pem",                    /* macOS, the BSDs */
        NULL
    };
    char why[120];
    int i, rc;
    for (i = 0; !file && bundles[i]; i++)
        if (tls_file_exists(bundles[i])) file = bundles[i];
    if (!file) {
        tls_msg(msg, msglen, "TLS: no system CA bundle found here: give a CA file");
        return KA_EINVAL;
    }
    rc = mbedtls_x509_crt_parse_file(&t->ca, file);
    if (rc < 0 || t->ca.version == 0) {         /* > 0: some entries did not parse, the rest did */
        tls_msg(msg, msglen, "TLS: cannot load the CA file %s: %s", file, mbed_error(rc, why, sizeof why));
        return KA_EINVAL;
    }
    tls_msg(t->ca_from, sizeof t->ca_from, "%s", file);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    return 0;
}

static int mbed_load_cert(ka_mbed *t, const ka_mbedtls_config *cfg, char *msg, size_t msglen)
{
    const char *key = cfg->key_file ? cfg->key_file : cfg->cert_file;
    char why[120];
    int rc;
    if (cfg->key_file && !cfg->cert_file) {
        tls_msg(msg, msglen, "TLS: a key file without a certificate file");
        return KA_EINVAL;
    }
    if (!cfg->cert_file) return 0;
    if ((rc = mbedtls_x509_crt_parse_file(&t->cert, cfg->cert_file)) != 0) {
        tls_msg(msg, msglen, "TLS: cannot load the certificate %s: %s", cfg->cert_file, mbed_error(rc, why, sizeof why));
        return KA_EINVAL;
    }
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    rc = mbedtls_pk_parse_keyfile(&t->key, key, NULL, mbedtls_ctr_drbg_random, &t->drbg);
#else
    rc = mbedtls_pk_parse_keyfile(&t->key, key, NULL);
#endif
    if (rc == 0) rc = mbedtls_ssl_conf_own_cert(&t->conf, &t->cert, &t->key);
    if (rc != 0) {
        tls_msg(msg, msglen, "TLS: cannot use the key %s with %s: %s", key, cfg->cert_file, mbed_error(rc, why, sizeof why));
        return KA_EINVAL;
    }
    return 0;
}

static int mbed_make(ka_mbed *t, const ka_mbedtls_config *cfg, char *msg, size_t msglen)
{
    static const unsigned char who[] = "ka_client TLS";
    char why[120];
    int rc;
    if ((rc = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy, who, sizeof who - 1)) != 0 ||
        (rc = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        tls_msg(msg, msglen, "TLS: cannot set up Mbed TLS: %s", mbed_error(rc, why, sizeof why));
        return KA_EINVAL;
    }
    if (cfg->server_name) {
        size_t n = strlen(cfg->server_name) + 1;
        if (!(t->server_name = (char *)malloc(n))) {
            tls_msg(msg, msglen, "TLS: out of memory");
            return KA_ENOMEM;
        }
        memcpy(t->server_name, cfg->server_name, n);
    }
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_ssl_conf_min_tls_version(&t->conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
    t->insecure = cfg->insecure != 0;
    mbedtls_ssl_conf_authmode(&t->conf, t->insecure ? MBEDTLS_SSL_VERIFY_NONE : MBEDTLS_SSL_VERIFY_REQUIRED);
    tls_msg(t->name, sizeof t->name, "TLS (Mbed TLS %s%s)", MBEDTLS_VERSION_STRING,
            t->insecure ? ", certificates NOT verified" : "");
    if (!t->insecure || cfg->ca_file) {
        if ((rc = mbed_load_ca(t, cfg->ca_file, msg, msglen)) != 0) return rc;
    }
    return mbed_load_cert(t, cfg, msg, msglen);
}

void ka_mbedtls_free(ka_transport *tp)
{
    ka_mbed *t = (ka_mbed *)tp;
    int i;
    if (!t) return;
    for (i = 0; i < KA_MBEDTLS_CACHE; i++) mbedtls_ssl_session_free(&t->cache[i].sess);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_x509_crt_free(&t->cert);
    mbedtls_pk_free(&t->key);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t->server_name);
    free(t);
}

int ka_mbedtls_new(ka_transport **out, const ka_mbedtls_config *cfg, char *msg, size_t msglen)
{
    ka_mbedtls_config none;
    ka_mbed *t;
    int rc, i;
    if (!out) return KA_EINVAL;
    *out = NULL;
    tls_msg(msg, msglen, "%s", "");
    if (!cfg) {
        memset(&none, 0, sizeof none);
        cfg = &none;
    }
    if (!(t = (ka_mbed *)calloc(1, sizeof *t))) {
        tls_msg(msg, msglen, "TLS: out of memory");
        return KA_ENOMEM;
    }
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_x509_crt_init(&t->cert);
    mbedtls_pk_init(&t->key);
    for (i = 0; i < KA_MBEDTLS_CACHE; i++) mbedtls_ssl_session_init(&t->cache[i].sess);
    if ((rc = mbed_make(t, cfg, msg, msglen)) != 0) {
        ka_mbedtls_free(&t->tp);
        return rc;
    }
    t->tp.ctx = t;
    t->tp.open = mbed_open;
    t->tp.handshake = mbed_handshake;
    t->tp.read = mbed_read;
    t->tp.write = mbed_write;
    t->tp.pending = mbed_pending;
    t->tp.shutdown = mbed_shutdown;
    t->tp.close = mbed_close;
    t->tp.strerror = mbed_strerror;
    t->tp.name = t->name;
    *out = &t->tp;
    if (!t->insecure) return 0;
    tls_warn_insecure(msg, msglen);
    return KA_TLS_INSECURE;
}

void ka_mbedtls_stats(const ka_transport *tp, ka_tls_stats *st)
{
    if (!tp || !st) return;
    *st = ((const ka_mbed *)tp)->st;
}

int ka_mbedtls_from_args(ka_transport **out, int tls, const char *cafile, const char *cert,
                         const char *key, const char *servername, int insecure,
                         char *msg, size_t msglen)
{
    ka_mbedtls_config cfg;
    int want;
    if (!out) return KA_EINVAL;
    *out = NULL;
    if ((want = tls_args_want(tls, cafile, cert, key, servername, insecure, msg, msglen)) != 1) return want;
    memset(&cfg, 0, sizeof cfg);
    cfg.ca_file = cafile;
    cfg.cert_file = cert;
    cfg.key_file = key;
    cfg.server_name = servername;
    cfg.insecure = insecure;
    return ka_mbedtls_new(out, &cfg, msg, msglen);
}
