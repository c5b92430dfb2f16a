/* The benchmark's load generator: one thread, epoll, plain sockets.
 *
 *   loadgen echo HOST PORT CONNS SIZE SECONDS   CONNS clients, each sending
 *       SIZE bytes and waiting for SIZE bytes back, again and again
 *   loadgen bulk HOST PORT BYTES                ask the server for BYTES and
 *       read them to the end
 *   loadgen idle HOST PORT CONNS                open CONNS connections, one
 *       1-byte echo each, then hold them until stdin closes
 *   loadgen tls-echo HOST PORT CONNS SIZE SECONDS   echo over TLS (only in
 *       the build with -DLOADGEN_TLS and loadgen_tls.c, on OpenSSL)
 *
 * Protocol on stdout, so the caller can sample the server at the right
 * moments: "W" when the measured window starts, "E" when it ends (echo and
 * bulk), "R" when the idle connections are all up; then one JSON line.
 * Built by pystream.bench on first use; no Python runs in the measurement.
 *
 * Every byte that comes back is checked: an echo against the request it
 * answers (a pattern that differs between connections and between one
 * request and the next, so bytes from another connection or an earlier
 * request do not pass), a bulk transfer against the 'x' that every source
 * server sends.  A server that returns wrong bytes fails (exit 3, a message
 * on stderr saying where) instead of being measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH (256 * 1024)
#define MAX_SAMPLES (4 * 1024 * 1024)
/* The echo payload's period: a prime, so no request size or read size is a
 * multiple of it and a shifted, dropped or repeated run of bytes shows. */
#define PERIOD 251
/* What the bulk sources send, every byte (pystream.bench.servers,
 * refserver.c). */
#define BULK_BYTE 'x'

/* The TLS side (loadgen_tls.c), in the build that has it: a client
 * context, a blocking handshake on a connected socket, then non-blocking
 * reads and writes that return -1 with errno EAGAIN when the socket must
 * be waited for, and a close that sends close_notify. */
struct ssl_st;
#ifdef LOADGEN_TLS
void tls_init(void);
struct ssl_st *tls_connect(int fd);
ssize_t tls_send(struct ssl_st *tls, const char *buf, size_t len);
ssize_t tls_recv(struct ssl_st *tls, char *buf, size_t len);
int tls_pending(struct ssl_st *tls);
void tls_close(struct ssl_st *tls);
#endif

typedef struct {
    int fd;
    struct ssl_st *tls; /* NULL: plain TCP */
    size_t to_send;  /* bytes of the current request still to write */
    size_t received; /* bytes of the current reply read so far */
    size_t phase;    /* where in the pattern the current request starts */
    long long index; /* requests this connection completed so far */
    double started;  /* when the current request was first written */
} conn_t;

static char scratch[SCRATCH];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* The server returned bytes other than those expected: say where, exit 3
 * (distinct from 2, a failure of the connection or of loadgen itself). */
static void mismatch(const char *what, const char *got, const char *want, size_t n,
                     unsigned long long offset) {
    size_t i = 0;
    while (i < n && got[i] == want[i]) i++;
    fprintf(stderr,
            "loadgen: wrong bytes from the server: %s, byte %llu is 0x%02x, expected 0x%02x\n",
            what, offset + i, (unsigned char)got[i], (unsigned char)want[i]);
    exit(3);
}

static void say(const char *mark) {
    printf("%s\n", mark);
    fflush(stdout);
}

static int connect_to(const char *host, const char *port) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int err = getaddrinfo(host, port, &hints, &res);
    if (err) {
        fprintf(stderr, "loadgen: %s:%s: %s\n", host, port, gai_strerror(err));
        exit(2);
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) die("connect");
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl");
}

static void watch(int ep, int op, conn_t *c, uint32_t events) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Send or receive on c, over TLS when it has it: what the socket calls
 * return (-1 with errno EAGAIN: wait for the socket). */
static ssize_t conn_send(conn_t *c, const char *buf, size_t len) {
#ifdef LOADGEN_TLS
    if (c->tls) return tls_send(c->tls, buf, len);
#endif
    return send(c->fd, buf, len, MSG_NOSIGNAL);
}

static ssize_t conn_recv(conn_t *c, char *buf, size_t len) {
#ifdef LOADGEN_TLS
    if (c->tls) return tls_recv(c->tls, buf, len);
#endif
    return recv(c->fd, buf, len, 0);
}

