/* The load generator's TLS client, on OpenSSL: compiled into loadgen with
 * -DLOADGEN_TLS (pystream.bench builds it only for the TLS workloads).
 *
 * The handshake is done blocking, before the measured window; after it the
 * socket is non-blocking and tls_send / tls_recv answer as send and recv
 * do, -1 with errno EAGAIN when the socket must be waited for.  Any TLS
 * failure ends loadgen (exit 2, OpenSSL's reason on stderr).  The server's
 * certificate is not verified: the benchmark makes a throwaway one per run,
 * and verifying it would only add the client's work.
 */
#if defined(__has_include)
#if !__has_include(<openssl/ssl.h>)
#error "loadgen's TLS mode needs OpenSSL's headers: install libssl-dev"
#endif
#endif
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

void tls_init(void);
struct ssl_st *tls_connect(int fd);
ssize_t tls_send(struct ssl_st *tls, const char *buf, size_t len);
ssize_t tls_recv(struct ssl_st *tls, char *buf, size_t len);
int tls_pending(struct ssl_st *tls);
void tls_close(struct ssl_st *tls);

static SSL_CTX *context;

static void tls_die(const char *what) {
    char reason[256];
    unsigned long code = ERR_get_error();
    if (code)
        ERR_error_string_n(code, reason, sizeof reason);
    else
        snprintf(reason, sizeof reason, "%s", errno ? "system error" : "no reason given");
    fprintf(stderr, "loadgen: TLS %s failed: %s\n", what, reason);
    exit(2);
}

void tls_init(void) {
    context = SSL_CTX_new(TLS_client_method());
    if (!context) tls_die("context");
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
    /* Partial writes, as send's; a retried write may come from a moved
     * pointer (the same bytes, as loadgen resends from its pattern). */
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read whole socket buffers, not a record header then its body: two
     * system calls per record otherwise.  What is read ahead is drained
     * with tls_pending, since epoll no longer reports it. */
    SSL_CTX_set_read_ahead(context, 1);
}

struct ssl_st *tls_connect(int fd) {
    SSL *tls = SSL_new(context);
    if (!tls || !SSL_set_fd(tls, fd)) tls_die("setup");
    if (SSL_connect(tls) != 1) tls_die("handshake");
    return tls;
}

/* What a failed SSL_read or SSL_write means: wait (EAGAIN), or the end. */
static ssize_t tls_failed(SSL *tls, int ret, const char *what) {
    switch (SSL_get_error(tls, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify */
    default:
        tls_die(what);
        return -1;
    }
}

ssize_t tls_send(struct ssl_st *tls, const char *buf, size_t len) {
    size_t written = 0;
    int ret = SSL_write_ex(tls, buf, len, &written);
    return ret == 1 ? (ssize_t)written : tls_failed(tls, ret, "write");
}

ssize_t tls_recv(struct ssl_st *tls, char *buf, size_t len) {
    size_t got = 0;
    int ret = SSL_read_ex(tls, buf, len, &got);
    return ret == 1 ? (ssize_t)got : tls_failed(tls, ret, "read");
}

int tls_pending(struct ssl_st *tls) { return SSL_has_pending(tls); }

/* close_notify, once, without waiting for the server's. */
void tls_close(struct ssl_st *tls) {
    SSL_shutdown(tls);
    SSL_free(tls);
}
