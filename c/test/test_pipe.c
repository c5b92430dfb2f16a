/* One-way pipes (pipe2(2), not sockets) through the stream API: a write end
 * opens without reading, a read end reads up to end of file, and a
 * shutdown of a write end closes it once its queued writes are done, so
 * that the reader gets everything and then end of file. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include "test.h"

static char big[4 * 1024 * 1024];

/* The types of the events recorded for one handle, in order. */
typedef struct {
  int types[16];
  int n;
} log_t;

/* pump(), also logging the order of watched's events. */
static void pump_log(ps_loop_t* loop, const tally_t* watched, log_t* log) {
  ps_event_t* events;
  int n, i;
  if (ps_loop_timeout(loop) != 0) {
    struct pollfd p;
    p.fd = ps_loop_backend_fd(loop);
    p.events = POLLIN;
    p.revents = 0;
    (void)poll(&p, 1, 10);
  }
  n = ps_loop_run(loop, &events);
  CHECK(n >= 0);
  for (i = 0; i < n; i++) {
    tally_t* t = events[i].data;
    CHECK(events[i].type > 0 && events[i].type < 8);
    t->count[events[i].type]++;
    t->status[events[i].type] = events[i].status;
    if (t == watched) {
      CHECK(log->n < 16);
      log->types[log->n++] = events[i].type;
    }
  }
}

static void make_pipe(int fds[2]) {
  CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
}

static void test_write_end_opens_without_reading(ps_loop_t* loop) {
  tally_t tw = {{0}, {0}};
  ps_stream_t* w;
  const char* p;
  char out[8];
  ps_counters_t c;
  int fds[2], i;

  make_pipe(fds);
  CHECK_EQ(ps_stream_open(loop, fds[1], PS_KIND_PIPE, &tw, &w), 0);
  CHECK_EQ(ps_stream_kind(w), PS_KIND_PIPE);
  CHECK_EQ(ps_stream_fileno(w), fds[1]);
  /* Nothing can ever arrive: reading has ended, as at end of file. */
  CHECK_EQ(ps_stream_read_status(w), UV_EOF);
  CHECK_EQ(ps_stream_want_read(w, 1), 1);
  CHECK_EQ(ps_stream_take_ptr(w, 10, &p), UV_EOF);
  CHECK_EQ(ps_stream_take_into(w, out, sizeof(out)), UV_EOF);
  CHECK_EQ(ps_stream_buffered(w), 0);
  /* Writing works. */
  CHECK_EQ(ps_stream_writable(w), 1);
  CHECK_EQ(ps_stream_try_write(w, "abc", 3), 3);
  CHECK_EQ(ps_stream_write(w, "def", 3), 0);
  for (i = 0; i < 5; i++) pump(loop, 0);
  CHECK_EQ(tw.count[PS_EV_WRITE], 1);
  CHECK_EQ(tw.status[PS_EV_WRITE], 0);
  CHECK_EQ(read(fds[0], out, sizeof(out)), 6);
  CHECK(memcmp(out, "abcdef", 6) == 0);
  ps_counters(loop, &c);
  CHECK_EQ(c.bytes_buffered, 0);
  /* No read event, ever; the close is the stream's last event. */
  CHECK_EQ(ps_stream_close(w), 0);
  PUMP_UNTIL(loop, tw.count[PS_EV_CLOSE] == 1);
  CHECK_EQ(tw.count[PS_EV_READ], 0);
  CHECK_EQ(tw.count[PS_EV_WRITE], 1);
  CHECK_EQ(read(fds[0], out, sizeof(out)), 0); /* the fd was closed */
  CHECK_EQ(close(fds[0]), 0);
}

