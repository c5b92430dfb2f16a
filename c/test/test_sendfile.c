/* ps_stream_try_sendfile: a file through a socket pair, what the socket
 * takes at a time, in order after queued writes, with the file's position
 * unchanged; end of file, bad arguments, a closing stream. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "test.h"

#define FILE_SIZE (3 * 1024 * 1024 + 5)

static char content[FILE_SIZE];
static char got[FILE_SIZE + 65536];

static int make_file(void) {
  char path[] = "/tmp/ps-test-sendfile-XXXXXX";
  int fd = mkstemp(path);
  size_t i, done = 0;
  CHECK(fd >= 0);
  CHECK_EQ(unlink(path), 0);
  for (i = 0; i < FILE_SIZE; i++) content[i] = (char)(i * 7 + i / 65536);
  while (done < FILE_SIZE) {
    ssize_t n = write(fd, content + done, FILE_SIZE - done);
    CHECK(n > 0);
    done += (size_t)n;
  }
  return fd;
}

/* Read what the peer has now (it is non-blocking) into got at *have. */
static void drain(int peer, size_t* have) {
  for (;;) {
    ssize_t n = read(peer, got + *have, sizeof(got) - *have);
    if (n < 0 && errno == EAGAIN)
      return;
    CHECK(n > 0);
    *have += (size_t)n;
  }
}

static void test_whole_file(ps_loop_t* loop, int file) {
  tally_t t = {{0}, {0}};
  ps_stream_t* s;
  int sv[2], eagain = 0;
  long long sent = 0;
  size_t have = 0;

  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  CHECK_EQ(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
  CHECK_EQ(ps_stream_open(loop, sv[0], PS_KIND_PIPE, &t, &s), 0);
  CHECK_EQ(lseek(file, 17, SEEK_SET), 17);
  while (sent < FILE_SIZE) {
    ssize_t n = ps_stream_try_sendfile(s, file, sent, FILE_SIZE);
    if (n == UV_EAGAIN) {
      eagain++;
      drain(sv[1], &have);
      continue;
    }
    CHECK(n > 0);
    sent += n;
  }
  CHECK(eagain > 0); /* 3 MiB is more than a socket pair holds */
  CHECK_EQ(ps_stream_try_sendfile(s, file, FILE_SIZE, 100), 0); /* EOF */
  CHECK_EQ(ps_stream_try_sendfile(s, file, 0, 0), 0);
  while (have < FILE_SIZE) drain(sv[1], &have);
  CHECK_EQ(have, FILE_SIZE);
  CHECK(memcmp(got, content, FILE_SIZE) == 0);
  CHECK_EQ(lseek(file, 0, SEEK_CUR), 17); /* the position is untouched */

  CHECK_EQ(ps_stream_close(s), 0);
  CHECK_EQ(ps_stream_try_sendfile(s, file, 0, 10), UV_EBADF);
  PUMP_UNTIL(loop, t.count[PS_EV_CLOSE] == 1);
  CHECK_EQ(close(sv[1]), 0);
}

static void test_queued_writes_go_first(ps_loop_t* loop, int file) {
  static char fill[65536];
  tally_t t = {{0}, {0}};
  ps_stream_t* s;
  int sv[2];
  size_t have = 0, queued_at;
  ssize_t n;

  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  CHECK_EQ(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
  CHECK_EQ(ps_stream_open(loop, sv[0], PS_KIND_PIPE, &t, &s), 0);
  memset(fill, 'f', sizeof(fill));
  while (ps_stream_try_write(s, fill, sizeof(fill)) > 0) {
  }
  CHECK_EQ(ps_stream_write(s, "queued", 6), 0);
  CHECK_EQ(ps_stream_try_sendfile(s, file, 0, 10), UV_EBUSY);
  /* The peer reads; the queued write completes; then the file may go. */
  while (t.count[PS_EV_WRITE] == 0) {
    drain(sv[1], &have);
    pump(loop, 10);
  }
  CHECK_EQ(t.status[PS_EV_WRITE], 0);
  drain(sv[1], &have);
  queued_at = have - 6;
  CHECK(memcmp(got + queued_at, "queued", 6) == 0);
  n = ps_stream_try_sendfile(s, file, 5, 10);
  CHECK_EQ(n, 10);
  while (have < queued_at + 16) drain(sv[1], &have);
  CHECK(memcmp(got + queued_at + 6, content + 5, 10) == 0);

  CHECK_EQ(ps_stream_close(s), 0);
  PUMP_UNTIL(loop, t.count[PS_EV_CLOSE] == 1);
  CHECK_EQ(close(sv[1]), 0);
}

static void test_bad_arguments(ps_loop_t* loop, int file) {
  tally_t t = {{0}, {0}};
  ps_stream_t* s;
  int sv[2], p[2];
  ssize_t n;

  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  CHECK_EQ(ps_stream_open(loop, sv[0], PS_KIND_PIPE, &t, &s), 0);
  CHECK_EQ(ps_stream_try_sendfile(s, -1, 0, 10), UV_EINVAL);
  CHECK_EQ(ps_stream_try_sendfile(s, file, -1, 10), UV_EINVAL);
  CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
  CHECK_EQ(write(p[1], "x", 1), 1);
  /* A pipe is not a file sendfile can read from at an offset. */
  n = ps_stream_try_sendfile(s, p[0], 0, 1);
  CHECK(n == UV_ESPIPE || n == UV_EINVAL);
  CHECK_EQ(close(p[0]), 0);
  CHECK_EQ(close(p[1]), 0);
  CHECK_EQ(ps_stream_close(s), 0);
  PUMP_UNTIL(loop, t.count[PS_EV_CLOSE] == 1);
  CHECK_EQ(t.count[PS_EV_READ], 0);
  CHECK_EQ(close(sv[1]), 0);
}

int main(void) {
  ps_loop_t* loop;
  int file = make_file();

  CHECK_EQ(ps_loop_new(&loop), 0);
  test_whole_file(loop, file);
  test_queued_writes_go_first(loop, file);
  test_bad_arguments(loop, file);
  close_loop_and_check(loop);
  CHECK_EQ(close(file), 0);
  printf("test_sendfile: ok\n");
  return 0;
}
