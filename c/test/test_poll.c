/* Poll handles and the blocking iteration: readiness of fds the owner keeps
 * is recorded apart from the events (ps_loop_polls), level-triggered, by
 * ps_loop_run_once, which waits no longer than asked. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "test.h"

/* What one fd's readiness was: count and the last mask; and the events
 * of the event queue recorded for its data slot (streams). */
typedef struct {
  int polls;
  int mask;
  int others;
} seen_t;

static seen_t by_fd[1024];

/* One iteration; tallies readiness by fd, events into the seen_t their
 * data points at.  Returns how many records of both kinds it made. */
static int run_once(ps_loop_t* loop, int timeout_ms) {
  ps_event_t* events;
  ps_poll_ready_t* ready;
  int n = ps_loop_run_once(loop, timeout_ms, &events);
  int m, i;
  CHECK(n >= 0);
  for (i = 0; i < n; i++) ((seen_t*)events[i].data)->others++;
  m = ps_loop_polls(loop, &ready);
  for (i = 0; i < m; i++) {
    CHECK(ready[i].fd >= 0 && ready[i].fd < 1024);
    by_fd[ready[i].fd].polls++;
    by_fd[ready[i].fd].mask = ready[i].events;
  }
  return n + m;
}

static long polls_alive(void) {
  ps_counters_t c;
  ps_counters(NULL, &c);
  return c.polls;
}

static void test_readiness(ps_loop_t* loop) {
  seen_t* seen;
  ps_poll_t* p;
  int sv[2];
  char byte;
  uint64_t start;

  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  seen = &by_fd[sv[0]];
  memset(seen, 0, sizeof(*seen));
  CHECK_EQ(ps_poll_open(loop, sv[0], PS_POLL_READABLE, &p), 0);
  CHECK_EQ(polls_alive(), 1);
  /* The owner's blocking mode is left alone. */
  CHECK_EQ(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);

  /* Nothing ready: no event, and a timeout is waited for, not longer. */
  CHECK_EQ(run_once(loop, 0), 0);
  start = uv_hrtime();
  CHECK_EQ(run_once(loop, 30), 0);
  CHECK(uv_hrtime() - start >= 25 * 1000000ull);
  CHECK(uv_hrtime() - start < 1000 * 1000000ull);

  /* Readable: reported, and again in the next pass while it stays so. */
  CHECK_EQ(write(sv[1], "x", 1), 1);
  CHECK_EQ(run_once(loop, -1), 1);
  CHECK_EQ(seen->polls, 1);
  CHECK_EQ(seen->mask, PS_POLL_READABLE);
  CHECK_EQ(run_once(loop, 0), 1);
  CHECK_EQ(seen->polls, 2);
  CHECK_EQ(read(sv[0], &byte, 1), 1);
  CHECK_EQ(run_once(loop, 0), 0);

  /* Watching writability too: only what is ready is reported. */
  CHECK_EQ(ps_poll_modify(p, PS_POLL_READABLE | PS_POLL_WRITABLE), 0);
  CHECK_EQ(run_once(loop, -1), 1);
  CHECK_EQ(seen->mask, PS_POLL_WRITABLE);
  /* Paused: nothing, even though it is writable. */
  CHECK_EQ(ps_poll_modify(p, 0), 0);
  CHECK_EQ(run_once(loop, 0), 0);
  CHECK_EQ(ps_poll_modify(p, -1), UV_EINVAL);

  /* A closed poll records nothing more and is freed in a later pass;
   * the fd stays open. */
  CHECK_EQ(ps_poll_modify(p, PS_POLL_WRITABLE), 0);
  CHECK_EQ(ps_poll_close(p), 0);
  CHECK_EQ(run_once(loop, 0), 0);
  CHECK_EQ(polls_alive(), 0);
  CHECK(fcntl(sv[0], F_GETFD) != -1);
  CHECK_EQ(seen->polls, 3);
  close(sv[0]);
  close(sv[1]);
}

