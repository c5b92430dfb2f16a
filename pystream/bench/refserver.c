/* The benchmark's reference server: plain C on libuv, the same library
 * pystream's core uses, and the limit for this design.
 *
 *   refserver echo|source
 *   refserver sendfile FILE
 *
 * Listens on 127.0.0.1, port 0, prints "READY <port>" and serves until
 * killed.  echo: writes back what it reads (uv_try_write first, then a
 * queued write that owns the buffer; reading pauses while more than 1 MiB
 * waits to be written).  source: reads an 8-byte big-endian count, sends
 * that many bytes in 64 KiB writes (at most 4 in flight), then closes.
 *
 * sendfile: the reference for pystream's send_file, and no libuv at all:
 * one connection at a time, read the 8-byte count, then sendfile(2) that
 * many bytes of FILE (fewer if it is shorter) to the non-blocking socket,
 * waiting in poll(2) whenever the socket buffer is full, then close.  The
 * same system calls as an event loop's, with nothing else around them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define CHUNK 65536
#define READ_SIZE 65536
#define MAX_QUEUED (1024 * 1024)

typedef struct {
    uv_tcp_t tcp;
    unsigned char header[8];
    size_t header_len;
    uint64_t to_send;   /* source: bytes not yet queued */
    int writes_in_flight;
} conn_t;

typedef struct {
    uv_write_t req;
    char *buf; /* owned: freed when the write completes */
} echo_write_t;

static uv_loop_t *loop;
static int source_mode;
static char chunk[CHUNK];

static void check(int err, const char *what) {
    if (err < 0) {
        fprintf(stderr, "refserver: %s: %s\n", what, uv_strerror(err));
        exit(2);
    }
}

static void on_closed(uv_handle_t *handle) { free(handle); }

static void close_conn(conn_t *c) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    (void)suggested;
    buf->base = malloc(READ_SIZE);
    buf->len = buf->base ? READ_SIZE : 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_echo_written(uv_write_t *req, int status) {
    echo_write_t *w = (echo_write_t *)req;
    uv_stream_t *stream = req->handle;
    free(w->buf);
    free(w);
    if (status < 0) {
        close_conn((conn_t *)stream);
        return;
    }
    if (stream->write_queue_size <= MAX_QUEUED && !uv_is_closing((uv_handle_t *)stream))
        uv_read_start(stream, on_alloc, on_read);
}

static void echo(conn_t *c, char *base, size_t len) {
    uv_buf_t buf = uv_buf_init(base, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n == (int)len) {
        free(base);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        free(base);
        close_conn(c);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    echo_write_t *w = malloc(sizeof *w);
    if (!w) exit(3);
    w->buf = base;
    buf = uv_buf_init(base + done, (unsigned)(len - done));
    check(uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_echo_written), "uv_write");
    if (c->tcp.write_queue_size > MAX_QUEUED) uv_read_stop((uv_stream_t *)&c->tcp);
}

static void pump_source(conn_t *c);

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    close_conn((conn_t *)req->handle);
    free(req);
}

static void on_source_written(uv_write_t *req, int status) {
    conn_t *c = (conn_t *)req->handle;
    free(req);
    c->writes_in_flight--;
    if (status < 0) {
        close_conn(c);
        return;
    }
    pump_source(c);
}

