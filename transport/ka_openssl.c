/* ka_openssl: TLS for ka_client through OpenSSL. MIT licensed; see README.md.
 *
 * A ka_transport over each connection's non-blocking socket. OpenSSL
 * reads and writes the socket through a BIO of our own rather than its
 * socket BIO, for three reasons: send() must carry MSG_NOSIGNAL (the
 * library never raises SIGPIPE, and OpenSSL's socket BIO uses write()),
 * the errno of a failed send/recv must reach the client intact (so that a
 * reset is classified as on plain TCP), and the handshake's bytes are
 * counted for the statistics.
 *
 * What OpenSSL's manual says and this file relies on:
 *  - SSL_get_error after every call; WANT_READ / WANT_WRITE mean "call
 *    again when the socket is readable / writable"; the thread's error
 *    queue must be empty before the call (hence ERR_clear_error).
 *  - SSL_MODE_ENABLE_PARTIAL_WRITE: SSL_write returns after each record,
 *    like write(); SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: a retried write may
 *    come from another address (same bytes), which the client does.
 *  - A session whose connection was not shut down cleanly is marked not
 *    resumable when freed; a socket that died is not a TLS failure, so the
 *    session is marked shut down first (SSL_set_shutdown) and stays
 *    resumable.
 *  - OpenSSL 3 reports a peer's EOF without close_notify as SSL_ERROR_SSL
 *    with SSL_R_UNEXPECTED_EOF_WHILE_READING, documented as fit for control
 *    flow: after the handshake it is the peer's end, as a FIN on plain TCP
 *    (KA_REASON_PEER_CLOSED); during the handshake, a failure.
 *  - A server that refuses the handshake (no client certificate, TLS 1.2)
 *    sends its alert and closes; the client's next send then meets a reset.
 *    So a send that fails that way during the handshake is reported only
 *    after one more read, which finds the alert if there was one: the
 *    reason is then the server's, in words, not "peer reset".
 *  - TLS 1.3 sessions arrive after the handshake (NewSessionTicket): the
 *    client cache takes them from the new-session callback, with OpenSSL's
 *    internal store off. */

#include "ka_tls_compat.h"

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ka_openssl.h"

/* ---- the transport and its sessions ---------------------------------------- */

typedef struct ossl_cached {
    char name[KA_MAX_HOST_LEN + 1];
    SSL_SESSION *sess;
    unsigned long used;                 /* for replacing the least recently used */
} ossl_cached;

typedef struct ka_ossl {
    ka_transport tp;                    /* what the application is handed: first */
    SSL_CTX *ctx;
    BIO_METHOD *bio;
    char *server_name;
    char *ca_file;
    int insecure;
    int has_cert;                       /* a client certificate is configured */
    ossl_cached cache[KA_OPENSSL_CACHE];
    unsigned long tick;
    ka_tls_stats st;
    char name[64];
    int detail_code;                    /* the code whose words are in detail */
    char detail[600];
    char text[300];
} ka_ossl;

/* The first certificate the verification rejected, as OpenSSL showed it. */
typedef struct ossl_reject {
    int err, depth;
    char subject[200], issuer[200], when[40], names[200];
} ossl_reject;

typedef struct ossl_session {
    ka_ossl *t;
    SSL *ssl;
    ka_socket s;
    char name[KA_MAX_HOST_LEN + 1];     /* checked and cached under */
    int sock_err;                       /* the last failed send/recv's errno */
    int eof;                            /* recv() said the peer finished */
    int send_err;                       /* a send that failed in the handshake, reported after the next read */
    int up;                             /* handshake done */
    int lost;                           /* the socket failed: not TLS's fault */
    int fatal;                          /* TLS failed: no close_notify, session not kept */
    unsigned long long t0;
    unsigned long bytes_in, bytes_out;
    unsigned round_trips;
    int sent;                           /* the handshake sent since it last read */
    ossl_reject rej;
} ossl_session;

/* ---- our BIO: the client's socket, without SIGPIPE ------------------------- */

