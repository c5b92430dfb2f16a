/* Streams: TCP and Unix sockets with a receive buffer owned here. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

typedef struct {
  uv_write_t req;
  ps_stream_t* stream;
} ps__write_t;

/* libuv returns int from uv_try_write, so one attempt writes at most this. */
#define PS__MAX_TRY_WRITE ((size_t)1 << 30)

static size_t ps__buffered(const ps_stream_t* s) {
  assert(s->rstart <= s->rend && s->rend <= s->rcap);
  return s->rend - s->rstart;
}

int ps__stream_new(ps_loop_t* loop, int kind, ps_stream_t** out) {
  ps_stream_t* s = PS__FAULT_ALLOC(STREAM_CALLOC, calloc(1, sizeof(*s)));
  int err;

  if (s == NULL)
    return UV_ENOMEM;
  if (kind == PS_KIND_TCP)
    err = PS__FAULT_CALL(STREAM_UV_TCP_INIT, uv_tcp_init(&loop->uv, &s->u.tcp));
  else if (kind == PS_KIND_PIPE)
    err = PS__FAULT_CALL(STREAM_UV_PIPE_INIT,
                         uv_pipe_init(&loop->uv, &s->u.pipe, 0));
  else
    err = UV_EINVAL;
  if (err != 0) {
    free(s);
    return err;
  }
  s->u.handle.data = s;
  s->tag = PS__TAG_STREAM;
  s->kind = kind;
  s->loop = loop;
  s->low_water = PS__DEFAULT_LOW_WATER;
  s->high_water = PS__DEFAULT_HIGH_WATER;
  ps__count_handles(loop, PS__TAG_STREAM, 1);
  *out = s;
  return 0;
}

/* The end of a stream libuv has closed: its last event, and its memory. */
static void ps__stream_release(ps_stream_t* s) {
  ps_loop_t* loop = s->loop;

  assert(s->tag == PS__TAG_STREAM && (s->flags & PS__CLOSING));
  assert(s->writes_pending == 0); /* libuv cancelled them before closing */
  ps__emit(loop, s->data, PS_EV_CLOSE, 0);
  ps__count_buffered(loop, -(long)ps__buffered(s));
  ps__count_handles(loop, PS__TAG_STREAM, -1);
  free(s->rbuf);
  free(s);
}

void ps__stream_close_cb(uv_handle_t* handle) {
  ps_stream_t* s = handle->data;
  /* Only uv_close, after ps__stream_begin_close, brings us here. */
  assert(s->tag == PS__TAG_STREAM && (s->flags & PS__CLOSING));
  ps_loop_t* loop = s->loop;

  /* Accepted but never taken, it is closed only by its listener's close,
   * which unlinks it from the queue first: ps_loop_close's uv_walk, too,
   * reaches a listener before the streams it accepted, which libuv made
   * after it. */
  assert(s->listener == NULL);
  if ((s->flags & PS__RELEASE_LATER) && !loop->closing) {
    /* The owner learns of this close from the PS_EV_SHUTDOWN recorded in
     * this very pass, and may still call on the stream while it reads
     * this pass's events: the stream stays until the next pass. */
    s->next_release = loop->release_queue;
    loop->release_queue = s;
    loop->dirty = 1;
    return;
  }
  ps__stream_release(s);
}

/* Frees the streams whose release the last pass put off. */
void ps__stream_release_queued(ps_loop_t* loop) {
  while (loop->release_queue != NULL) {
    ps_stream_t* s = loop->release_queue;
    loop->release_queue = s->next_release;
    ps__stream_release(s);
  }
}

void ps__stream_begin_close(ps_stream_t* s) {
  if (s->flags & PS__CLOSING)
    return;
  s->flags |= PS__CLOSING;
  s->flags &= ~(PS__READING | PS__WANT_READ);
  uv_close(&s->u.handle, ps__stream_close_cb);
  s->loop->dirty = 1;
}

/* Frees a stream nobody will hear from: no event, no owner. */
static void ps__stream_abandon(ps_stream_t* s) {
  s->data = NULL;
  ps__stream_begin_close(s);
}

static void ps__notify_read(ps_stream_t* s) {
  if ((s->flags & PS__WANT_READ) &&
      (ps__buffered(s) >= s->want || s->read_status != 0)) {
    s->flags &= ~PS__WANT_READ;
    ps__emit(s->loop, s->data, PS_EV_READ, 0);
  }
}