/* Whether c holds bytes already read from its socket and not yet returned
 * (TLS reads ahead; epoll says nothing more about those). */
static int conn_pending(conn_t *c) {
#ifdef LOADGEN_TLS
    if (c->tls) return tls_pending(c->tls);
#endif
    (void)c;
    return 0;
}

/* Write what is left of c's request; 1 if it all went, 0 if the socket is
 * full. */
static int push(conn_t *c, const char *request, size_t size) {
    while (c->to_send) {
        ssize_t n = conn_send(c, request + (size - c->to_send), c->to_send);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return 0;
            die("send");
        }
        c->to_send -= (size_t)n;
    }
    return 1;
}

/* One echo run: the connections, the pattern they send, and the counts. */
typedef struct {
    conn_t *conns;
    char *pattern;
    size_t size;
    int ep;
    int in_window, done, outstanding;
    long long window_requests, total_requests;
    double *samples;
    size_t nsamples;
} echo_run_t;

/* The next request on c, or a wait for the socket to take it. */
static void send_request(echo_run_t *r, conn_t *c) {
    if (!push(c, r->pattern + c->phase, r->size)) watch(r->ep, EPOLL_CTL_MOD, c, EPOLLIN | EPOLLOUT);
}

/* Read what c has, check it against the request it answers, count the
 * replies that complete, and send the next request after each. */
static void read_replies(echo_run_t *r, conn_t *c, double t) {
    do {
        ssize_t got = conn_recv(c, scratch, SCRATCH);
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            die("recv");
        }
        if (got == 0) {
            fprintf(stderr, "loadgen: the server closed a connection\n");
            exit(2);
        }
        if ((size_t)got > r->size - c->received) {
            fprintf(stderr, "loadgen: wrong bytes from the server: more came back than were sent\n");
            exit(3);
        }
        const char *want = r->pattern + c->phase + c->received;
        if (memcmp(scratch, want, (size_t)got)) {
            char what[96];
            snprintf(what, sizeof what, "connection %d, request %lld of %zu bytes",
                     (int)(c - r->conns), c->index, r->size);
            mismatch(what, scratch, want, (size_t)got, c->received);
        }
        c->received += (size_t)got;
        if (c->received < r->size) continue;
        c->received = 0;
        c->index++;
        c->phase = (c->phase + 1) % PERIOD;
        r->total_requests++;
        if (r->in_window && !r->done) {
            r->window_requests++;
            if (r->nsamples < MAX_SAMPLES) r->samples[r->nsamples++] = t - c->started;
        }
        if (r->done) {
            r->outstanding--;
            return;
        }
        c->to_send = r->size;
        c->started = t;
        send_request(r, c);
    } while (conn_pending(c));
}

static int run_echo(const char *host, const char *port, int nconns, size_t size,
                    double seconds, int tls) {
    /* Request k of connection i is size bytes of pattern from phase
     * (i + k) % PERIOD: the buffer holds every phase's request. */
    echo_run_t r = {.size = size, .outstanding = nconns};
    r.pattern = malloc(size + PERIOD);
    r.conns = calloc((size_t)nconns, sizeof *r.conns);
    r.samples = malloc(MAX_SAMPLES * sizeof *r.samples);
    if (!r.pattern || !r.conns || !r.samples) die("malloc");
    for (size_t j = 0; j < size + PERIOD; j++) /* 1 to PERIOD: no zero byte */
        r.pattern[j] = (char)(unsigned char)(1 + j % PERIOD);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    if (r.ep < 0) die("epoll_create1");
#ifdef LOADGEN_TLS
    if (tls) tls_init();
#endif
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &r.conns[i];
        c->fd = connect_to(host, port);
#ifdef LOADGEN_TLS
        if (tls) c->tls = tls_connect(c->fd); /* the handshake, blocking */
#endif
        set_nonblocking(c->fd);
        watch(r.ep, EPOLL_CTL_ADD, c, EPOLLIN);
    }
    (void)tls;
    double warmup = seconds / 5 < 0.3 ? seconds / 5 : 0.3;
    double start = now(), window_start = start + warmup, end = window_start + seconds;
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &r.conns[i];
        c->to_send = size;
        c->phase = (size_t)i % PERIOD;
        c->started = now();
        send_request(&r, c);
    }
    struct epoll_event events[256];
    while (r.outstanding > 0) {
        int n = epoll_wait(r.ep, events, 256, 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        double t = now();
        if (!r.in_window && t >= window_start) {
            r.in_window = 1;
            say("W");
        }
        if (!r.done && t >= end) {
            r.done = 1;
            say("E");
        }
        for (int k = 0; k < n; k++) {
            conn_t *c = events[k].data.ptr;
            /* A TLS write may have waited for a read, too: retry it on
             * either event. */
            if (c->to_send && push(c, r.pattern + c->phase, size))
                watch(r.ep, EPOLL_CTL_MOD, c, EPOLLIN);
            if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_replies(&r, c, t);
        }
    }
    qsort(r.samples, r.nsamples, sizeof *r.samples, cmp_double);
    double p50 = r.nsamples ? r.samples[r.nsamples / 2] : 0;
    double p99 = r.nsamples ? r.samples[(size_t)((double)r.nsamples * 0.99)] : 0;
    printf("{\"requests\": %lld, \"total_requests\": %lld, \"seconds\": %.6f, "
           "\"bytes\": %lld, \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
           r.window_requests, r.total_requests, seconds,
           r.window_requests * (long long)size * 2, p50 * 1e6, p99 * 1e6);
    for (int i = 0; i < nconns; i++) {
#ifdef LOADGEN_TLS
        if (r.conns[i].tls) tls_close(r.conns[i].tls);
#endif
        close(r.conns[i].fd);
    }
    close(r.ep);
    free(r.pattern);
    free(r.conns);
    free(r.samples);
    return 0;
}