static int ossl_bio_write(BIO *b, const char *buf, int len)
{
    ossl_session *s = (ossl_session *)BIO_get_data(b);
    long n;
    int e = 0;
    BIO_clear_retry_flags(b);
    do {
        n = (long)send(s->s, buf, len, KA_TLS_SEND_FLAGS);
    } while (n < 0 && tls_interrupted(e = tls_sock_err()));
    if (n >= 0) {
        s->bytes_out += (unsigned long)n;
        s->sent = 1;
        return (int)n;
    }
    if (tls_would_block(e)) {
        BIO_set_retry_write(b);
    } else if (!s->up && tls_peer_gone(e)) {    /* the server may have said why first: read it */
        s->send_err = e;
        return len;
    } else {
        s->sock_err = e;
    }
    return -1;
}

static int ossl_bio_read(BIO *b, char *buf, int len)
{
    ossl_session *s = (ossl_session *)BIO_get_data(b);
    long n;
    int e = 0;
    BIO_clear_retry_flags(b);
    if (s->sent && !s->up) s->round_trips++;
    s->sent = 0;
    do {
        n = (long)recv(s->s, buf, len, 0);
    } while (n < 0 && tls_interrupted(e = tls_sock_err()));
    if (n > 0) s->bytes_in += (unsigned long)n;
    if (n > 0) return (int)n;
    if (s->send_err) {                  /* nothing from the server after all: the send's error stands */
        s->sock_err = s->send_err;
        return -1;
    }
    if (n == 0) s->eof = 1;
    if (n == 0) return 0;
    if (tls_would_block(e)) BIO_set_retry_read(b);
    else s->sock_err = e;
    return -1;
}

static long ossl_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b; (void)num; (void)ptr;
    return cmd == BIO_CTRL_FLUSH;       /* nothing is buffered here */
}

static int ossl_bio_puts(BIO *b, const char *str)
{
    return ossl_bio_write(b, str, (int)strlen(str));
}

/* ---- the session cache: the latest session per host -------------------------- */

static ossl_cached *ossl_cache_find(ka_ossl *t, const char *name)
{
    int i;
    for (i = 0; i < KA_OPENSSL_CACHE; i++)
        if (t->cache[i].sess && strcmp(t->cache[i].name, name) == 0) return &t->cache[i];
    return NULL;
}

static void ossl_cache_drop(ka_ossl *t, const char *name)
{
    ossl_cached *e = ossl_cache_find(t, name);
    if (!e) return;
    SSL_SESSION_free(e->sess);
    e->sess = NULL;
}

/* Takes the caller's reference to sess. */
static void ossl_cache_put(ka_ossl *t, const char *name, SSL_SESSION *sess)
{
    ossl_cached *e = ossl_cache_find(t, name);
    int i;
    if (!e) {
        e = &t->cache[0];
        for (i = 1; i < KA_OPENSSL_CACHE && e->sess; i++)
            if (!t->cache[i].sess || t->cache[i].used < e->used) e = &t->cache[i];
    }
    if (e->sess) SSL_SESSION_free(e->sess);
    memcpy(e->name, name, strlen(name) + 1);
    e->sess = sess;
    e->used = ++t->tick;
}

/* A TLS 1.2 session after the handshake, each TLS 1.3 ticket after it. */
static int ossl_new_session(SSL *ssl, SSL_SESSION *sess)
{
    ossl_session *s = (ossl_session *)SSL_get_app_data(ssl);
    if (!s || !SSL_SESSION_is_resumable(sess)) return 0;
    ossl_cache_put(s->t, s->name, sess);
    return 1;                           /* we keep the reference */
}

/* ---- certificate failures in words ---------------------------------------------- */

