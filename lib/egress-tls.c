/* egress-tls.c - see egress-tls.h */
#include "egress-tls.h"
#include "config.h"
#include "dl-crypto.h"
#include "dl-ssl.h"
#include "egress-rules.h"
#include "fsutil.h"
#include "strbuf.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define CA_DAYS        3650
#define LEAF_DAYS      30
#define HEAD_MAX       65536
#define HANDSHAKE_MS   15000
#define RELAY_BUF      16384
#define LEAF_CACHE_MAX 256

/* ---- the CA ------------------------------------------------------------------- */

char *e2b_egress_ca_dir(void)
{
    _cleanup_free_ char *data = e2b_data_dir();
    return e2b_path_join(data, "egress");
}

static int ssl_error(struct e2b_error **err, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return e2b_error_set(err, E2B_ERR_GENERIC, "%s%s%s", what, *buf ? ": " : "", buf);
}

static char *bio_text(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    return n > 0 ? xstrndup(data, (size_t)n) : xstrdup("");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int r = X509_add_ext(cert, ext, -1) ? 0 : -1;
    X509_EXTENSION_free(ext);
    return r;
}

/* A certificate for cn (and, for a leaf, the DNS name cn), of key, signed
 * by issuer_key as issuer (NULL: itself, a CA). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int days)
{
    X509 *c = X509_new();
    uint64_t serial = 0;
    RAND_bytes((unsigned char *)&serial, sizeof(serial));
    bool ok = c && X509_set_version(c, 2) &&
              ASN1_INTEGER_set_uint64(X509_get_serialNumber(c), serial >> 1) &&
              X509_gmtime_adj(X509_getm_notBefore(c), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 86400) &&
              X509_set_pubkey(c, key) &&
              X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "O", MBSTRING_UTF8,
                                         (const unsigned char *)"e2b egress", -1, -1, 0) &&
              X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_UTF8,
                                         (const unsigned char *)cn, -1, -1, 0) &&
              X509_set_issuer_name(c, X509_get_subject_name(issuer ? issuer : c));
    X509 *iss = issuer ? issuer : c;
    if (ok && !issuer)
        ok = add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == 0 &&
             add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
             add_ext(c, iss, NID_subject_key_identifier, "hash") == 0;
    if (ok && issuer) {
        _cleanup_free_ char *san = xasprintf("DNS:%s", cn);
        ok = add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
             add_ext(c, iss, NID_key_usage, "critical,digitalSignature,keyEncipherment") == 0 &&
             add_ext(c, iss, NID_ext_key_usage, "serverAuth") == 0 &&
             add_ext(c, iss, NID_subject_alt_name, san) == 0 &&
             add_ext(c, iss, NID_authority_key_identifier, "keyid:always") == 0;
    }
    if (!ok || !X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256())) {
        X509_free(c);
        return NULL;
    }
    return c;
}

/* The CA made: ca.key (0600) and ca.pem, each written whole. */
static int make_ca(const char *dir, struct e2b_error **err)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *ca = key ? make_cert("e2b egress CA", key, NULL, NULL, CA_DAYS) : NULL;
    BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    int r = -1;
    if (!ca || !kb || !cb || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(cb, ca)) {
        ssl_error(err, "cannot make the egress CA");
    } else {
        _cleanup_free_ char *kt = bio_text(kb), *ct = bio_text(cb);
        _cleanup_free_ char *kp = e2b_path_join(dir, "ca.key"), *cp = e2b_path_join(dir, "ca.pem");
        /* the key first: a certificate on disk always has its key */
        r = e2b_write_file_atomic(kp, kt, strlen(kt), 0600, err) < 0 ||
                    e2b_write_file_atomic(cp, ct, strlen(ct), 0644, err) < 0
                ? -1
                : 0;
        explicit_bzero(kt, strlen(kt));
    }
    BIO_free(kb), BIO_free(cb);
    X509_free(ca);
    EVP_PKEY_free(key);
    return r;
}

int e2b_egress_ca_pem(char **ret_pem, struct e2b_error **err)
{
    if (e2b_crypto_load(err) < 0)
        return e2b_error_wrap(err, "the egress CA needs OpenSSL's libcrypto");
    _cleanup_free_ char *dir = e2b_egress_ca_dir();
    if (e2b_mkdir_p(dir, 0700, err) < 0)
        return -1;
    _cleanup_free_ char *lp = e2b_path_join(dir, ".lock");
    _cleanup_close_ int lk = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lk < 0 || flock(lk, LOCK_EX) < 0)
        return e2b_error_sys(err, errno, "cannot lock '%s'", lp);
    _cleanup_free_ char *cp = e2b_path_join(dir, "ca.pem"), *kp = e2b_path_join(dir, "ca.key");
    if ((access(cp, F_OK) < 0 || access(kp, F_OK) < 0) && make_ca(dir, err) < 0)
        return -1;
    return e2b_read_file(cp, ret_pem, NULL, err);
}

