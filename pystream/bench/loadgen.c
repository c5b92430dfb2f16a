/* The benchmark's load generator: one thread, epoll, plain sockets.
 *
 *   loadgen echo HOST PORT CONNS SIZE SECONDS   CONNS clients, each sending
 *       SIZE bytes and waiting for SIZE bytes back, again and again
 *   loadgen bulk HOST PORT BYTES                ask the server for BYTES and
 *       read them to the end
 *   loadgen idle HOST PORT CONNS                open CONNS connections, one
 *       1-byte echo each, then hold them until stdin closes
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

typedef struct {
    int fd;
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

/* Write what is left of c's request; 1 if it all went, 0 if the socket is
 * full. */
static int push(conn_t *c, const char *request, size_t size) {
    while (c->to_send) {
        ssize_t n = send(c->fd, request + (size - c->to_send), c->to_send, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return 0;
            die("send");
        }
        c->to_send -= (size_t)n;
    }
    return 1;
}

static int run_echo(const char *host, const char *port, int nconns, size_t size,
                    double seconds) {
    /* Request k of connection i is size bytes of pattern from phase
     * (i + k) % PERIOD: the buffer holds every phase's request. */
    char *pattern = malloc(size + PERIOD);
    conn_t *conns = calloc((size_t)nconns, sizeof *conns);
    double *samples = malloc(MAX_SAMPLES * sizeof *samples);
    if (!pattern || !conns || !samples) die("malloc");
    for (size_t j = 0; j < size + PERIOD; j++) /* 1 to PERIOD: no zero byte */
        pattern[j] = (char)(unsigned char)(1 + j % PERIOD);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = connect_to(host, port);
        set_nonblocking(conns[i].fd);
        watch(ep, EPOLL_CTL_ADD, &conns[i], EPOLLIN);
    }
    double warmup = seconds / 5 < 0.3 ? seconds / 5 : 0.3;
    double start = now(), window_start = start + warmup, end = window_start + seconds;
    int in_window = 0, done = 0;
    long long window_requests = 0, total_requests = 0;
    size_t nsamples = 0;
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        c->to_send = size;
        c->phase = (size_t)i % PERIOD;
        c->started = now();
        if (!push(c, pattern + c->phase, size)) watch(ep, EPOLL_CTL_MOD, c, EPOLLIN | EPOLLOUT);
    }
    struct epoll_event events[256];
    int outstanding = nconns;
    while (outstanding > 0) {
        int n = epoll_wait(ep, events, 256, 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        double t = now();
        if (!in_window && t >= window_start) {
            in_window = 1;
            say("W");
        }
        if (!done && t >= end) {
            done = 1;
            say("E");
        }
        for (int k = 0; k < n; k++) {
            conn_t *c = events[k].data.ptr;
            if (events[k].events & EPOLLOUT) {
                if (push(c, pattern + c->phase, size)) watch(ep, EPOLL_CTL_MOD, c, EPOLLIN);
            }
            if (!(events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t got = recv(c->fd, scratch, SCRATCH, 0);
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                die("recv");
            }
            if (got == 0) {
                fprintf(stderr, "loadgen: the server closed a connection\n");
                exit(2);
            }
            if ((size_t)got > size - c->received) {
                fprintf(stderr,
                        "loadgen: wrong bytes from the server: more came back than were sent\n");
                exit(3);
            }
            const char *want = pattern + c->phase + c->received;
            if (memcmp(scratch, want, (size_t)got)) {
                char what[96];
                snprintf(what, sizeof what, "connection %d, request %lld of %zu bytes",
                         (int)(c - conns), c->index, size);
                mismatch(what, scratch, want, (size_t)got, c->received);
            }
            c->received += (size_t)got;
            if (c->received < size) continue;
            c->received = 0;
            c->index++;
            c->phase = (c->phase + 1) % PERIOD;
            total_requests++;
            if (in_window && !done) {
                window_requests++;
                if (nsamples < MAX_SAMPLES) samples[nsamples++] = t - c->started;
            }
            if (done) {
                outstanding--;
                continue;
            }
            c->to_send = size;
            c->started = t;
            if (!push(c, pattern + c->phase, size)) watch(ep, EPOLL_CTL_MOD, c, EPOLLIN | EPOLLOUT);
        }
    }
    qsort(samples, nsamples, sizeof *samples, cmp_double);
    double p50 = nsamples ? samples[nsamples / 2] : 0;
    double p99 = nsamples ? samples[(size_t)((double)nsamples * 0.99)] : 0;
    printf("{\"requests\": %lld, \"total_requests\": %lld, \"seconds\": %.6f, "
           "\"bytes\": %lld, \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
           window_requests, total_requests, seconds, window_requests * (long long)size * 2,
           p50 * 1e6, p99 * 1e6);
    for (int i = 0; i < nconns; i++) close(conns[i].fd);
    close(ep);
    free(pattern);
    free(conns);
    free(samples);
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
        return run_echo(argv[2], argv[3], atoi(argv[4]), (size_t)atol(argv[5]), atof(argv[6]));
    if (argc == 5 && !strcmp(argv[1], "bulk"))
        return run_bulk(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    if (argc == 5 && !strcmp(argv[1], "idle"))
        return run_idle(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr,
            "usage: loadgen echo HOST PORT CONNS SIZE SECONDS\n"
            "       loadgen bulk HOST PORT BYTES\n"
            "       loadgen idle HOST PORT CONNS\n");
    return 2;
}