static void ossl_name(X509_NAME *n, char *out, size_t len)
{
    BIO *m = BIO_new(BIO_s_mem());
    int k;
    out[0] = 0;
    if (!m) return;
    X509_NAME_print_ex(m, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    k = BIO_read(m, out, (int)len - 1);
    out[k > 0 ? k : 0] = 0;
    BIO_free(m);
}

static void ossl_time(const ASN1_TIME *tm, char *out, size_t len)
{
    BIO *m = BIO_new(BIO_s_mem());
    int k;
    out[0] = 0;
    if (!m) return;
    ASN1_TIME_print(m, tm);
    k = BIO_read(m, out, (int)len - 1);
    out[k > 0 ? k : 0] = 0;
    BIO_free(m);
}

/* "DNS:localhost, IP:127.0.0.1": the names a certificate is valid for. */
static void ossl_alt_names(X509 *cert, char *out, size_t len)
{
    GENERAL_NAMES *gens = (GENERAL_NAMES *)X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;
    int i;
    out[0] = 0;
    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens) && used + 60 < len; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *sep = used ? ", " : "";
        if (g->type == GEN_DNS) {
            used += (size_t)snprintf(out + used, len - used, "%sDNS:%.*s", sep,
                                     ASN1_STRING_length(g->d.dNSName) > 50 ? 50 : ASN1_STRING_length(g->d.dNSName),
                                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
            char ip[64] = "?";
            if (ASN1_STRING_length(g->d.iPAddress) == 4) inet_ntop(AF_INET, a, ip, sizeof ip);
            if (ASN1_STRING_length(g->d.iPAddress) == 16) inet_ntop(AF_INET6, a, ip, sizeof ip);
            used += (size_t)snprintf(out + used, len - used, "%sIP:%s", sep, ip);
        }
    }
    GENERAL_NAMES_free(gens);
}

/* Notes the first rejection; the verdict stays OpenSSL's. */
static int ossl_verify_cb(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = (SSL *)X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    ossl_session *s = ssl ? (ossl_session *)SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    ossl_reject *r;
    if (ok || !s || s->rej.err || !cert) return ok;
    r = &s->rej;
    r->err = X509_STORE_CTX_get_error(store);
    r->depth = X509_STORE_CTX_get_error_depth(store);
    ossl_name(X509_get_subject_name(cert), r->subject, sizeof r->subject);
    ossl_name(X509_get_issuer_name(cert), r->issuer, sizeof r->issuer);
    if (r->err == X509_V_ERR_CERT_HAS_EXPIRED) ossl_time(X509_get0_notAfter(cert), r->when, sizeof r->when);
    if (r->err == X509_V_ERR_CERT_NOT_YET_VALID) ossl_time(X509_get0_notBefore(cert), r->when, sizeof r->when);
    ossl_alt_names(cert, r->names, sizeof r->names);
    return ok;
}

