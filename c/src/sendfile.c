/* Zero-copy file sending: sendfile(2) from a file to a stream's socket or
 * pipe.  Like ps_stream_try_write it only does what the kernel takes now
 * and never queues: the caller waits for writability and calls again, so
 * it can stop between calls (a cancellation) and count what went. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <errno.h>
#include <sys/sendfile.h>

#include "internal.h"

/* Linux moves at most this much per sendfile(2) call. */
#define PS__MAX_SENDFILE 0x7ffff000

ssize_t ps_stream_try_sendfile(ps_stream_t* s, int in_fd, long long offset,
                               size_t count) {
  uv_os_fd_t fd;
  off_t position = (off_t)offset;
  ssize_t n;

  assert(s->tag == PS__TAG_STREAM);
  if (s->flags & PS__CLOSING)
    return UV_EBADF;
  if (in_fd < 0 || offset < 0)
    return UV_EINVAL;
  /* Bytes queued by ps_stream_write go out first, or the peer would get
   * them after the file's. */
  if (s->writes_pending > 0)
    return UV_EBUSY;
  if (uv_fileno(&s->u.handle, &fd) != 0)
    return UV_EBADF;
  if (count == 0)
    return 0;
  if (count > PS__MAX_SENDFILE)
    count = PS__MAX_SENDFILE;
  /* With an offset pointer, sendfile leaves the file's position alone. */
  do n = PS__FAULT_SYS(SENDFILE, sendfile(fd, in_fd, &position, count));
  while (n < 0 && errno == EINTR);
  if (n >= 0)
    return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return UV_EAGAIN;
  return -errno;
}
