/* Bad arguments and calls on closing handles: each is refused with its
 * code, an fd handed over is closed even then, and nothing is left. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
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
  /* A count beyond what one sendfile takes is cut to that: the file's
   * bytes go out. */
  {
    FILE* file = tmpfile();
    CHECK(file != NULL);
    CHECK_EQ(write(fileno(file), "file", 4), 4);
    CHECK_EQ(ps_stream_try_sendfile(a, fileno(file), 0, (size_t)1 << 40), 4);
    fclose(file);
  }
  /* Edges of the read side: wanting 0 bytes is wanting 1 (none are here:
   * armed); a separator that is empty, or is searched for past the end,
   * is not found; an empty write writes nothing. */
  CHECK_EQ(ps_stream_want_read(b, 0), 0);
  CHECK_EQ(ps_stream_find(b, "", 0, 0), -1);
  CHECK_EQ(ps_stream_find(b, "f", 1, 5), -1);
  CHECK_EQ(ps_stream_try_write(a, "", 0), 0);

  /* A closing stream refuses everything but what reads its state. */
  CHECK_EQ(ps_stream_close(a), 0);
  CHECK_EQ(ps_stream_close(a), UV_EALREADY);
  CHECK_EQ(ps_stream_write(a, "x", 1), UV_EBADF);
  CHECK_EQ(ps_stream_try_write(a, "x", 1), UV_EBADF);
  CHECK_EQ(ps_stream_shutdown(a), UV_EBADF);
  CHECK_EQ(ps_stream_want_read(a, 1), UV_EBADF);
  CHECK_EQ(ps_stream_try_sendfile(a, 0, 0, 10), UV_EBADF);
  CHECK_EQ(ps_stream_writable(a), UV_EBADF);
  CHECK_EQ(ps_stream_setsockopt(a, SOL_SOCKET, SO_KEEPALIVE, &fd, sizeof(fd)),
           UV_EBADF);
  {
    size_t len = sizeof(fd);
    ps_address_t addr;
    CHECK_EQ(ps_stream_getsockopt(a, SOL_SOCKET, SO_KEEPALIVE, &fd, &len),
             UV_EBADF);
    CHECK_EQ(ps_stream_address(a, 0, &addr), UV_EBADF);
  }
  PUMP_UNTIL(loop, ta.count[PS_EV_CLOSE] == 1);
  CHECK_EQ(ps_stream_close(b), 0);
  PUMP_UNTIL(loop, tb.count[PS_EV_CLOSE] == 1);
  CHECK_EQ(t.count[PS_EV_CLOSE], 0);

  /* A closing listener: accept refused, a second close too, no address. */
  {
    struct sockaddr_in sin;
    ps_address_t addr;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(bind(fd, (struct sockaddr*)&sin, sizeof(sin)), 0);
    CHECK_EQ(ps_listener_open(loop, fd, PS_KIND_TCP, 8, &t, &l), 0);
    CHECK_EQ(ps_listener_close(l), 0);
    CHECK_EQ(ps_listener_close(l), UV_EALREADY);
    CHECK_EQ(ps_listener_accept(l, &t, &s), UV_EBADF);
    CHECK_EQ(ps_listener_address(l, &addr), UV_EBADF);
    PUMP_UNTIL(loop, t.count[PS_EV_CLOSE] == 1);
  }

  /* Spawn's arguments: argv and stdio_fds are required. */
  {
    char* argv[] = {"true", NULL};
    int stdio[3] = {-1, -1, -1};
    ps_process_t* p;
    CHECK_EQ(ps_process_spawn(loop, "true", NULL, NULL, NULL, stdio, &t, &p),
             UV_EINVAL);
    CHECK_EQ(ps_process_spawn(loop, "true", argv, NULL, NULL, NULL, &t, &p),
             UV_EINVAL);
  }
  close_loop_and_check(loop);
  puts("test_bad_args: ok");
  return 0;
}