/* ---- the helper's TLS ---------------------------------------------------------- */

struct leaf {
    char *name;
    X509 *cert;
};

struct e2b_egress_tls {
    X509 *ca;
    EVP_PKEY *ca_key, *leaf_key;
    SSL_CTX *server, *client;
    pthread_mutex_t lock;
    struct leaf *leaves;
    size_t n_leaves;
};

static int read_pem(const char *path, X509 **cert, EVP_PKEY **key, struct e2b_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (e2b_read_file(path, &text, &len, err) < 0)
        return -1;
    BIO *b = BIO_new_mem_buf(text, (int)len);
    if (cert)
        *cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    if (key)
        *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    explicit_bzero(text, len);
    if ((cert && !*cert) || (key && !*key))
        return ssl_error(err, path);
    return 0;
}

/* ALPN: HTTP/1.1, whatever else the sandbox's client offers (its requests
 * are read one head at a time). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h1[] = "\x08http/1.1";
    unsigned char *o = NULL;
    if (SSL_select_next_proto(&o, outlen, h1, sizeof(h1) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

int e2b_egress_tls_new(const char *ca_dir, const char *upstream_ca, struct e2b_egress_tls **ret,
                       struct e2b_error **err)
{
    if (e2b_crypto_load(err) < 0 || e2b_ssl_load(err) < 0)
        return e2b_error_wrap(err, "HTTPS transform rules need OpenSSL");
    struct e2b_egress_tls *t = xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    _cleanup_free_ char *cp = e2b_path_join(ca_dir, "ca.pem"),
                        *kp = e2b_path_join(ca_dir, "ca.key");
    static const unsigned char h1[] = "\x08http/1.1";
    if (read_pem(cp, &t->ca, NULL, err) < 0 || read_pem(kp, NULL, &t->ca_key, err) < 0)
        goto fail;
    t->leaf_key = EVP_EC_gen("P-256");
    t->server = SSL_CTX_new(TLS_server_method());
    t->client = SSL_CTX_new(TLS_client_method());
    if (!t->leaf_key || !t->server || !t->client) {
        ssl_error(err, "cannot set up TLS");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(t->server, TLS1_2_VERSION);
    SSL_CTX_set_min_proto_version(t->client, TLS1_2_VERSION);
    SSL_CTX_set_alpn_select_cb(t->server, alpn_select, NULL);
    SSL_CTX_set_alpn_protos(t->client, h1, sizeof(h1) - 1);
    SSL_CTX_set_verify(t->client, SSL_VERIFY_PEER, NULL);
    if (!SSL_CTX_set_default_verify_paths(t->client) ||
        (upstream_ca && *upstream_ca &&
         !SSL_CTX_load_verify_locations(t->client, upstream_ca, NULL))) {
        ssl_error(err, "cannot load the roots trusted upstream");
        goto fail;
    }
    *ret = t;
    return 0;
fail:
    X509_free(t->ca);
    EVP_PKEY_free(t->ca_key);
    EVP_PKEY_free(t->leaf_key);
    SSL_CTX_free(t->server);
    SSL_CTX_free(t->client);
    free(t);
    return -1;
}

/* The certificate for name, made once (a few hundred names at most are
 * kept; past that the oldest half goes). */
static X509 *leaf_for(struct e2b_egress_tls *t, const char *name)
{
    pthread_mutex_lock(&t->lock);
    X509 *c = NULL;
    for (size_t i = 0; i < t->n_leaves && !c; i++)
        if (STREQ(t->leaves[i].name, name))
            c = t->leaves[i].cert;
    if (!c && (c = make_cert(name, t->leaf_key, t->ca, t->ca_key, LEAF_DAYS))) {
        if (t->n_leaves == LEAF_CACHE_MAX) { /* certificates in use keep their own reference */
            size_t half = LEAF_CACHE_MAX / 2;
            for (size_t i = 0; i < half; i++)
                free(t->leaves[i].name), X509_free(t->leaves[i].cert);
            memmove(t->leaves, t->leaves + half, (LEAF_CACHE_MAX - half) * sizeof(*t->leaves));
            t->n_leaves -= half;
        }
        t->leaves = xrealloc(t->leaves, (t->n_leaves + 1) * sizeof(*t->leaves));
        t->leaves[t->n_leaves++] = (struct leaf){ xstrdup(name), c };
    }
    pthread_mutex_unlock(&t->lock);
    return c;
}

/* ---- one connection ------------------------------------------------------------- */