static size_t ps__high_water(const ps_stream_t* s) {
  if ((s->flags & PS__WANT_READ) && s->want > s->high_water)
    return s->want;
  return s->high_water;
}

static void ps__stop_reading(ps_stream_t* s) {
  if (s->flags & PS__READING) {
    uv_read_stop(&s->u.stream);
    s->flags &= ~PS__READING;
  }
}

static void ps__on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
  ps_stream_t* s = handle->data;
  ps_loop_t* loop = s->loop;
  size_t buffered = ps__buffered(s);
  (void)suggested;

  if (buffered == 0 && s->rcap < PS__READ_CHUNK) {
    /* libuv calls on_read before any other on_alloc: the spare is ours
     * until then. */
    if (loop->spare == NULL)
      loop->spare =
          PS__FAULT_ALLOC(STREAM_SPARE_MALLOC, malloc(PS__READ_CHUNK));
    if (loop->spare != NULL) {
      s->flags |= PS__IN_SPARE;
      s->rstart = s->rend = 0;
      buf->base = loop->spare;
      buf->len = PS__READ_CHUNK;
      return;
    }
  }
  if (buffered == 0 && s->rcap > 4 * PS__READ_CHUNK) {
    /* A burst grew the buffer; do not keep it for an idle connection. */
    free(s->rbuf);
    s->rbuf = NULL;
    s->rcap = s->rstart = s->rend = 0;
  }
  if (s->rcap - s->rend < PS__MIN_READ_ROOM && s->rstart > 0) {
    memmove(s->rbuf, s->rbuf + s->rstart, buffered);
    s->rstart = 0;
    s->rend = buffered;
  }
  if (s->rcap - s->rend < PS__MIN_READ_ROOM) {
    size_t cap = s->rcap ? s->rcap * 2 : PS__READ_CHUNK;
    char* grown = PS__FAULT_ALLOC(STREAM_READ_REALLOC, realloc(s->rbuf, cap));
    if (grown == NULL) {
      *buf = uv_buf_init(NULL, 0); /* on_read gets UV_ENOBUFS */
      return;
    }
    s->rbuf = grown;
    s->rcap = cap;
  }
  buf->base = s->rbuf + s->rend;
  buf->len = s->rcap - s->rend;
}

/* Moves what libuv read into the spare buffer to the stream: copied into
 * a small buffer of the stream's own, or, for a big read, the spare itself
 * becomes the stream's buffer.  0, or UV_ENOMEM. */
static int ps__adopt_spare(ps_stream_t* s, size_t nread) {
  ps_loop_t* loop = s->loop;
  if (nread > PS__SMALL_READ) {
    free(s->rbuf);
    s->rbuf = loop->spare;
    s->rcap = PS__READ_CHUNK;
    loop->spare = NULL;
    return 0;
  }
  if (s->rcap < nread) {
    size_t cap = PS__SMALL_BUFFER_MIN;
    char* grown;
    while (cap < nread) cap *= 2;
    grown = PS__FAULT_ALLOC(STREAM_ADOPT_REALLOC, realloc(s->rbuf, cap));
    if (grown == NULL)
      return UV_ENOMEM;
    s->rbuf = grown;
    s->rcap = cap;
  }
  memcpy(s->rbuf, loop->spare, nread);
  return 0;
}

/* libuv reports end of file, without reading again, when the kernel
 * signals a hang-up after a partial read; but a reset (RST) signals a
 * hang-up too.  The socket's pending error tells them apart. */
static int ps__pending_error_or_eof(ps_stream_t* s) {
  uv_os_fd_t fd;
  int err = 0;
  socklen_t len = sizeof(err);
  if (uv_fileno(&s->u.handle, &fd) != 0)
    return UV_EOF;
  if (PS__FAULT_SYS(STREAM_GETSOCKOPT_SO_ERROR,
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)) != 0 ||
      err == 0)
    return UV_EOF;
  return -err; /* libuv's codes are minus errno on Unix */
}

static void ps__on_read(uv_stream_t* stream, ssize_t nread,
                        const uv_buf_t* buf) {
  ps_stream_t* s = stream->data;
  (void)buf;

  nread = PS__FAULT_STATUS(STREAM_READ_CB, nread);
  if (s->flags & PS__IN_SPARE) {
    s->flags &= ~PS__IN_SPARE;
    if (nread > 0 && ps__adopt_spare(s, (size_t)nread) != 0)
      nread = UV_ENOBUFS;
  }
  if (nread > 0) {
    s->rend += (size_t)nread;
    ps__count_buffered(s->loop, nread);
    if (ps__buffered(s) >= ps__high_water(s))
      ps__stop_reading(s);
  } else if (nread < 0) {
    s->read_status = nread == UV_ENOBUFS ? UV_ENOMEM : (int)nread;
    if (nread == UV_EOF)
      s->read_status = ps__pending_error_or_eof(s);
    ps__stop_reading(s);
  }
  ps__notify_read(s);
}