static void test_read_end(ps_loop_t* loop) {
  tally_t tr = {{0}, {0}};
  ps_stream_t* r;
  const char* p;
  int fds[2];

  make_pipe(fds);
  CHECK_EQ(ps_stream_open(loop, fds[0], PS_KIND_PIPE, &tr, &r), 0);
  CHECK_EQ(ps_stream_read_status(r), 0);
  CHECK_EQ(ps_stream_want_read(r, 5), 0);
  CHECK_EQ(write(fds[1], "hello", 5), 5);
  PUMP_UNTIL(loop, tr.count[PS_EV_READ] == 1);
  CHECK_EQ(ps_stream_take_ptr(r, 100, &p), 5);
  CHECK(memcmp(p, "hello", 5) == 0);
  CHECK_EQ(ps_stream_take_ptr(r, 100, &p), 0); /* empty, still reading */
  /* A read end cannot be written or shut down (libuv's codes). */
  CHECK_EQ(ps_stream_try_write(r, "x", 1), UV_EPIPE);
  CHECK_EQ(ps_stream_write(r, "x", 1), UV_EPIPE);
  CHECK_EQ(ps_stream_shutdown(r), UV_ENOTCONN);
  /* The last writer closes: data first, then end of file. */
  CHECK_EQ(write(fds[1], "bye", 3), 3);
  CHECK_EQ(close(fds[1]), 0);
  CHECK_EQ(ps_stream_want_read(r, 100), 0);
  PUMP_UNTIL(loop, tr.count[PS_EV_READ] == 2);
  CHECK_EQ(ps_stream_read_status(r), UV_EOF);
  CHECK_EQ(ps_stream_take_ptr(r, 100, &p), 3);
  CHECK(memcmp(p, "bye", 3) == 0);
  CHECK_EQ(ps_stream_take_ptr(r, 100, &p), UV_EOF);
  CHECK_EQ(ps_stream_want_read(r, 1), 1);
  CHECK_EQ(ps_stream_close(r), 0);
  PUMP_UNTIL(loop, tr.count[PS_EV_CLOSE] == 1);
  CHECK_EQ(tr.count[PS_EV_READ], 2);
  CHECK_EQ(tr.count[PS_EV_WRITE] + tr.count[PS_EV_SHUTDOWN], 0);
}

static void test_shutdown_after_queued_writes(ps_loop_t* loop) {
  tally_t tw = {{0}, {0}}, tr = {{0}, {0}};
  log_t log = {{0}, 0};
  ps_stream_t *w, *r;
  ssize_t sent;
  size_t got = 0, total;
  int fds[2], i;

  for (i = 0; i < (int)sizeof(big); i++) big[i] = (char)(i * 13 + i / 4096);
  make_pipe(fds);
  CHECK_EQ(ps_stream_open(loop, fds[1], PS_KIND_PIPE, &tw, &w), 0);
  CHECK_EQ(ps_stream_open(loop, fds[0], PS_KIND_PIPE, &tr, &r), 0);
  sent = ps_stream_try_write(w, big, sizeof(big));
  CHECK(sent > 0 && sent < (ssize_t)sizeof(big)); /* the pipe is full */
  CHECK_EQ(ps_stream_write(w, big + sent, sizeof(big) - (size_t)sent), 0);
  CHECK_EQ(ps_stream_write(w, "tail", 4), 0);
  CHECK_EQ(ps_stream_shutdown(w), 0);
  CHECK_EQ(ps_stream_shutdown(w), UV_ENOTCONN); /* one is under way */
  total = sizeof(big) + 4;
  /* The reader gets every byte, then end of file. */
  for (;;) {
    int ready = ps_stream_want_read(r, 1);
    CHECK(ready >= 0);
    if (ready) {
      const char* p;
      ssize_t n = ps_stream_take_ptr(r, sizeof(big), &p);
      if (n == UV_EOF)
        break;
      CHECK(n > 0);
      CHECK(got + (size_t)n <= total);
      for (i = 0; i < n; i++) {
        size_t at = got + (size_t)i;
        char want = at < sizeof(big) ? big[at] : "tail"[at - sizeof(big)];
        CHECK(p[i] == want);
      }
      got += (size_t)n;
    } else {
      int seen = tr.count[PS_EV_READ];
      int spins = 0;
      while (tr.count[PS_EV_READ] == seen) {
        CHECK(++spins < 1000);
        pump_log(loop, &tw, &log);
      }
    }
  }
  CHECK_EQ(got, total);
  while (tw.count[PS_EV_CLOSE] == 0) pump_log(loop, &tw, &log);
  /* Both writes, then the shutdown (status 0), then the close. */
  CHECK_EQ(log.n, 4);
  CHECK_EQ(log.types[0], PS_EV_WRITE);
  CHECK_EQ(log.types[1], PS_EV_WRITE);
  CHECK_EQ(log.types[2], PS_EV_SHUTDOWN);
  CHECK_EQ(log.types[3], PS_EV_CLOSE);
  CHECK_EQ(tw.status[PS_EV_WRITE], 0);
  CHECK_EQ(tw.status[PS_EV_SHUTDOWN], 0);
  CHECK_EQ(ps_stream_close(r), 0);
  PUMP_UNTIL(loop, tr.count[PS_EV_CLOSE] == 1);
}

