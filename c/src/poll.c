/* Polls: readiness of fds the owner keeps, in the loop's own epoll set. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

#define PS__POLL_ALL (PS_POLL_READABLE | PS_POLL_WRITABLE)

/* Whether a stream or listener of this loop owns fd (polls are the
 * owner's business: it never asks for one fd twice). */
typedef struct {
  int fd;
  int found;
} ps__fd_search_t;

static void ps__find_fd(uv_handle_t* handle, void* arg) {
  ps__fd_search_t* search = arg;
  uv_os_fd_t fd = -1; /* left so by uv_fileno if the handle has none */
  int tag;

  if (handle->data == NULL || uv_is_closing(handle))
    return;
  tag = ((ps__base_t*)handle->data)->tag;
  if (tag != PS__TAG_STREAM && tag != PS__TAG_LISTENER)
    return;
  (void)uv_fileno(handle, &fd);
  if (fd == search->fd)
    search->found = 1;
}

static void ps__poll_cb(uv_poll_t* handle, int status, int events) {
  ps_poll_t* p = handle->data;
  int ready = events & p->events;

  assert(!p->closing);
  status = PS__FAULT_STATUS(POLL_CB, status);
  if (status < 0) {
    /* libuv reports an error on the fd (EPOLLERR, a refused connect) and
     * stops the handle.  epoll would go on reporting it until the owner
     * acts, as level-triggered readiness of everything watched: so does
     * the poll, which starts again.  That start cannot fail: its only
     * error, UV_EEXIST, is for an fd number another handle of the loop
     * watches, and this poll holds that number. */
    ready = p->events;
    (void)uv_poll_start(handle, p->events, ps__poll_cb);
  }
  if (ready != 0)
    ps__emit_poll(p, ready);
}

/* Makes libuv's watch match events (0 stops it, which cannot fail), and
 * records them once it does: a failed start leaves the watch as it was. */
static int ps__poll_apply(ps_poll_t* p, int events) {
  int err = 0;

  if (events == 0)
    (void)uv_poll_stop(&p->u.poll);
  else
    err = PS__FAULT_CALL(POLL_UV_POLL_START,
                         uv_poll_start(&p->u.poll, events, ps__poll_cb));
  if (err == 0)
    p->events = events;
  return err;
}

int ps_poll_open(ps_loop_t* loop, int fd, int events, ps_poll_t** out) {
  ps__fd_search_t search;
  ps_poll_t* p;
  int flags, err;

  if (fd < 0 || (events & ~PS__POLL_ALL) != 0)
    return UV_EINVAL;
  flags = fcntl(fd, F_GETFL);
  if (flags == -1)
    return -errno;
  p = PS__FAULT_ALLOC(POLL_CALLOC, calloc(1, sizeof(*p)));
  if (p == NULL)
    return UV_ENOMEM;
  p->owner_fd = fd;
  search.fd = fd;
  search.found = 0;
  uv_walk(&loop->uv, ps__find_fd, &search);
  if (search.found) {
    /* libuv watches an fd number once, so the poll watches a duplicate:
     * epoll keeps one entry per fd number and file, and reports the
     * same readiness to both. */
    fd = PS__FAULT_SYS(POLL_DUP, fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (fd == -1) {
      free(p);
      return -errno;
    }
    p->dup = 1;
  }
  /* uv_poll_init checks that epoll takes the fd (UV_EPERM for a regular
   * file) and makes it non-blocking; the owner's mode is put back, as a
   * selector leaves it. */
  err = PS__FAULT_CALL(POLL_UV_POLL_INIT,
                       uv_poll_init(&loop->uv, &p->u.poll, fd));
  if (err != 0) {
    if (p->dup)
      close(fd);
    free(p);
    return err;
  }
  if (!(flags & O_NONBLOCK))
    (void)fcntl(fd, F_SETFL, flags);
  p->u.handle.data = p;
  p->tag = PS__TAG_POLL;
  p->fd = fd;
  p->loop = loop;
  ps__count_polls(loop, 1);
  err = ps__poll_apply(p, events);
  if (err != 0) {
    ps__poll_begin_close(p);
    return err;
  }
  *out = p;
  return 0;
}

int ps_poll_modify(ps_poll_t* p, int events) {
  if (p->closing)
    return UV_EBADF;
  if ((events & ~PS__POLL_ALL) != 0)
    return UV_EINVAL;
  /* libuv applies the change with epoll_ctl in the next pass and aborts
   * the process if that fails; a closed fd is refused here instead. */
  if (fcntl(p->fd, F_GETFD) == -1)
    return -errno;
  return ps__poll_apply(p, events);
}

static void ps__poll_close_cb(uv_handle_t* handle) {
  ps_poll_t* p = handle->data;

  /* libuv took it out of the epoll set when the poll stopped. */
  if (p->dup)
    close(p->fd);
  ps__count_polls(p->loop, -1);
  free(p);
}

void ps__poll_begin_close(ps_poll_t* p) {
  if (p->closing)
    return;
  p->closing = 1;
  uv_close(&p->u.handle, ps__poll_close_cb);
}

int ps_poll_close(ps_poll_t* p) {
  if (p->closing)
    return UV_EALREADY;
  ps__poll_begin_close(p);
  return 0;
}