int ps__stream_start_reading(ps_stream_t* s) {
  int err;
  if (s->flags & (PS__READING | PS__CLOSING | PS__CONNECTING))
    return 0;
  if (s->read_status != 0)
    return 0;
  err = PS__FAULT_CALL(STREAM_UV_READ_START,
                       uv_read_start(&s->u.stream, ps__on_alloc, ps__on_read));
  if (err != 0) {
    s->read_status = err;
    return err;
  }
  s->flags |= PS__READING;
  s->loop->dirty = 1;
  return 0;
}

static void ps__on_connect(uv_connect_t* req, int status) {
  ps_stream_t* s = req->handle->data;

  s->flags &= ~PS__CONNECTING;
  status = PS__FAULT_STATUS(STREAM_CONNECT_CB, status);
  if (status == 0 && !(s->flags & PS__CLOSING)) {
    if (s->kind == PS_KIND_TCP)
      (void)uv_tcp_nodelay(&s->u.tcp, 1);
    (void)ps__stream_start_reading(s);
  }
  ps__emit(s->loop, s->data, PS_EV_CONNECT, status);
}

int ps_tcp_connect(ps_loop_t* loop, int fd, const char* ip, int port,
                   unsigned int scope_id, void* data, ps_stream_t** out) {
  struct sockaddr_storage addr;
  ps_stream_t* s;
  int err;

  if (port < 0 || port > 65535) {
    if (fd >= 0)
      close(fd);
    return UV_EINVAL;
  }
  memset(&addr, 0, sizeof(addr));
  if (strchr(ip, ':') != NULL) {
    struct sockaddr_in6* sin6 = (struct sockaddr_in6*)&addr;
    err = uv_ip6_addr(ip, port, sin6);
    sin6->sin6_scope_id = scope_id;
  } else {
    err = uv_ip4_addr(ip, port, (struct sockaddr_in*)&addr);
  }
  if (err == 0)
    err = ps__stream_new(loop, PS_KIND_TCP, &s);
  if (err != 0) {
    if (fd >= 0)
      close(fd);
    return err;
  }
  if (fd >= 0) {
    err = PS__FAULT_CALL(STREAM_CONNECT_TCP_OPEN, uv_tcp_open(&s->u.tcp, fd));
    if (err != 0) {
      close(fd); /* Not adopted, so closing the handle leaves it open. */
      ps__stream_abandon(s);
      return err;
    }
  }
  err = PS__FAULT_CALL(
      STREAM_UV_TCP_CONNECT,
      uv_tcp_connect(&s->req.connect, &s->u.tcp, (const struct sockaddr*)&addr,
                     ps__on_connect));
  if (err != 0) {
    ps__stream_abandon(s);
    return err;
  }
  s->flags |= PS__CONNECTING;
  s->data = data;
  loop->dirty = 1;
  *out = s;
  return 0;
}

int ps_pipe_connect(ps_loop_t* loop, const char* path, void* data,
                    ps_stream_t** out) {
  struct sockaddr_un probe;
  ps_stream_t* s;
  int err;

  /* libuv 1.44 would silently cut a long path. */
  if (path[0] == '\0')
    return UV_EINVAL;
  if (strlen(path) >= sizeof(probe.sun_path))
    return UV_ENAMETOOLONG;
  err = ps__stream_new(loop, PS_KIND_PIPE, &s);
  if (err != 0)
    return err;
  uv_pipe_connect(&s->req.connect, &s->u.pipe, path, ps__on_connect);
  s->flags |= PS__CONNECTING;
  s->data = data;
  loop->dirty = 1;
  *out = s;
  return 0;
}