static int ossl_unknown_issuer(int v)
{
    return v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
           v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
           v == X509_V_ERR_CERT_UNTRUSTED || v == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

/* Why the server's certificate was refused, with what a user needs to fix it. */
static void ossl_explain_verify(ossl_session *s, long v)
{
    ka_ossl *t = s->t;
    const ossl_reject *r = &s->rej;
    char why[400] = "";
    if (r->err != v) why[0] = 0;
    else if (v == X509_V_ERR_CERT_HAS_EXPIRED)
        tls_msg(why, sizeof why, " (%s expired %s)", r->subject, r->when);
    else if (v == X509_V_ERR_CERT_NOT_YET_VALID)
        tls_msg(why, sizeof why, " (%s is valid from %s: is the clock right?)", r->subject, r->when);
    else if (ossl_unknown_issuer((int)v))
        tls_msg(why, sizeof why, " (%s, issued by %s, which is not among the trusted CAs of %s)", r->subject,
                r->issuer, t->ca_file ? t->ca_file : "the system store");
    else if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
        tls_msg(why, sizeof why, " (%s is for %s, not %s)", r->subject, r->names[0] ? r->names : "no name", s->name);
    else
        tls_msg(why, sizeof why, " (%s, at depth %d)", r->subject, r->depth);
    tls_msg(t->detail, sizeof t->detail, "TLS: the certificate of %s was rejected: %s%s", s->name,
            X509_verify_cert_error_string(v), why);
}

/* ---- results of SSL calls --------------------------------------------------------- */

static int ossl_code_of(unsigned long e)
{
    return e >= 0x10000 && e <= 0x7fffffffUL ? (int)e : KA_OPENSSL_E_TLS;
}

/* A failure of the handshake or of the session: its code, with the words
 * for it noted in the transport. */
static int ossl_failed(ossl_session *s, int code, unsigned long e)
{
    ka_ossl *t = s->t;
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    s->fatal = 1;
    t->st.failed++;
    ossl_cache_drop(t, s->name);
    t->detail_code = code;
    if (code >= KA_OPENSSL_E_VERIFY && code < KA_OPENSSL_E_VERIFY + 0x100) {
        ossl_explain_verify(s, code - KA_OPENSSL_E_VERIFY);
    } else if (code == KA_OPENSSL_E_EOF) {
        tls_msg(t->detail, sizeof t->detail, "TLS: %s closed the connection during the handshake "
                 "(not a TLS port? a client certificate it wants?)", s->name);
    } else {
        int wrong_port = e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER;
        tls_msg(t->detail, sizeof t->detail, "TLS: %s with %s: %s%s", s->up ? "session" : "handshake", s->name,
                 why ? why : "failed", wrong_port ? " (is that port speaking TLS?)" : "");
    }
    return code;
}

static int ossl_unexpected_eof(unsigned long e)
{
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
    return e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
#else
    (void)e;
    return 0;
#endif
}

/* Maps the result rc of an SSL call: a KA_TP_ code, or 0 for the peer's
 * orderly end (read only). */
static long ossl_result(ossl_session *s, int rc, int *err)
{
    int kind = SSL_get_error(s->ssl, rc);
    unsigned long e;
    if (kind == SSL_ERROR_WANT_READ) {
        return KA_TP_WANT_READ;
    }
    if (kind == SSL_ERROR_WANT_WRITE) return KA_TP_WANT_WRITE;
    if (s->sock_err) {                  /* the socket failed under TLS */
        s->lost = 1;
        *err = s->sock_err;
        return KA_TP_SOCKET;
    }
    e = ERR_peek_last_error();
    if (kind == SSL_ERROR_ZERO_RETURN || s->eof || ossl_unexpected_eof(e)) {
        ERR_clear_error();
        if (s->up) {                    /* close_notify, or a FIN without it: the peer's end */
            s->lost = kind != SSL_ERROR_ZERO_RETURN;
            return 0;
        }
        *err = ossl_failed(s, KA_OPENSSL_E_EOF, 0);
        return KA_TP_FAILED;
    }
    if (!s->up && SSL_get_verify_result(s->ssl) != X509_V_OK) {
        long v = SSL_get_verify_result(s->ssl);
        *err = ossl_failed(s, KA_OPENSSL_E_VERIFY + (int)(v & 0xff), 0);
    } else {
        *err = ossl_failed(s, ossl_code_of(e), e);
    }
    ERR_clear_error();
    return KA_TP_FAILED;
}

static void ossl_begin(ossl_session *s)
{
    ERR_clear_error();
    s->sock_err = 0;
    s->eof = 0;
}

/* ---- the transport's calls ---------------------------------------------------------- */

/* The name to check: IP literals as addresses (a zone "%eth0" is not part
 * of it), anything else as a DNS name, also sent as SNI. */
static int ossl_set_peer(SSL *ssl, const char *name)
{
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    unsigned char a[16];
    char ip[64];
    size_t n = strcspn(name, "%");
    if (n < sizeof ip) {
        memcpy(ip, name, n);
        ip[n] = 0;
        if (inet_pton(AF_INET, ip, a) == 1 || inet_pton(AF_INET6, ip, a) == 1)
            return X509_VERIFY_PARAM_set1_ip_asc(vp, ip) == 1 ? 0 : -1;
    }
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, name) != 1) return -1;
    return SSL_set_tlsext_host_name(ssl, name) == 1 ? 0 : -1;
}