static int run_bulk(const char *host, const char *port, unsigned long long total) {
    static char expected[SCRATCH];
    memset(expected, BULK_BYTE, sizeof expected);
    int fd = connect_to(host, port);
    unsigned char header[8];
    for (int i = 0; i < 8; i++) header[i] = (unsigned char)(total >> (56 - 8 * i));
    say("W");
    double start = now();
    if (send(fd, header, 8, MSG_NOSIGNAL) != 8) die("send");
    unsigned long long got = 0;
    for (;;) {
        ssize_t n = recv(fd, scratch, SCRATCH, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("recv");
        }
        if (n == 0) break;
        if (memcmp(scratch, expected, (size_t)n)) mismatch("bulk", scratch, expected, (size_t)n, got);
        got += (unsigned long long)n;
    }
    double elapsed = now() - start;
    say("E");
    close(fd);
    if (got != total) {
        fprintf(stderr, "loadgen: received %llu of %llu bytes\n", got, total);
        exit(2);
    }
    printf("{\"bytes\": %llu, \"seconds\": %.6f}\n", got, elapsed);
    return 0;
}

static int run_idle(const char *host, const char *port, int nconns) {
    int *fds = malloc((size_t)nconns * sizeof *fds);
    if (!fds) die("malloc");
    for (int i = 0; i < nconns; i++) {
        fds[i] = connect_to(host, port);
        char b = 'p';
        if (send(fds[i], &b, 1, MSG_NOSIGNAL) != 1) die("send");
        if (recv(fds[i], &b, 1, MSG_WAITALL) != 1) die("recv");
        if (b != 'p') {
            char what[64];
            snprintf(what, sizeof what, "idle connection %d", i);
            mismatch(what, &b, "p", 1, 0);
        }
    }
    say("R");
    while (read(0, scratch, sizeof scratch) > 0) {
    }
    for (int i = 0; i < nconns; i++) close(fds[i]);
    free(fds);
    printf("{\"connections\": %d}\n", nconns);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && !strcmp(argv[1], "echo"))
        return run_echo(argv[2], argv[3], atoi(argv[4]), (size_t)atol(argv[5]), atof(argv[6]), 0);
#ifdef LOADGEN_TLS
    if (argc == 7 && !strcmp(argv[1], "tls-echo"))
        return run_echo(argv[2], argv[3], atoi(argv[4]), (size_t)atol(argv[5]), atof(argv[6]), 1);
#endif
    if (argc == 5 && !strcmp(argv[1], "bulk"))
        return run_bulk(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    if (argc == 5 && !strcmp(argv[1], "idle"))
        return run_idle(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr,
            "usage: loadgen echo HOST PORT CONNS SIZE SECONDS\n"
            "       loadgen bulk HOST PORT BYTES\n"
            "       loadgen idle HOST PORT CONNS\n"
#ifdef LOADGEN_TLS
            "       loadgen tls-echo HOST PORT CONNS SIZE SECONDS\n"
#endif
    );
    return 2;
}