static void pump_source(conn_t *c) {
    while (c->to_send && c->writes_in_flight < 4) {
        size_t n = c->to_send < CHUNK ? (size_t)c->to_send : CHUNK;
        uv_buf_t buf = uv_buf_init(chunk, (unsigned)n);
        uv_write_t *req = malloc(sizeof *req);
        if (!req) exit(3);
        check(uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, on_source_written), "uv_write");
        c->writes_in_flight++;
        c->to_send -= n;
    }
    if (!c->to_send && !c->writes_in_flight) {
        uv_shutdown_t *req = malloc(sizeof *req);
        if (!req) exit(3);
        if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
            free(req);
            close_conn(c);
        }
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    conn_t *c = (conn_t *)stream;
    if (nread <= 0) {
        free(buf->base);
        if (nread < 0) close_conn(c); /* EOF or error */
        return;
    }
    if (!source_mode) {
        echo(c, buf->base, (size_t)nread);
        return;
    }
    for (ssize_t i = 0; i < nread && c->header_len < 8; i++) c->header[c->header_len++] = (unsigned char)buf->base[i];
    free(buf->base);
    if (c->header_len == 8 && !c->to_send && !c->writes_in_flight) {
        uv_read_stop(stream);
        for (int i = 0; i < 8; i++) c->to_send = (c->to_send << 8) | c->header[i];
        pump_source(c);
    }
}

static void on_connection(uv_stream_t *server, int status) {
    check(status, "listen");
    conn_t *c = calloc(1, sizeof *c);
    if (!c) exit(3);
    check(uv_tcp_init(loop, &c->tcp), "uv_tcp_init");
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        close_conn(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    check(uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read), "uv_read_start");
}

/* sendfile mode: the file's bytes to one accepted connection. */
static void send_file_to(int sock, const char *path) {
    unsigned char header[8];
    if (recv(sock, header, 8, MSG_WAITALL) != 8) return; /* the client gave up */
    uint64_t remaining = 0;
    for (int i = 0; i < 8; i++) remaining = (remaining << 8) | header[i];
    int file = open(path, O_RDONLY | O_CLOEXEC);
    if (file < 0) {
        perror("refserver: open");
        exit(2);
    }
    int flags = fcntl(sock, F_GETFL);
    if (flags < 0 || fcntl(sock, F_SETFL, flags | O_NONBLOCK) < 0) {
        perror("refserver: fcntl");
        exit(2);
    }
    off_t offset = 0;
    while (remaining) {
        /* Linux moves at most 0x7ffff000 bytes per call. */
        size_t ask = remaining < 0x7ffff000 ? (size_t)remaining : 0x7ffff000;
        ssize_t n = sendfile(sock, file, &offset, ask);
        if (n > 0) {
            remaining -= (uint64_t)n;
        } else if (n == 0) {
            break; /* the end of the file */
        } else if (errno == EAGAIN) {
            struct pollfd room = {.fd = sock, .events = POLLOUT};
            if (poll(&room, 1, -1) < 0 && errno != EINTR) break;
        } else if (errno != EINTR) {
            break; /* the client went away */
        }
    }
    close(file);
}

static int serve_file(const char *path) {
    signal(SIGPIPE, SIG_IGN); /* a client that went away: EPIPE instead */
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    check(uv_ip4_addr("127.0.0.1", 0, &addr), "uv_ip4_addr");
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(listener, 128) < 0 || getsockname(listener, (struct sockaddr *)&addr, &len) < 0) {
        perror("refserver: listen");
        return 2;
    }
    printf("READY %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    for (;;) {
        int sock = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (sock < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("refserver: accept");
            return 2;
        }
        send_file_to(sock, path);
        close(sock);
    }
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "sendfile")) return serve_file(argv[2]);
    if (argc != 2 || (strcmp(argv[1], "echo") && strcmp(argv[1], "source"))) {
        fprintf(stderr, "usage: refserver echo|source\n       refserver sendfile FILE\n");
        return 2;
    }
    source_mode = !strcmp(argv[1], "source");
    memset(chunk, 'x', sizeof chunk);
    loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    check(uv_ip4_addr("127.0.0.1", 0, &addr), "uv_ip4_addr");
    check(uv_tcp_init(loop, &server), "uv_tcp_init");
    check(uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0), "bind");
    check(uv_listen((uv_stream_t *)&server, 4096, on_connection), "listen");
    struct sockaddr_storage bound;
    int len = sizeof bound;
    check(uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len), "getsockname");
    printf("READY %d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