static int ossl_open(void *ctx, ka_socket sock, const char *host, void **session, int *err)
{
    ka_ossl *t = (ka_ossl *)ctx;
    const char *name = t->server_name ? t->server_name : host;
    ossl_session *s = (ossl_session *)calloc(1, sizeof *s);
    BIO *b = NULL;
    ossl_cached *c;
    *session = NULL;
    if (!s || !name || strlen(name) > KA_MAX_HOST_LEN) goto fail;
    s->t = t;
    s->s = sock;
    s->t0 = tls_now_us();
    memcpy(s->name, name, strlen(name) + 1);
    ERR_clear_error();
    if (!(s->ssl = SSL_new(t->ctx)) || !(b = BIO_new(t->bio))) goto fail;
    BIO_set_data(b, s);
    BIO_set_init(b, 1);
    SSL_set_bio(s->ssl, b, b);          /* the SSL owns the BIO now */
    b = NULL;
    SSL_set_app_data(s->ssl, s);
    if (ossl_set_peer(s->ssl, name) != 0) goto fail;
    c = ossl_cache_find(t, name);
    if (c && SSL_SESSION_is_resumable(c->sess)) {
        SSL_set_session(s->ssl, c->sess);
        c->used = ++t->tick;
    }
    SSL_set_connect_state(s->ssl);
    *session = s;
    return 0;
fail:
    BIO_free(b);
    if (s) SSL_free(s->ssl);
    free(s);
    ERR_clear_error();
    tls_msg(t->detail, sizeof t->detail, "TLS: could not set up a session for %s", name ? name : "(no host)");
    t->detail_code = *err = KA_OPENSSL_E_SETUP;
    return KA_TP_FAILED;
}

static int ossl_handshake(void *session, int *err)
{
    ossl_session *s = (ossl_session *)session;
    ka_ossl *t = s->t;
    int rc;
    ossl_begin(s);
    rc = SSL_do_handshake(s->ssl);
    if (rc != 1) return (int)ossl_result(s, rc, err);
    s->up = 1;
    t->st.handshakes++;
    t->st.last_resumed = SSL_session_reused(s->ssl) == 1;
    t->st.resumed += (unsigned long)t->st.last_resumed;
    t->st.last_us = (unsigned long)(tls_now_us() - s->t0);
    t->st.last_bytes_in = s->bytes_in;
    t->st.last_bytes_out = s->bytes_out;
    t->st.last_round_trips = s->round_trips;
    return 0;
}

static long ossl_read(void *session, void *buf, size_t len, int *err)
{
    ossl_session *s = (ossl_session *)session;
    size_t got = 0;
    int rc;
    ossl_begin(s);
    rc = SSL_read_ex(s->ssl, buf, len, &got);
    if (rc == 1) return (long)got;
    return ossl_result(s, rc, err);
}

/* Writes record after record until len is out or the socket is full, as
 * send() would: a short count tells the client to wait for writability.
 * A record cut short by a full socket stays OpenSSL's; the client's next
 * call starts with the same bytes (maybe from elsewhere, maybe with more
 * after them), which OpenSSL finishes first. */
static long ossl_write(void *session, const void *buf, size_t len, int *err)
{
    ossl_session *s = (ossl_session *)session;
    const unsigned char *p = (const unsigned char *)buf;
    size_t done = 0;
    while (done < len) {
        size_t n = 0;
        int rc;
        ossl_begin(s);
        rc = SSL_write_ex(s->ssl, p + done, len - done, &n);
        if (rc == 1) {
            done += n;
            continue;
        }
        if (done) {
            int kind = SSL_get_error(s->ssl, rc);
            if (kind == SSL_ERROR_WANT_WRITE || kind == SSL_ERROR_WANT_READ) break;
        }
        return ossl_result(s, rc, err);
    }
    return (long)done;
}

static int ossl_pending(void *session)
{
    ossl_session *s = (ossl_session *)session;
    return SSL_pending(s->ssl) > 0 || SSL_has_pending(s->ssl);
}