static void test_shutdown_with_nothing_queued(ps_loop_t* loop) {
  tally_t tw = {{0}, {0}}, tr = {{0}, {0}};
  log_t log = {{0}, 0};
  ps_stream_t *w, *r;
  const char* p;
  int fds[2];

  make_pipe(fds);
  CHECK_EQ(ps_stream_open(loop, fds[1], PS_KIND_PIPE, &tw, &w), 0);
  CHECK_EQ(ps_stream_open(loop, fds[0], PS_KIND_PIPE, &tr, &r), 0);
  CHECK_EQ(ps_stream_try_write(w, "all", 3), 3);
  CHECK_EQ(ps_stream_shutdown(w), 0);
  /* Until the pass that runs it, the stream is open as before. */
  CHECK_EQ(ps_stream_fileno(w), fds[1]);
  CHECK_EQ(ps_stream_want_read(r, 4), 0);
  while (tw.count[PS_EV_SHUTDOWN] == 0) pump_log(loop, &tw, &log);
  CHECK_EQ(log.n, 1);
  CHECK_EQ(tw.status[PS_EV_SHUTDOWN], 0);
  /* Closed: the fd is gone (the reader has its end of file), and calls on
   * the stream, still there while this pass's events are read, get what
   * a closing stream gives.  It is freed in the next pass. */
  CHECK_EQ(ps_stream_fileno(w), UV_EBADF);
  CHECK_EQ(ps_stream_write(w, "x", 1), UV_EBADF);
  CHECK_EQ(ps_stream_try_write(w, "x", 1), UV_EBADF);
  CHECK_EQ(ps_stream_want_read(w, 1), UV_EBADF);
  CHECK_EQ(ps_stream_shutdown(w), UV_EBADF);
  CHECK_EQ(ps_stream_close(w), UV_EALREADY);
  CHECK_EQ(ps_loop_dirty(loop), 1);
  CHECK_EQ(ps_loop_timeout(loop), 0);
  CHECK_EQ(tw.count[PS_EV_CLOSE], 0);
  pump_log(loop, &tw, &log);
  CHECK_EQ(log.n, 2);
  CHECK_EQ(log.types[1], PS_EV_CLOSE);
  PUMP_UNTIL(loop, tr.count[PS_EV_READ] == 1);
  CHECK_EQ(ps_stream_take_ptr(r, 100, &p), 3);
  CHECK(memcmp(p, "all", 3) == 0);
  CHECK_EQ(ps_stream_take_ptr(r, 100, &p), UV_EOF);
  CHECK_EQ(ps_stream_close(r), 0);
  PUMP_UNTIL(loop, tr.count[PS_EV_CLOSE] == 1);
}