int ps_stream_open(ps_loop_t* loop, int fd, int kind, void* data,
                   ps_stream_t** out) {
  ps_stream_t* s;
  int err = ps__stream_new(loop, kind, &s);

  if (err != 0) {
    close(fd);
    return err;
  }
  if (kind == PS_KIND_TCP)
    err = PS__FAULT_CALL(STREAM_OPEN_TCP_OPEN, uv_tcp_open(&s->u.tcp, fd));
  else
    err = PS__FAULT_CALL(STREAM_OPEN_PIPE_OPEN, uv_pipe_open(&s->u.pipe, fd));
  if (err != 0) {
    close(fd);
    ps__stream_abandon(s);
    return err;
  }
  if (kind == PS_KIND_TCP)
    (void)uv_tcp_nodelay(&s->u.tcp, 1);
  if (uv_is_readable(&s->u.stream)) {
    err = ps__stream_start_reading(s);
    if (err != 0) {
      ps__stream_abandon(s);
      return err;
    }
  } else {
    /* A pipe's write end (an O_WRONLY fd), which libuv marks unreadable:
     * uv_read_start would fail.  Nothing will ever arrive, so reading has
     * ended before it began, as at end of file. */
    s->read_status = UV_EOF;
  }
  s->data = data;
  *out = s;
  return 0;
}

int ps_stream_kind(ps_stream_t* s) {
  return s->kind;
}

int ps_stream_fileno(ps_stream_t* s) {
  uv_os_fd_t fd;
  int err = uv_fileno(&s->u.handle, &fd);
  return err != 0 ? err : fd;
}

size_t ps_stream_buffered(ps_stream_t* s) {
  return ps__buffered(s);
}

int ps_stream_read_status(ps_stream_t* s) {
  return s->read_status;
}

int ps_stream_want_read(ps_stream_t* s, size_t want) {
  if (s->flags & PS__CLOSING)
    return UV_EBADF;
  if (want == 0)
    want = 1;
  if (ps__buffered(s) >= want || s->read_status != 0)
    return 1;
  s->want = want;
  s->flags |= PS__WANT_READ;
  /* Reading may have stopped at the high-water mark below what is wanted. */
  (void)ps__stream_start_reading(s);
  return 0;
}

static void ps__consumed(ps_stream_t* s, size_t n) {
  assert(n <= ps__buffered(s));
  s->rstart += n;
  ps__count_buffered(s->loop, -(long)n);
  /* Rewinding leaves the bytes in place: the caller may still read them. */
  if (s->rstart == s->rend)
    s->rstart = s->rend = 0;
  if (ps__buffered(s) < s->low_water)
    (void)ps__stream_start_reading(s);
}

ssize_t ps_stream_take_ptr(ps_stream_t* s, size_t max, const char** out) {
  size_t n = ps__buffered(s);

  if (n == 0)
    return s->read_status;
  if (n > max)
    n = max;
  *out = s->rbuf + s->rstart;
  ps__consumed(s, n);
  return (ssize_t)n;
}

ssize_t ps_stream_take_into(ps_stream_t* s, char* dst, size_t len) {
  size_t n = ps__buffered(s);

  if (n == 0)
    return s->read_status;
  if (n > len)
    n = len;
  memcpy(dst, s->rbuf + s->rstart, n);
  ps__consumed(s, n);
  return (ssize_t)n;
}

ssize_t ps_stream_find(ps_stream_t* s, const char* sep, size_t sep_len,
                       size_t start) {
  size_t n = ps__buffered(s);
  const char* base = s->rbuf + s->rstart;
  const char* hit;

  if (sep_len == 0 || start > n || n - start < sep_len)
    return -1;
  if (sep_len == 1)
    hit = memchr(base + start, sep[0], n - start);
  else
    hit = memmem(base + start, n - start, sep, sep_len);
  return hit == NULL ? -1 : hit - base;
}

ssize_t ps_stream_try_write(ps_stream_t* s, const char* buf, size_t len) {
  uv_buf_t b;
  int n;

  if (s->flags & PS__CLOSING)
    return UV_EBADF;
  if (len == 0)
    return 0;
  b.base = (char*)buf;
  b.len = len < PS__MAX_TRY_WRITE ? len : PS__MAX_TRY_WRITE;
  n = PS__FAULT_CALL(STREAM_UV_TRY_WRITE, uv_try_write(&s->u.stream, &b, 1));
  if (n == UV_EAGAIN)
    return 0;
  return n;
}

static void ps__on_write(uv_write_t* req, int status) {
  ps__write_t* w = (ps__write_t*)req;
  ps_stream_t* s = w->stream;

  s->writes_pending--;
  ps__count_writes(s->loop, -1);
  status = PS__FAULT_STATUS(STREAM_WRITE_CB, status);
  ps__emit(s->loop, s->data, PS_EV_WRITE, status);
  free(w);
}

