/* Listeners: accept connections eagerly into a small queue. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static void ps__listener_notify(ps_listener_t* l) {
  if (l->armed && (l->queued > 0 || l->error != 0)) {
    l->armed = 0;
    ps__emit(l->loop, l->data, PS_EV_ACCEPT, 0);
  }
}

/* Takes the connection libuv holds into the queue. */
static void ps__accept_one(ps_listener_t* l) {
  ps_stream_t* s;
  int err = ps__stream_new(l->loop, l->kind, &s);

  if (err != 0) {
    /* libuv keeps the connection and stops watching until uv_accept. */
    l->libuv_pending = 1;
    l->error = err;
    return;
  }
  /* A real uv_accept failure closes the connection libuv held, as closing
   * the stream does here: the faked one accepts first to match. */
  err = PS__FAULT_STATUS(LISTENER_UV_ACCEPT,
                         uv_accept(&l->u.stream, &s->u.stream));
  if (err != 0) {
    s->data = NULL;
    ps__stream_begin_close(s);
    l->error = err;
    return;
  }
  l->libuv_pending = 0;
  if (l->kind == PS_KIND_TCP)
    (void)uv_tcp_nodelay(&s->u.tcp, 1);
  (void)ps__stream_start_reading(s);
  s->listener = l;
  if (l->queue_tail != NULL)
    l->queue_tail->next_accepted = s;
  else
    l->queue_head = s;
  l->queue_tail = s;
  l->queued++;
  l->loop->dirty = 1;
}

static void ps__on_connection(uv_stream_t* server, int status) {
  ps_listener_t* l = server->data;

  if (status < 0)
    l->error = status;
  else if (l->queued >= PS__ACCEPT_QUEUE_MAX)
    l->libuv_pending = 1; /* libuv stops watching until we take it. */
  else
    ps__accept_one(l);
  ps__listener_notify(l);
}

void ps__listener_close_cb(uv_handle_t* handle) {
  ps_listener_t* l = handle->data;
  ps__emit(l->loop, l->data, PS_EV_CLOSE, 0);
  ps__count_handles(l->loop, PS__TAG_LISTENER, -1);
  free(l);
}

void ps__listener_begin_close(ps_listener_t* l) {
  ps_stream_t* s = l->queue_head;

  if (l->closing)
    return;
  l->closing = 1;
  while (s != NULL) {
    ps_stream_t* next = s->next_accepted;
    s->listener = NULL;
    s->next_accepted = NULL;
    ps__stream_begin_close(s);
    s = next;
  }
  l->queue_head = l->queue_tail = NULL;
  l->queued = 0;
  uv_close(&l->u.handle, ps__listener_close_cb);
  l->loop->dirty = 1;
}

int ps_listener_open(ps_loop_t* loop, int fd, int kind, int backlog, void* data,
                     ps_listener_t** out) {
  ps_listener_t* l = PS__FAULT_ALLOC(LISTENER_CALLOC, calloc(1, sizeof(*l)));
  int err;

  if (l == NULL) {
    close(fd);
    return UV_ENOMEM;
  }
  if (kind == PS_KIND_TCP)
    err =
        PS__FAULT_CALL(LISTENER_UV_TCP_INIT, uv_tcp_init(&loop->uv, &l->u.tcp));
  else if (kind == PS_KIND_PIPE)
    err = PS__FAULT_CALL(LISTENER_UV_PIPE_INIT,
                         uv_pipe_init(&loop->uv, &l->u.pipe, 0));
  else
    err = UV_EINVAL;
  if (err != 0) {
    close(fd);
    free(l);
    return err;
  }
  l->u.handle.data = l;
  l->tag = PS__TAG_LISTENER;
  l->kind = kind;
  l->loop = loop;
  ps__count_handles(loop, PS__TAG_LISTENER, 1);
  if (kind == PS_KIND_TCP)
    err = PS__FAULT_CALL(LISTENER_TCP_OPEN, uv_tcp_open(&l->u.tcp, fd));
  else
    err = PS__FAULT_CALL(LISTENER_PIPE_OPEN, uv_pipe_open(&l->u.pipe, fd));
  if (err != 0)
    close(fd); /* Not adopted: closing the handle would not. */
  if (err == 0)
    err = PS__FAULT_CALL(LISTENER_UV_LISTEN,
                         uv_listen(&l->u.stream, backlog, ps__on_connection));
  if (err != 0) {
    ps__listener_begin_close(l); /* data is NULL: no event */
    return err;
  }
  l->data = data;
  loop->dirty = 1;
  *out = l;
  return 0;
}

int ps_listener_accept(ps_listener_t* l, void* data, ps_stream_t** out) {
  ps_stream_t* s;
  int err;

  if (l->closing)
    return UV_EBADF;
  if (l->queue_head == NULL && l->libuv_pending)
    ps__accept_one(l);
  s = l->queue_head;
  if (s == NULL) {
    if (l->error != 0) {
      err = l->error;
      l->error = 0;
      return err;
    }
    l->armed = 1;
    return UV_EAGAIN;
  }
  l->queue_head = s->next_accepted;
  if (l->queue_head == NULL)
    l->queue_tail = NULL;
  l->queued--;
  s->next_accepted = NULL;
  s->listener = NULL;
  s->data = data;
  if (l->libuv_pending)
    ps__accept_one(l);
  *out = s;
  return 0;
}

int ps_listener_fileno(ps_listener_t* l) {
  uv_os_fd_t fd;
  int err = uv_fileno(&l->u.handle, &fd);
  return err != 0 ? err : fd;
}

int ps_listener_address(ps_listener_t* l, ps_address_t* out) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int fd = ps_listener_fileno(l);

  if (fd < 0)
    return fd;
  memset(&ss, 0, sizeof(ss));
  if (PS__FAULT_SYS(LISTENER_GETSOCKNAME,
                    getsockname(fd, (struct sockaddr*)&ss, &len)) != 0)
    return -errno;
  return ps__address(&ss, (int)len, out);
}

int ps_listener_close(ps_listener_t* l) {
  if (l->closing)
    return UV_EALREADY;
  ps__listener_begin_close(l);
  return 0;
}
