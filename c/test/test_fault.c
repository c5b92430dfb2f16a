/* The fault build (make fault): sites count their uses, fail on the use
 * asked for and only then, and each failure leaves the loop serving and
 * closing cleanly. */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fault.h"
#include "test.h"

static int site(const char* name) {
  int i;
  for (i = 0; i < ps_fault_sites(); i++) {
    if (strcmp(ps_fault_site_name(i), name) == 0)
      return i;
  }
  fprintf(stderr, "no site %s\n", name);
  exit(1);
}

/* Two connected streams over a socketpair. */
static void pair(ps_loop_t* loop, tally_t* ta, tally_t* tb, ps_stream_t** a,
                 ps_stream_t** b) {
  int fds[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  CHECK_EQ(ps_stream_open(loop, fds[0], PS_KIND_PIPE, ta, a), 0);
  CHECK_EQ(ps_stream_open(loop, fds[1], PS_KIND_PIPE, tb, b), 0);
}

/* The stream still carries bytes both ways. */
static void echo(ps_loop_t* loop, ps_stream_t* a, tally_t* tb, ps_stream_t* b) {
  char buf[4];
  int reads = tb->count[PS_EV_READ];
  CHECK_EQ(ps_stream_try_write(a, "ping", 4), 4);
  if (ps_stream_want_read(b, 4) == 0)
    PUMP_UNTIL(loop, tb->count[PS_EV_READ] == reads + 1);
  CHECK_EQ(ps_stream_take_into(b, buf, 4), 4);
  CHECK(memcmp(buf, "ping", 4) == 0);
}

static void test_api(void) {
  int s = site("STREAM_WRITE_MALLOC");
  CHECK(ps_fault_sites() > 30);
  CHECK(ps_fault_site_name(ps_fault_sites()) == NULL);
  CHECK_EQ(ps_fault_site_error(s), UV_ENOMEM);
  CHECK_EQ(ps_fault_set(-1, 1, UV_ENOMEM), UV_EINVAL);
  CHECK_EQ(ps_fault_set(s, -1, UV_ENOMEM), UV_EINVAL);
  CHECK_EQ(ps_fault_set(s, 1, 0), UV_EINVAL);
  CHECK_EQ(ps_fault_hits(ps_fault_sites()), UV_EINVAL);
  CHECK_EQ(ps_fault_fired(-1), UV_EINVAL);
}

/* The second queued write fails to allocate: that call reports UV_ENOMEM,
 * the first and third go through, in order. */
static void test_write_malloc(void) {
  ps_loop_t* loop;
  ps_stream_t *a, *b;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}};
  char buf[6];
  int s = site("STREAM_WRITE_MALLOC");

  ps_fault_reset();
  CHECK_EQ(ps_loop_new(&loop), 0);
  pair(loop, &ta, &tb, &a, &b);
  CHECK_EQ(ps_fault_set(s, 2, UV_ENOMEM), 0);
  CHECK_EQ(ps_stream_write(a, "ab", 2), 0);
  CHECK_EQ(ps_stream_write(a, "XX", 2), UV_ENOMEM);
  CHECK_EQ(ps_stream_write(a, "cd", 2), 0);
  CHECK_EQ(ps_fault_hits(s), 3);
  CHECK_EQ(ps_fault_fired(s), 1);
  PUMP_UNTIL(loop, ta.count[PS_EV_WRITE] == 2);
  CHECK_EQ(ta.status[PS_EV_WRITE], 0);
  if (ps_stream_want_read(b, 4) == 0)
    PUMP_UNTIL(loop, tb.count[PS_EV_READ] == 1);
  CHECK_EQ(ps_stream_take_into(b, buf, sizeof(buf)), 4);
  CHECK(memcmp(buf, "abcd", 4) == 0);
  close_loop_and_check(loop);
}

/* A read whose buffer cannot grow ends reading with UV_ENOMEM, reported to
 * the waiter; the other direction keeps working. */