/* Wait for what an SSL call wanted (r its return): 1 go on, 0 the end. */
static int ssl_wait(SSL *s, int fd, int r, int timeout_ms)
{
    int e = SSL_get_error(s, r);
    short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (!ev)
        return 0;
    struct pollfd p = { .fd = fd, .events = ev };
    int pr;
    while ((pr = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    return pr > 0;
}

static int handshake(SSL *s, int fd, bool server)
{
    int64_t deadline = e2b_now_ms() + HANDSHAKE_MS;
    for (;;) {
        int r = server ? SSL_accept(s) : SSL_connect(s);
        if (r == 1)
            return 0;
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0 || !ssl_wait(s, fd, r, (int)left))
            return -1;
    }
}

static int write_all(SSL *s, int fd, const char *buf, size_t len)
{
    while (len) {
        int n = SSL_write(s, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
        if (n > 0) {
            buf += n, len -= (size_t)n;
            continue;
        }
        if (!ssl_wait(s, fd, n, -1))
            return -1;
    }
    return 0;
}

/* What one side sent, to the other: 1 moved something (or nothing was
 * there), 0 that side is done, -1 an error. */
static int pump(SSL *from, int ffd, SSL *to, int tfd, char *buf)
{
    for (;;) {
        int n = SSL_read(from, buf, RELAY_BUF);
        if (n > 0) {
            if (write_all(to, tfd, buf, (size_t)n) < 0)
                return -1;
            continue;
        }
        int e = SSL_get_error(from, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 1;
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
}

int e2b_egress_tls_relay(struct e2b_egress_tls *t, int cfd, int up, const char *name,
                         const json_t *hdrs, struct e2b_error **err)
{
    X509 *leaf = leaf_for(t, name);
    if (!leaf)
        return ssl_error(err, "cannot make a certificate");
    SSL *cs = SSL_new(t->server), *us = SSL_new(t->client);
    char *buf = xmalloc(RELAY_BUF > HEAD_MAX ? RELAY_BUF : HEAD_MAX), *h = NULL;
    struct strbuf head = STRBUF_INIT;
    int r = -1;
    fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) | O_NONBLOCK);
    fcntl(up, F_SETFL, fcntl(up, F_GETFL) | O_NONBLOCK);
    if (!cs || !us || !SSL_set_fd(cs, cfd) || !SSL_set_fd(us, up) ||
        !SSL_use_certificate(cs, leaf) || !SSL_use_PrivateKey(cs, t->leaf_key) ||
        !SSL_set_tlsext_host_name(us, name) || !SSL_set1_host(us, name)) {
        ssl_error(err, "cannot set up TLS");
        goto out;
    }
    /* the host first: a sandbox never talks to a server this machine would not trust */
    if (handshake(us, up, false) < 0) {
        long v = SSL_get_verify_result(us);
        if (v != X509_V_OK)
            e2b_error_set(err, E2B_ERR_PERMISSION, "the certificate of '%s' is not trusted (%s)",
                          name, X509_verify_cert_error_string(v));
        else
            ssl_error(err, "TLS to the host failed");
        goto out;
    }
    if (handshake(cs, cfd, true) < 0) {
        ssl_error(err, "the sandbox's TLS client refused (does it trust the egress CA?)");
        goto out;
    }
    /* the request's head, with the rule's headers */
    int64_t deadline = e2b_now_ms() + HANDSHAKE_MS;
    while (head.len < HEAD_MAX && !memmem(head.buf ? head.buf : "", head.len, "\r\n\r\n", 4)) {
        int n = SSL_read(cs, buf, HEAD_MAX);
        if (n > 0) {
            strbuf_add(&head, buf, (size_t)n);
            continue;
        }
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0 || !ssl_wait(cs, cfd, n, (int)left)) {
            r = 0; /* no request came: nothing to pass on */
            goto out;
        }
    }
    const char *end = head.buf ? memmem(head.buf, head.len, "\r\n\r\n", 4) : NULL;
    if (!end) {
        e2b_error_set(err, E2B_ERR_INVALID, "a request head to '%s' is longer than %d bytes", name,
                      HEAD_MAX);
        goto out;
    }
    size_t hlen = (size_t)(end + 4 - head.buf);
    h = e2b_egress_transform_head(head.buf, hlen, hdrs);
    if (write_all(us, up, h, strlen(h)) < 0 ||
        write_all(us, up, head.buf + hlen, head.len - hlen) < 0) {
        r = 0;
        goto out;
    }
    /* then both ways as they come, until one side is done */
    for (;;) {
        int a = pump(cs, cfd, us, up, buf), b = a > 0 ? pump(us, up, cs, cfd, buf) : a;
        if (a <= 0 || b <= 0)
            break;
        if (SSL_pending(cs) || SSL_pending(us))
            continue;
        struct pollfd p[2] = { { .fd = cfd, .events = POLLIN }, { .fd = up, .events = POLLIN } };
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
    }
    SSL_shutdown(cs);
    SSL_shutdown(us);
    r = 0;
out:
    strbuf_release(&head);
    free(buf);
    free(h);
    SSL_free(cs);
    SSL_free(us);
    ERR_clear_error();
    return r;
}