int ps_stream_write(ps_stream_t* s, const char* buf, size_t len) {
  ps__write_t* w;
  uv_buf_t b;
  int err;

  if (s->flags & PS__CLOSING)
    return UV_EBADF;
  w = PS__FAULT_ALLOC(STREAM_WRITE_MALLOC, malloc(sizeof(*w)));
  if (w == NULL)
    return UV_ENOMEM;
  w->stream = s;
  b.base = (char*)buf;
  b.len = len;
  err = PS__FAULT_CALL(STREAM_UV_WRITE,
                       uv_write(&w->req, &s->u.stream, &b, 1, ps__on_write));
  if (err != 0) {
    free(w);
    return err;
  }
  s->writes_pending++;
  ps__count_writes(s->loop, 1);
  s->loop->dirty = 1;
  return 0;
}

size_t ps_stream_write_queue_size(ps_stream_t* s) {
  return uv_stream_get_write_queue_size(&s->u.stream);
}

int ps_stream_writable(ps_stream_t* s) {
  struct pollfd p;
  int fd = ps_stream_fileno(s);
  int n;

  if (fd < 0)
    return fd;
  if (s->writes_pending > 0)
    return 0;
  p.fd = fd;
  p.events = POLLOUT;
  p.revents = 0;
  do n = PS__FAULT_SYS(STREAM_POLL, poll(&p, 1, 0));
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  return n > 0 ? 1 : 0;
}

static void ps__on_shutdown(uv_shutdown_t* req, int status) {
  ps_stream_t* s = req->handle->data;

  status = PS__FAULT_STATUS(STREAM_SHUTDOWN_CB, status);
  if (status == UV_ENOTSOCK && s->kind == PS_KIND_PIPE) {
    /* A pipe that is not a socket has no half-close: libuv wrote all that
     * was queued, then shutdown(2) failed and changed nothing.  Only
     * closing the fd gives the reader its end of file, so the shutdown is
     * done by closing the stream. */
    assert(!(s->flags & PS__CLOSING) && s->writes_pending == 0);
    ps__emit(s->loop, s->data, PS_EV_SHUTDOWN, 0);
    s->flags |= PS__RELEASE_LATER;
    ps__stream_begin_close(s);
    return;
  }
  ps__emit(s->loop, s->data, PS_EV_SHUTDOWN, status);
}

int ps_stream_shutdown(ps_stream_t* s) {
  int err;
  if (s->flags & PS__CLOSING)
    return UV_EBADF;
  if (s->flags & PS__CONNECTING)
    return UV_ENOTCONN; /* (and its request is in use) */
  err = PS__FAULT_CALL(
      STREAM_UV_SHUTDOWN,
      uv_shutdown(&s->req.shutdown, &s->u.stream, ps__on_shutdown));
  if (err == 0)
    s->loop->dirty = 1;
  return err;
}

int ps_stream_close(ps_stream_t* s) {
  if (s->flags & PS__CLOSING)
    return UV_EALREADY;
  ps__stream_begin_close(s);
  return 0;
}

int ps_stream_setsockopt(ps_stream_t* s, int level, int name, const void* value,
                         size_t len) {
  int fd = ps_stream_fileno(s);
  if (fd < 0)
    return fd;
  if (PS__FAULT_SYS(STREAM_SETSOCKOPT,
                    setsockopt(fd, level, name, value, (socklen_t)len)) != 0)
    return -errno;
  return 0;
}

int ps_stream_getsockopt(ps_stream_t* s, int level, int name, void* value,
                         size_t* len) {
  int fd = ps_stream_fileno(s);
  socklen_t n = (socklen_t)*len;
  if (fd < 0)
    return fd;
  if (PS__FAULT_SYS(STREAM_GETSOCKOPT,
                    getsockopt(fd, level, name, value, &n)) != 0)
    return -errno;
  *len = n;
  return 0;
}

int ps_stream_address(ps_stream_t* s, int peer, ps_address_t* out) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int fd = ps_stream_fileno(s);
  int r;

  if (fd < 0)
    return fd;
  memset(&ss, 0, sizeof(ss));
  r = PS__FAULT_SYS(STREAM_GETNAME,
                    peer ? getpeername(fd, (struct sockaddr*)&ss, &len)
                         : getsockname(fd, (struct sockaddr*)&ss, &len));
  if (r != 0)
    return -errno;
  return ps__address(&ss, (int)len, out);
}