static void test_read_realloc(void) {
  ps_loop_t* loop;
  ps_stream_t *a, *b;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}};
  static char big[200 * 1024];
  const char* p;
  ssize_t n;

  ps_fault_reset();
  CHECK_EQ(ps_loop_new(&loop), 0);
  pair(loop, &ta, &tb, &a, &b);
  memset(big, 'x', sizeof(big));
  /* A big read takes the spare over; the next one grows the buffer. */
  CHECK_EQ(ps_fault_set(site("STREAM_READ_REALLOC"), 1, UV_ENOMEM), 0);
  CHECK_EQ(ps_stream_write(a, big, sizeof(big)), 0);
  CHECK_EQ(ps_stream_want_read(b, sizeof(big)), 0);
  PUMP_UNTIL(loop, tb.count[PS_EV_READ] == 1);
  CHECK_EQ(ps_fault_fired(site("STREAM_READ_REALLOC")), 1);
  CHECK_EQ(ps_stream_read_status(b), UV_ENOMEM);
  /* What arrived before the failure is still there to take. */
  n = ps_stream_take_ptr(b, sizeof(big), &p);
  CHECK(n > 0 && n < (ssize_t)sizeof(big) && p[0] == 'x');
  CHECK_EQ(ps_stream_take_ptr(b, sizeof(big), &p), UV_ENOMEM);
  echo(loop, b, &ta, a);
  close_loop_and_check(loop);
}

/* A pass whose event queue cannot grow fails before it runs (UV_ENOMEM),
 * so no completion is lost: the next pass records it. */
static void test_events_realloc(void) {
  ps_loop_t* loop;
  ps_stream_t *a, *b;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}};
  ps_event_t* events;
  char buf[8];

  ps_fault_reset();
  CHECK_EQ(ps_loop_new(&loop), 0);
  pair(loop, &ta, &tb, &a, &b);
  CHECK_EQ(ps_stream_write(a, "ab", 2), 0);
  CHECK_EQ(ps_fault_set(site("LOOP_EVENTS_REALLOC"), 1, UV_ENOMEM), 0);
  CHECK_EQ(ps_loop_run(loop, &events), UV_ENOMEM);
  CHECK_EQ(ps_fault_fired(site("LOOP_EVENTS_REALLOC")), 1);
  CHECK_EQ(ta.count[PS_EV_WRITE], 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_WRITE] == 1);
  CHECK_EQ(ta.status[PS_EV_WRITE], 0);
  if (ps_stream_want_read(b, 2) == 0)
    PUMP_UNTIL(loop, tb.count[PS_EV_READ] == 1);
  CHECK_EQ(ps_stream_take_into(b, buf, sizeof(buf)), 2);
  CHECK(memcmp(buf, "ab", 2) == 0);
  echo(loop, a, &tb, b);
  close_loop_and_check(loop);
}

/* A failed spawn returns the chosen error, counts nothing, and the loop
 * frees libuv's record of it. */
static void test_spawn(void) {
  ps_loop_t* loop;
  ps_process_t* p = NULL;
  tally_t tp = {{0}, {0}};
  char* argv[] = {"true", NULL};
  int fds[3] = {-1, -1, -1};
  ps_counters_t c;

  ps_fault_reset();
  CHECK_EQ(ps_loop_new(&loop), 0);
  CHECK_EQ(ps_fault_set(site("PROCESS_UV_SPAWN"), 1, UV_EAGAIN), 0);
  CHECK_EQ(ps_process_spawn(loop, "true", argv, NULL, NULL, fds, &tp, &p),
           UV_EAGAIN);
  CHECK(p == NULL);
  ps_counters(loop, &c);
  CHECK_EQ(c.processes, 0);
  CHECK_EQ(ps_process_spawn(loop, "true", argv, NULL, NULL, fds, &tp, &p), 0);
  PUMP_UNTIL(loop, tp.count[PS_EV_EXIT] == 1);
  CHECK_EQ(ps_process_close(p), 0);
  PUMP_UNTIL(loop, tp.count[PS_EV_CLOSE] == 1);
  close_loop_and_check(loop);
}