static void test_close_cancels_a_pending_shutdown(ps_loop_t* loop) {
  tally_t tw = {{0}, {0}};
  ps_stream_t* w;
  ssize_t sent;
  char out[64];
  int fds[2];

  make_pipe(fds);
  CHECK_EQ(ps_stream_open(loop, fds[1], PS_KIND_PIPE, &tw, &w), 0);
  sent = ps_stream_try_write(w, big, sizeof(big));
  CHECK(sent > 0 && sent < (ssize_t)sizeof(big));
  CHECK_EQ(ps_stream_write(w, big + sent, sizeof(big) - (size_t)sent), 0);
  CHECK_EQ(ps_stream_shutdown(w), 0);
  pump(loop, 0);
  CHECK_EQ(ps_stream_close(w), 0);
  PUMP_UNTIL(loop, tw.count[PS_EV_CLOSE] == 1);
  /* Nobody read: the write and the shutdown never finished. */
  CHECK_EQ(tw.count[PS_EV_WRITE], 1);
  CHECK_EQ(tw.status[PS_EV_WRITE], UV_ECANCELED);
  CHECK_EQ(tw.count[PS_EV_SHUTDOWN], 1);
  CHECK_EQ(tw.status[PS_EV_SHUTDOWN], UV_ECANCELED);
  CHECK_EQ(read(fds[0], out, sizeof(out)), (ssize_t)sizeof(out));
  CHECK_EQ(close(fds[0]), 0);
}

static void test_loop_close_with_pipes(void) {
  tally_t tw = {{0}, {0}}, tr = {{0}, {0}}, tw2 = {{0}, {0}};
  ps_stream_t *w, *r, *w2;
  ps_loop_t* loop;
  ssize_t sent;
  char out[8];
  int fds[2], fds2[2];

  CHECK_EQ(ps_loop_new(&loop), 0);
  make_pipe(fds);
  make_pipe(fds2);
  CHECK_EQ(ps_stream_open(loop, fds[1], PS_KIND_PIPE, &tw, &w), 0);
  CHECK_EQ(ps_stream_open(loop, fds[0], PS_KIND_PIPE, &tr, &r), 0);
  CHECK_EQ(ps_stream_open(loop, fds2[1], PS_KIND_PIPE, &tw2, &w2), 0);
  sent = ps_stream_try_write(w, big, sizeof(big));
  CHECK(sent > 0);
  CHECK_EQ(ps_stream_write(w, big + sent, sizeof(big) - (size_t)sent), 0);
  CHECK_EQ(ps_stream_shutdown(w), 0);
  CHECK_EQ(ps_stream_shutdown(w2), 0);
  PUMP_UNTIL(loop, tw2.count[PS_EV_SHUTDOWN] == 1);
  CHECK_EQ(tw2.count[PS_EV_CLOSE], 0);
  CHECK_EQ(ps_loop_alive(loop), 1);
  /* Data buffered in r, a write and a shutdown pending in w, w2 closed by
   * its shutdown but not freed yet: the loop's close frees them all. */
  close_loop_and_check(loop);
  CHECK_EQ(tw2.count[PS_EV_CLOSE], 0); /* a closing loop records nothing */
  CHECK_EQ(read(fds2[0], out, sizeof(out)), 0);
  CHECK_EQ(close(fds2[0]), 0);
}

int main(void) {
  ps_loop_t* loop;
  /* As in Python, a write to a pipe nobody reads fails instead of
   * killing the test. */
  signal(SIGPIPE, SIG_IGN);
  CHECK_EQ(ps_loop_new(&loop), 0);
  test_write_end_opens_without_reading(loop);
  test_read_end(loop);
  test_shutdown_after_queued_writes(loop);
  test_shutdown_with_nothing_queued(loop);
  test_close_cancels_a_pending_shutdown(loop);
  close_loop_and_check(loop);
  test_loop_close_with_pipes();
  puts("test_pipe: ok");
  return 0;
}
