/* Bad arguments and calls on closing handles: each is refused with its
 * code, an fd handed over is closed even then, and nothing is left. */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "test.h"

static int fd_is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

int main(void) {
  ps_loop_t* loop;
  ps_stream_t *s, *a, *b;
  ps_listener_t* l;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}}, t = {{0}, {0}};
  char long_path[200];
  int fds[2];
  int fd;

  CHECK_EQ(ps_loop_new(&loop), 0);

  /* An unknown kind: refused, and the fd closed all the same. */
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK_EQ(ps_stream_open(loop, fd, 99, &t, &s), UV_EINVAL);
  CHECK(!fd_is_open(fd));
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK_EQ(ps_listener_open(loop, fd, 99, 8, &t, &l), UV_EINVAL);
  CHECK(!fd_is_open(fd));

  /* A bad port or address closes the socket given to connect from. */
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK_EQ(ps_tcp_connect(loop, fd, "127.0.0.1", 70000, 0, &t, &s), UV_EINVAL);
  CHECK(!fd_is_open(fd));
  fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK_EQ(ps_tcp_connect(loop, fd, "::zz", 80, 0, &t, &s), UV_EINVAL);
  CHECK(!fd_is_open(fd));

  /* Unix socket paths: empty, or longer than sun_path. */
  CHECK_EQ(ps_pipe_connect(loop, "", &t, &s), UV_EINVAL);
  memset(long_path, 'x', sizeof(long_path) - 1);
  long_path[sizeof(long_path) - 1] = '\0';
  CHECK_EQ(ps_pipe_connect(loop, long_path, &t, &s), UV_ENAMETOOLONG);

  /* sendfile's own checks, before any system call. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  CHECK_EQ(ps_stream_open(loop, fds[0], PS_KIND_PIPE, &ta, &a), 0);
  CHECK_EQ(ps_stream_open(loop, fds[1], PS_KIND_PIPE, &tb, &b), 0);
  CHECK_EQ(ps_stream_try_sendfile(a, -1, 0, 10), UV_EINVAL);
  CHECK_EQ(ps_stream_try_sendfile(a, 0, -1, 10), UV_EINVAL);
  CHECK_EQ(ps_stream_try_sendfile(a, 0, 0, 0), 0);

  /* A closing stream refuses everything but what reads its state. */
  CHECK_EQ(ps_stream_close(a), 0);
  CHECK_EQ(ps_stream_close(a), UV_EALREADY);
  CHECK_EQ(ps_stream_write(a, "x", 1), UV_EBADF);
  CHECK_EQ(ps_stream_try_write(a, "x", 1), UV_EBADF);
  CHECK_EQ(ps_stream_shutdown(a), UV_EBADF);
  CHECK_EQ(ps_stream_want_read(a, 1), UV_EBADF);
  CHECK_EQ(ps_stream_try_sendfile(a, 0, 0, 10), UV_EBADF);
  PUMP_UNTIL(loop, ta.count[PS_EV_CLOSE] == 1);
  CHECK_EQ(ps_stream_close(b), 0);
  PUMP_UNTIL(loop, tb.count[PS_EV_CLOSE] == 1);
  CHECK_EQ(t.count[PS_EV_CLOSE], 0);
  close_loop_and_check(loop);
  puts("test_bad_args: ok");
  return 0;
}