/* Sites that fail before anything is made leave nothing behind. */
static void test_constructors(void) {
  ps_loop_t *loop, *none;
  ps_stream_t* s;
  tally_t t = {{0}, {0}};
  int fds[2];

  ps_fault_reset();
  CHECK_EQ(ps_fault_set(site("LOOP_CALLOC"), 1, UV_ENOMEM), 0);
  CHECK_EQ(ps_loop_new(&none), UV_ENOMEM);
  CHECK_EQ(ps_fault_set(site("LOOP_UV_LOOP_INIT"), 1, UV_EMFILE), 0);
  CHECK_EQ(ps_loop_new(&none), UV_EMFILE);
  CHECK_EQ(ps_loop_new(&loop), 0);
  CHECK_EQ(ps_fault_set(site("STREAM_UV_TCP_INIT"), 1, UV_EMFILE), 0);
  CHECK_EQ(ps_tcp_connect(loop, -1, "127.0.0.1", 9, 0, &t, &s), UV_EMFILE);
  CHECK_EQ(ps_fault_set(site("STREAM_UV_TCP_CONNECT"), 1, UV_EADDRNOTAVAIL), 0);
  CHECK_EQ(ps_tcp_connect(loop, -1, "127.0.0.1", 9, 0, &t, &s),
           UV_EADDRNOTAVAIL);
  /* ps_stream_open owns the fd even when it fails. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  CHECK_EQ(ps_fault_set(site("STREAM_UV_READ_START"), 1, UV_EINVAL), 0);
  CHECK_EQ(ps_stream_open(loop, fds[0], PS_KIND_PIPE, &t, &s), UV_EINVAL);
  CHECK_EQ(ps_fault_set(site("STREAM_CALLOC"), 1, UV_ENOMEM), 0);
  CHECK_EQ(ps_stream_open(loop, fds[1], PS_KIND_PIPE, &t, &s), UV_ENOMEM);
  CHECK_EQ(close(fds[0]), -1);
  CHECK_EQ(close(fds[1]), -1);
  PUMP_UNTIL(loop, !ps_loop_alive(loop));
  CHECK_EQ(t.count[PS_EV_CLOSE], 0);
  close_loop_and_check(loop);
}

/* The number the next new fd gets: an fd leaked meanwhile changes it. */
static int next_fd(void) {
  int fd = dup(0);
  CHECK(fd >= 0);
  close(fd);
  return fd;
}

static long polls_alive(void) {
  ps_counters_t c;
  ps_counters(NULL, &c);
  return c.polls;
}

/* One pass; returns the mask recorded for fd (0: none). */
static int poll_pass(ps_loop_t* loop, int timeout_ms, int fd) {
  ps_event_t* events;
  ps_poll_ready_t* ready;
  int i, m, mask = 0;
  CHECK_EQ(ps_loop_run_once(loop, timeout_ms, &events), 0);
  m = ps_loop_polls(loop, &ready);
  for (i = 0; i < m; i++) {
    if (ready[i].fd == fd)
      mask |= ready[i].events;
  }
  return mask;
}

/* Each failure of a poll: ps_poll_open reports it and leaves nothing
 * behind (no poll once a pass freed it, no duplicate fd, the owner's
 * blocking mode kept); a failed modify keeps the watch it had; a pass that
 * cannot make room for readiness reports UV_ENOMEM before anything ran, and
 * the next one records it; an error on the fd is readiness for everything
 * watched, and the poll goes on watching. */
static void test_poll(void) {
  ps_loop_t* loop;
  ps_poll_t* p;
  ps_stream_t* s;
  ps_event_t* events;
  tally_t ts = {{0}, {0}};
  int sv[2], owned[2];
  int fd;

  ps_fault_reset();
  CHECK_EQ(ps_loop_new(&loop), 0);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);

  /* The first pass with a poll makes room for its readiness. */
  CHECK_EQ(ps_poll_open(loop, sv[0], PS_POLL_READABLE, &p), 0);
  CHECK_EQ(write(sv[1], "x", 1), 1);
  CHECK_EQ(ps_fault_set(site("LOOP_POLLS_REALLOC"), 1, UV_ENOMEM), 0);
  CHECK_EQ(ps_loop_run_once(loop, 0, &events), UV_ENOMEM);
  CHECK_EQ(ps_fault_fired(site("LOOP_POLLS_REALLOC")), 1);
  CHECK_EQ(poll_pass(loop, -1, sv[0]), PS_POLL_READABLE);

  /* A modify that cannot start the watch keeps the old one. */
  CHECK_EQ(ps_fault_set(site("POLL_UV_POLL_START"), 1, UV_EEXIST), 0);
  CHECK_EQ(ps_poll_modify(p, PS_POLL_WRITABLE), UV_EEXIST);
  CHECK_EQ(poll_pass(loop, 0, sv[0]), PS_POLL_READABLE);

  /* An error on the fd: everything watched, then the real readiness. */
  CHECK_EQ(ps_poll_modify(p, PS_POLL_READABLE | PS_POLL_WRITABLE), 0);
  CHECK_EQ(ps_fault_set(site("POLL_CB"), 1, UV_EBADF), 0);
  CHECK_EQ(poll_pass(loop, 0, sv[0]), PS_POLL_READABLE | PS_POLL_WRITABLE);
  CHECK_EQ(ps_fault_fired(site("POLL_CB")), 1);
  CHECK_EQ(ps_poll_modify(p, PS_POLL_WRITABLE), 0);
  CHECK_EQ(poll_pass(loop, 0, sv[0]), PS_POLL_WRITABLE);
  CHECK_EQ(ps_poll_close(p), 0);
  CHECK_EQ(poll_pass(loop, 0, sv[0]), 0);
  CHECK_EQ(polls_alive(), 0);

  /* ps_poll_open's failures on an fd of the caller's. */
  fd = next_fd();
  CHECK_EQ(ps_fault_set(site("POLL_CALLOC"), 1, UV_ENOMEM), 0);
  CHECK_EQ(ps_poll_open(loop, sv[0], PS_POLL_READABLE, &p), UV_ENOMEM);
  CHECK_EQ(ps_fault_set(site("POLL_UV_POLL_INIT"), 1, UV_ENOSPC), 0);
  CHECK_EQ(ps_poll_open(loop, sv[1], PS_POLL_READABLE, &p), UV_ENOSPC);
  CHECK_EQ(ps_fault_set(site("POLL_UV_POLL_START"), 1, UV_EEXIST), 0);
  CHECK_EQ(ps_poll_open(loop, sv[1], PS_POLL_READABLE, &p), UV_EEXIST);
  CHECK_EQ(fcntl(sv[1], F_GETFL) & O_NONBLOCK, 0);
  CHECK_EQ(polls_alive(), 1); /* closing: freed by the next pass */
  CHECK_EQ(poll_pass(loop, 0, sv[1]), 0);
  CHECK_EQ(polls_alive(), 0);
  CHECK_EQ(next_fd(), fd);

  /* And on an fd a stream owns, polled through a duplicate. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, owned), 0);
  CHECK_EQ(ps_stream_open(loop, owned[0], PS_KIND_PIPE, &ts, &s), 0);
  fd = next_fd();
  CHECK_EQ(ps_fault_set(site("POLL_DUP"), 1, UV_EMFILE), 0);
  CHECK_EQ(ps_poll_open(loop, owned[0], PS_POLL_READABLE, &p), UV_EMFILE);
  CHECK_EQ(ps_fault_set(site("POLL_UV_POLL_INIT"), 1, UV_ENOSPC), 0);
  CHECK_EQ(ps_poll_open(loop, owned[0], PS_POLL_READABLE, &p), UV_ENOSPC);
  CHECK_EQ(next_fd(), fd);
  CHECK_EQ(ps_fault_set(site("POLL_UV_POLL_START"), 1, UV_EEXIST), 0);
  CHECK_EQ(ps_poll_open(loop, owned[0], PS_POLL_READABLE, &p), UV_EEXIST);
  CHECK_EQ(poll_pass(loop, 0, owned[0]), 0);
  CHECK_EQ(polls_alive(), 0);
  CHECK_EQ(next_fd(), fd);
  /* The same calls without faults succeed. */
  CHECK_EQ(ps_poll_open(loop, owned[0], PS_POLL_WRITABLE, &p), 0);
  CHECK_EQ(poll_pass(loop, 0, owned[0]), PS_POLL_WRITABLE);
  CHECK_EQ(ps_poll_close(p), 0);
  CHECK_EQ(ps_stream_close(s), 0);
  close(owned[1]);
  close(sv[0]);
  close(sv[1]);
  close_loop_and_check(loop);
}

int main(void) {
  test_api();
  test_write_malloc();
  test_read_realloc();
  test_events_realloc();
  test_spawn();
  test_constructors();
  test_poll();
  puts("test_fault: ok");
  return 0;
}
