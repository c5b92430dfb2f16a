/* Streams over a socket pair: reads into the C buffer, separators, writes,
 * half-close and backpressure. */
#include <sys/socket.h>
#include <uv.h>

#include "test.h"

static char big[4 * 1024 * 1024];

static void open_pair(ps_loop_t* loop, ps_stream_t** a, tally_t* ta,
                      ps_stream_t** b, tally_t* tb) {
  int fds[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  CHECK_EQ(ps_stream_open(loop, fds[0], PS_KIND_PIPE, ta, a), 0);
  CHECK_EQ(ps_stream_open(loop, fds[1], PS_KIND_PIPE, tb, b), 0);
  CHECK_EQ(ps_loop_dirty(loop), 1); /* reading started: a pass is due */
}

static void test_read_write_find(ps_loop_t* loop) {
  ps_stream_t *a, *b;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}};
  const char* p;
  char out[8];

  open_pair(loop, &a, &ta, &b, &tb);
  CHECK_EQ(ps_stream_try_write(a, "hello\nworld", 11), 11);
  CHECK_EQ(ps_stream_want_read(b, 11), 0); /* armed */
  PUMP_UNTIL(loop, tb.count[PS_EV_READ] == 1);
  CHECK_EQ(ps_stream_buffered(b), 11);
  CHECK_EQ(ps_stream_want_read(b, 5), 1); /* ready now, not armed */
  CHECK_EQ(ps_stream_find(b, "\n", 1, 0), 5);
  CHECK_EQ(ps_stream_find(b, "wor", 3, 0), 6);
  CHECK_EQ(ps_stream_find(b, "wor", 3, 7), -1);
  CHECK_EQ(ps_stream_find(b, "x", 1, 0), -1);
  CHECK_EQ(ps_stream_take_ptr(b, 6, &p), 6);
  CHECK(memcmp(p, "hello\n", 6) == 0);
  CHECK_EQ(ps_stream_take_into(b, out, sizeof(out)), 5);
  CHECK(memcmp(out, "world", 5) == 0);
  CHECK_EQ(ps_stream_take_ptr(b, 10, &p), 0); /* empty, still reading */

  /* Half-close: b sees EOF after the data; a can still receive. */
  CHECK_EQ(ps_stream_try_write(a, "bye", 3), 3);
  CHECK_EQ(ps_stream_shutdown(a), 0);
  CHECK_EQ(ps_stream_want_read(b, 100), 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_SHUTDOWN] == 1 && tb.count[PS_EV_READ] == 2);
  CHECK_EQ(ta.status[PS_EV_SHUTDOWN], 0);
  CHECK_EQ(ps_stream_read_status(b), UV_EOF);
  CHECK_EQ(ps_stream_take_ptr(b, 100, &p), 3);
  CHECK_EQ(ps_stream_take_ptr(b, 100, &p), UV_EOF);
  CHECK_EQ(ps_stream_take_ptr(b, 100, &p), UV_EOF); /* and it stays */
  CHECK_EQ(ps_stream_try_write(b, "back", 4), 4);
  CHECK_EQ(ps_stream_want_read(a, 4), 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_READ] == 1);
  CHECK_EQ(ps_stream_take_into(a, out, 4), 4);

  CHECK_EQ(ps_stream_close(a), 0);
  CHECK_EQ(ps_stream_close(a), UV_EALREADY);
  CHECK_EQ(ps_stream_close(b), 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_CLOSE] == 1 && tb.count[PS_EV_CLOSE] == 1);
}

static void test_backpressure(ps_loop_t* loop) {
  ps_stream_t *a, *b;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}};
  ps_counters_t c;
  size_t got = 0;
  ssize_t n;
  const char* p;
  int i;

  open_pair(loop, &a, &ta, &b, &tb);
  for (i = 0; i < (int)sizeof(big); i++) big[i] = (char)(i * 7);
  n = ps_stream_try_write(a, big, sizeof(big));
  CHECK(n > 0 && n < (ssize_t)sizeof(big)); /* the kernel took only some */
  CHECK_EQ(ps_stream_write(a, big + n, sizeof(big) - (size_t)n), 0);
  /* b does not take: its buffer stops at the high-water mark, the rest
   * waits in the kernel and in a's queue. */
  for (i = 0; i < 50; i++) pump(loop, 1);
  CHECK_EQ(ta.count[PS_EV_WRITE], 0);
  CHECK(ps_stream_buffered(b) >= 256 * 1024);
  CHECK(ps_stream_buffered(b) <= 256 * 1024 + 64 * 1024);
  ps_counters(loop, &c);
  CHECK_EQ(c.writes_pending, 1);
  CHECK(ps_stream_write_queue_size(a) > 0);
  CHECK_EQ(ps_stream_writable(a), 0);
  /* Taking resumes reading; everything arrives in order. */
  while (got < sizeof(big)) {
    n = ps_stream_take_ptr(b, sizeof(big), &p);
    CHECK(n >= 0);
    if (n > 0) {
      CHECK(memcmp(p, big + got, (size_t)n) == 0);
      got += (size_t)n;
    } else {
      CHECK_EQ(ps_stream_want_read(b, 1), 0);
      PUMP_UNTIL(loop, tb.count[PS_EV_READ] > 0);
      tb.count[PS_EV_READ] = 0;
    }
  }
  PUMP_UNTIL(loop, ta.count[PS_EV_WRITE] == 1);
  CHECK_EQ(ta.status[PS_EV_WRITE], 0);
  CHECK_EQ(ps_stream_writable(a), 1);

  /* A wait for more than the high-water mark still gets it. */
  n = ps_stream_try_write(a, big, sizeof(big));
  CHECK(n > 0);
  if (n < (ssize_t)sizeof(big))
    CHECK_EQ(ps_stream_write(a, big + n, sizeof(big) - (size_t)n), 0);
  CHECK_EQ(ps_stream_want_read(b, 1024 * 1024), 0);
  PUMP_UNTIL(loop, tb.count[PS_EV_READ] == 1);
  CHECK(ps_stream_buffered(b) >= 1024 * 1024);

  CHECK_EQ(ps_stream_close(a), 0);
  CHECK_EQ(ps_stream_close(b), 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_CLOSE] == 1 && tb.count[PS_EV_CLOSE] == 1);
}

int main(void) {
  ps_loop_t* loop;
  CHECK_EQ(ps_loop_new(&loop), 0);
  test_read_write_find(loop);
  test_backpressure(loop);
  close_loop_and_check(loop);
  puts("test_stream: ok");
  return 0;
}