/* Our close_notify; the peer's is not waited for (the client reads on
 * until the peer closes). */
static int ossl_shutdown(void *session, int *err)
{
    ossl_session *s = (ossl_session *)session;
    int rc;
    if (SSL_get_shutdown(s->ssl) & SSL_SENT_SHUTDOWN) return 0;
    ossl_begin(s);
    rc = SSL_shutdown(s->ssl);
    if (rc >= 0) return 0;
    return (int)ossl_result(s, rc, err);
}

/* A session that failed in TLS is dropped (OpenSSL marks it not
 * resumable); one whose socket died is kept; a live one says close_notify
 * if the socket takes it now. */
static void ossl_close(void *session)
{
    ossl_session *s = (ossl_session *)session;
    if (!s) return;
    if (s->up && !s->fatal && !s->lost && !(SSL_get_shutdown(s->ssl) & SSL_SENT_SHUTDOWN)) {
        ossl_begin(s);
        (void)SSL_shutdown(s->ssl);
    }
    if (s->up && !s->fatal) SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    ERR_clear_error();
    SSL_free(s->ssl);
    free(s);
}

static const char *ossl_strerror(void *ctx, int code)
{
    ka_ossl *t = (ka_ossl *)ctx;
    const char *why;
    if (code == t->detail_code && t->detail[0]) return t->detail;
    if (code >= KA_OPENSSL_E_VERIFY && code < KA_OPENSSL_E_VERIFY + 0x100) {
        tls_msg(t->text, sizeof t->text, "TLS: the server's certificate was rejected: %s",
                 X509_verify_cert_error_string(code - KA_OPENSSL_E_VERIFY));
    } else if (code >= 0x10000 && (why = ERR_reason_error_string((unsigned long)code)) != NULL) {
        tls_msg(t->text, sizeof t->text, "TLS: %s", why);
    } else {
        tls_msg(t->text, sizeof t->text, "TLS: %s", code == KA_OPENSSL_E_SETUP ? "could not set up a session" :
                 code == KA_OPENSSL_E_EOF ? "the server closed the connection during the handshake" :
                 "the session failed");
    }
    return t->text;
}

/* ---- creating and freeing ------------------------------------------------------- */

static char *ossl_strdup(const char *s)
{
    char *d;
    if (!s) return NULL;
    if ((d = (char *)malloc(strlen(s) + 1)) != NULL) memcpy(d, s, strlen(s) + 1);
    return d;
}

static const char *ossl_last_error(void)
{
    const char *why = ERR_reason_error_string(ERR_peek_last_error());
    return why ? why : "unknown error";
}

/* Trust, the client's own certificate, the verification switch. */
static int ossl_load(ka_ossl *t, const ka_openssl_config *cfg, char *msg, size_t msglen)
{
    const char *key = cfg->key_file ? cfg->key_file : cfg->cert_file;
    if (cfg->ca_file && SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) != 1) {
        tls_msg(msg, msglen, "TLS: cannot load the CA file %s: %s", cfg->ca_file, ossl_last_error());
        return KA_EINVAL;
    }
    if (!cfg->ca_file && SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        tls_msg(msg, msglen, "TLS: cannot load the system's trusted CAs: %s", ossl_last_error());
        return KA_EINVAL;
    }
    if (cfg->key_file && !cfg->cert_file) {
        tls_msg(msg, msglen, "TLS: a key file without a certificate file");
        return KA_EINVAL;
    }
    if (cfg->cert_file && SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1) {
        tls_msg(msg, msglen, "TLS: cannot load the certificate %s: %s", cfg->cert_file, ossl_last_error());
        return KA_EINVAL;
    }
    if (cfg->cert_file && (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1 ||
                           SSL_CTX_check_private_key(t->ctx) != 1)) {
        tls_msg(msg, msglen, "TLS: cannot use the key %s with %s: %s", key, cfg->cert_file, ossl_last_error());
        return KA_EINVAL;
    }
    SSL_CTX_set_verify(t->ctx, cfg->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, cfg->insecure ? NULL : ossl_verify_cb);
    t->has_cert = cfg->cert_file != NULL;
    return 0;
}