static void test_refused(ps_loop_t* loop) {
  seen_t* seen;
  seen_t stream_seen = {0, 0, 0};
  ps_poll_t* p;
  ps_stream_t* s;
  int sv[2];
  int fd;
  int devnull;

  /* epoll cannot watch a regular file: refused, as asyncio's selector
   * does; so are a closed fd and a bad mask. */
  devnull = open("/proc/self/stat", O_RDONLY);
  CHECK(devnull >= 0);
  CHECK_EQ(ps_poll_open(loop, devnull, PS_POLL_READABLE, &p), UV_EPERM);
  close(devnull);
  CHECK_EQ(ps_poll_open(loop, devnull, PS_POLL_READABLE, &p), UV_EBADF);
  CHECK_EQ(ps_poll_open(loop, -1, PS_POLL_READABLE, &p), UV_EINVAL);
  CHECK_EQ(ps_poll_open(loop, 0, 0x100, &p), UV_EINVAL);

  /* An fd a stream owns (and libuv watches) is polled through a
   * duplicate: both hear of readiness, and the stream still reads. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  fd = sv[0];
  seen = &by_fd[fd];
  memset(seen, 0, sizeof(*seen));
  CHECK_EQ(ps_stream_open(loop, fd, PS_KIND_PIPE, &stream_seen, &s), 0);
  CHECK_EQ(ps_stream_want_read(s, 1), 0);
  CHECK_EQ(ps_poll_open(loop, fd, PS_POLL_WRITABLE, &p), 0);
  CHECK_EQ(run_once(loop, 0), 1);
  CHECK_EQ(seen->polls, 1);
  CHECK_EQ(seen->mask, PS_POLL_WRITABLE);
  CHECK_EQ(write(sv[1], "x", 1), 1);
  while (stream_seen.others == 0) run_once(loop, 100);
  CHECK_EQ(ps_stream_buffered(s), 1);
  CHECK_EQ(ps_poll_close(p), 0);
  CHECK_EQ(ps_stream_close(s), 0);
  while (run_once(loop, 0) > 0) {
  }
  close(sv[1]);
  CHECK_EQ(polls_alive(), 0);
  seen->polls = 0;

  /* A modify on an fd closed meanwhile is refused, not left for libuv to
   * abort on. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  seen = &by_fd[sv[0]];
  memset(seen, 0, sizeof(*seen));
  CHECK_EQ(ps_poll_open(loop, sv[0], PS_POLL_READABLE, &p), 0);
  close(sv[0]);
  close(sv[1]);
  CHECK_EQ(ps_poll_modify(p, PS_POLL_WRITABLE), UV_EBADF);
  CHECK_EQ(ps_poll_close(p), 0);
  CHECK_EQ(ps_poll_close(p), UV_EALREADY);
  CHECK_EQ(ps_poll_modify(p, PS_POLL_READABLE), UV_EBADF);
  while (run_once(loop, 0) > 0) {
  }
  CHECK_EQ(seen->polls, 0);
}

/* Returns the fd, left watched, for the caller to close after the loop. */
static int test_connect_error(ps_loop_t* loop) {
  seen_t* seen;
  struct sockaddr_in addr;
  socklen_t len = sizeof(addr);
  ps_poll_t* p;
  int listener, fd, err = 0;
  int spins = 0;

  /* A port nobody listens on: a non-blocking connect fails later, which
   * epoll reports as an error.  The owner hears of it as writability, and
   * keeps hearing while the error stands, as with epoll. */
  listener = socket(AF_INET, SOCK_STREAM, 0);
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(bind(listener, (struct sockaddr*)&addr, sizeof(addr)), 0);
  CHECK_EQ(getsockname(listener, (struct sockaddr*)&addr, &len), 0);
  close(listener);
  fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (connect(fd, (struct sockaddr*)&addr, sizeof(addr)) == 0 ||
      errno != EINPROGRESS) {
    /* Refused at once (some kernels): nothing to poll for. */
    close(fd);
    return -1;
  }
  seen = &by_fd[fd];
  memset(seen, 0, sizeof(*seen));
  CHECK_EQ(ps_poll_open(loop, fd, PS_POLL_WRITABLE, &p), 0);
  while (seen->polls == 0) {
    CHECK(++spins < 100);
    run_once(loop, 100);
  }
  CHECK_EQ(seen->mask, PS_POLL_WRITABLE);
  CHECK_EQ(run_once(loop, 0), 1);
  CHECK_EQ(seen->polls, 2);
  len = sizeof(err);
  CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
  CHECK_EQ(err, ECONNREFUSED);
  CHECK_EQ(polls_alive(), 1);
  return fd;
}

/* More fds ready than libuv's epoll_wait takes at once (1024): libuv waits
 * again in the same pass and calls each poll back again, yet each fd is
 * reported once per pass, with its events joined, as a selector does. */
static void test_many_ready(ps_loop_t* loop) {
  enum { N = 1100 };
  static int fds[N];
  static ps_poll_t* polls[N];
  static int seen[4 * N]; /* by fd */
  struct rlimit limit;
  ps_event_t* events;
  ps_poll_ready_t* ready;
  int i, m;

  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < 2 * N) {
    puts("test_poll: too few fds allowed for test_many_ready, skipped");
    return;
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < 2 * N) {
    limit.rlim_cur = 2 * N;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
  for (i = 0; i < N; i++) {
    fds[i] = eventfd(0, EFD_CLOEXEC); /* always writable */
    CHECK(fds[i] >= 0 && fds[i] < 4 * N);
    CHECK_EQ(ps_poll_open(loop, fds[i], PS_POLL_WRITABLE, &polls[i]), 0);
  }
  CHECK_EQ(ps_loop_run_once(loop, -1, &events), 0);
  m = ps_loop_polls(loop, &ready);
  CHECK_EQ(m, N);
  memset(seen, 0, sizeof(seen));
  for (i = 0; i < m; i++) {
    CHECK_EQ(ready[i].events, PS_POLL_WRITABLE);
    CHECK(ready[i].fd >= 0 && ready[i].fd < 4 * N);
    seen[ready[i].fd]++;
  }
  for (i = 0; i < N; i++) CHECK_EQ(seen[fds[i]], 1);
  for (i = 0; i < N; i++) CHECK_EQ(ps_poll_close(polls[i]), 0);
  CHECK_EQ(ps_loop_run_once(loop, 0, &events), 0);
  CHECK_EQ(ps_loop_polls(loop, &ready), 0);
  CHECK_EQ(polls_alive(), 0);
  for (i = 0; i < N; i++) CHECK_EQ(close(fds[i]), 0);
}

int main(void) {
  ps_loop_t* loop;
  int fd;

  CHECK_EQ(ps_loop_new(&loop), 0);
  test_readiness(loop);
  test_refused(loop);
  test_many_ready(loop);
  fd = test_connect_error(loop);
  /* A poll left open is closed and freed by the loop's close; its fd is
   * still the owner's. */
  close_loop_and_check(loop);
  CHECK_EQ(polls_alive(), 0);
  if (fd >= 0)
    CHECK_EQ(close(fd), 0);
  puts("test_poll: ok");
  return 0;
}