static int ossl_make(ka_ossl *t, const ka_openssl_config *cfg, char *msg, size_t msglen)
{
    char ver[48];
    size_t i, words = 0;
    if (!(t->ctx = SSL_CTX_new(TLS_client_method())) ||
        !(t->bio = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ka_client socket")) ||
        (cfg->server_name && !(t->server_name = ossl_strdup(cfg->server_name))) ||
        (cfg->ca_file && !(t->ca_file = ossl_strdup(cfg->ca_file)))) {
        tls_msg(msg, msglen, "TLS: out of memory");
        return KA_ENOMEM;
    }
    BIO_meth_set_write(t->bio, ossl_bio_write);
    BIO_meth_set_read(t->bio, ossl_bio_read);
    BIO_meth_set_puts(t->bio, ossl_bio_puts);
    BIO_meth_set_ctrl(t->bio, ossl_bio_ctrl);
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(t->ctx, 1);  /* one recv() per burst, not two per record: the client reads until WANT_READ */
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(t->ctx, ossl_new_session);
    t->insecure = cfg->insecure != 0;
    /* "OpenSSL 3.0.19 27 Jan 2026" -> "TLS (OpenSSL 3.0.19)" */
    tls_msg(ver, sizeof ver, "%s", OpenSSL_version(OPENSSL_VERSION));
    for (i = 0; ver[i]; i++)
        if (ver[i] == ' ' && ++words == 2) ver[i] = 0;
    tls_msg(t->name, sizeof t->name, "TLS (%s%s)", ver, t->insecure ? ", certificates NOT verified" : "");
    return ossl_load(t, cfg, msg, msglen);
}

void ka_openssl_free(ka_transport *tp)
{
    ka_ossl *t = (ka_ossl *)tp;
    int i;
    if (!t) return;
    for (i = 0; i < KA_OPENSSL_CACHE; i++) SSL_SESSION_free(t->cache[i].sess);
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->bio);
    free(t->server_name);
    free(t->ca_file);
    free(t);
}

int ka_openssl_new(ka_transport **out, const ka_openssl_config *cfg, char *msg, size_t msglen)
{
    ka_openssl_config none;
    ka_ossl *t;
    int rc;
    if (!out) return KA_EINVAL;
    *out = NULL;
    tls_msg(msg, msglen, "%s", "");
    if (!cfg) {
        memset(&none, 0, sizeof none);
        cfg = &none;
    }
    if (!(t = (ka_ossl *)calloc(1, sizeof *t))) {
        tls_msg(msg, msglen, "TLS: out of memory");
        return KA_ENOMEM;
    }
    if ((rc = ossl_make(t, cfg, msg, msglen)) != 0) {
        ERR_clear_error();
        ka_openssl_free(&t->tp);
        return rc;
    }
    t->tp.ctx = t;
    t->tp.open = ossl_open;
    t->tp.handshake = ossl_handshake;
    t->tp.read = ossl_read;
    t->tp.write = ossl_write;
    t->tp.pending = ossl_pending;
    t->tp.shutdown = ossl_shutdown;
    t->tp.close = ossl_close;
    t->tp.strerror = ossl_strerror;
    t->tp.name = t->name;
    *out = &t->tp;
    if (!t->insecure) return 0;
    tls_warn_insecure(msg, msglen);
    return KA_TLS_INSECURE;
}

void ka_openssl_stats(const ka_transport *tp, ka_tls_stats *st)
{
    if (!tp || !st) return;
    *st = ((const ka_ossl *)tp)->st;
}

int ka_openssl_from_args(ka_transport **out, int tls, const char *cafile, const char *cert,
                         const char *key, const char *servername, int insecure,
                         char *msg, size_t msglen)
{
    ka_openssl_config cfg;
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
    return ka_openssl_new(out, &cfg, msg, msglen);
}
