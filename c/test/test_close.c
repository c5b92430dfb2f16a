/* Closing: a close delivers what the kernel took, a reset happens only when
 * SO_LINGER asks for it, close cancels queued writes, and closing the loop
 * frees whatever is still open. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include "test.h"

static char big[8 * 1024 * 1024];

static void tcp_pair(ps_loop_t* loop, ps_stream_t** a, tally_t* ta,
                     ps_stream_t** b, tally_t* tb) {
  struct sockaddr_in sin;
  ps_listener_t* l;
  tally_t tl = {{0}, {0}};
  ps_address_t addr;
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(bind(fd, (struct sockaddr*)&sin, sizeof(sin)), 0);
  CHECK_EQ(ps_listener_open(loop, fd, PS_KIND_TCP, 16, &tl, &l), 0);
  CHECK_EQ(ps_listener_address(l, &addr), 0);
  CHECK_EQ(ps_tcp_connect(loop, -1, "127.0.0.1", addr.port, 0, ta, a), 0);
  CHECK_EQ(ps_stream_shutdown(*a), UV_ENOTCONN); /* still connecting */
  CHECK_EQ(ps_listener_accept(l, tb, b), UV_EAGAIN);
  PUMP_UNTIL(loop,
             tl.count[PS_EV_ACCEPT] == 1 && ta->count[PS_EV_CONNECT] == 1);
  CHECK_EQ(ps_listener_accept(l, tb, b), 0);
  CHECK_EQ(ps_listener_close(l), 0);
  PUMP_UNTIL(loop, tl.count[PS_EV_CLOSE] == 1);
}

static void test_close_delivers_what_the_kernel_took(ps_loop_t* loop) {
  ps_stream_t *a, *b;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}};
  const char* p;
  ssize_t sent, got = 0, n;

  tcp_pair(loop, &a, &ta, &b, &tb);
  sent = ps_stream_try_write(b, big, sizeof(big));
  CHECK(sent > 64 * 1024); /* more than one read: the kernel holds some */
  CHECK_EQ(ps_stream_close(b), 0);
  for (;;) {
    int ready = ps_stream_want_read(a, 1);
    CHECK(ready >= 0);
    if (ready) {
      n = ps_stream_take_ptr(a, sizeof(big), &p);
      if (n == UV_EOF)
        break;
      CHECK(n > 0);
      CHECK_EQ(memcmp(p, big + got, (size_t)n), 0);
      got += n;
    } else {
      int seen = ta.count[PS_EV_READ];
      PUMP_UNTIL(loop, ta.count[PS_EV_READ] > seen);
    }
  }
  CHECK_EQ(got, sent);
  CHECK_EQ(ps_stream_close(a), 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_CLOSE] == 1 && tb.count[PS_EV_CLOSE] == 1);
}

static void test_linger_zero_resets(ps_loop_t* loop) {
  ps_stream_t *a, *b;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}};
  const char* p;
  struct linger reset = {1, 0};

  tcp_pair(loop, &a, &ta, &b, &tb);
  CHECK_EQ(ps_stream_try_write(b, "data", 4), 4);
  CHECK_EQ(ps_stream_want_read(a, 4), 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_READ] == 1);
  CHECK_EQ(
      ps_stream_setsockopt(b, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
  CHECK_EQ(ps_stream_close(b), 0);
  CHECK_EQ(ps_stream_want_read(a, 5), 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_READ] == 2);
  /* Data first, then the reset, which stays. */
  CHECK_EQ(ps_stream_take_ptr(a, 100, &p), 4);
  CHECK_EQ(ps_stream_take_ptr(a, 100, &p), UV_ECONNRESET);
  CHECK_EQ(ps_stream_take_ptr(a, 100, &p), UV_ECONNRESET);
  CHECK_EQ(ps_stream_close(a), 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_CLOSE] == 1 && tb.count[PS_EV_CLOSE] == 1);
}

static void test_close_cancels_queued_writes(ps_loop_t* loop) {
  ps_stream_t *a, *b;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}};
  ssize_t n;

  tcp_pair(loop, &a, &ta, &b, &tb);
  n = ps_stream_try_write(a, big, sizeof(big));
  CHECK(n >= 0 && n < (ssize_t)sizeof(big));
  CHECK_EQ(ps_stream_write(a, big + n, sizeof(big) - (size_t)n), 0);
  CHECK_EQ(ps_stream_write(a, big, 10), 0);
  CHECK_EQ(ps_stream_shutdown(a), 0);
  pump(loop, 1);
  CHECK_EQ(ps_stream_close(a), 0);
  PUMP_UNTIL(loop, ta.count[PS_EV_CLOSE] == 1);
  /* Both writes and the shutdown ended before the close completion. */
  CHECK_EQ(ta.count[PS_EV_WRITE], 2);
  CHECK_EQ(ta.status[PS_EV_WRITE], UV_ECANCELED);
  CHECK_EQ(ta.count[PS_EV_SHUTDOWN], 1);
  CHECK_EQ(ta.status[PS_EV_SHUTDOWN], UV_ECANCELED);
  CHECK_EQ(ps_stream_close(b), 0);
  PUMP_UNTIL(loop, tb.count[PS_EV_CLOSE] == 1);
}

static void test_loop_close_frees_open_handles(void) {
  ps_loop_t* loop;
  ps_stream_t *a, *b;
  tally_t ta = {{0}, {0}}, tb = {{0}, {0}};
  ssize_t n;

  CHECK_EQ(ps_loop_new(&loop), 0);
  tcp_pair(loop, &a, &ta, &b, &tb);
  n = ps_stream_try_write(a, big, sizeof(big));
  CHECK(n >= 0);
  CHECK_EQ(ps_stream_write(a, big + n, sizeof(big) - (size_t)n), 0);
  /* Left open, with a write queued and data buffered: the loop's close
   * must cancel and free all of it, recording no events. */
  close_loop_and_check(loop);
}

int main(void) {
  ps_loop_t* loop;
  CHECK_EQ(ps_loop_new(&loop), 0);
  test_close_delivers_what_the_kernel_took(loop);
  test_linger_zero_resets(loop);
  test_close_cancels_queued_writes(loop);
  close_loop_and_check(loop);
  test_loop_close_frees_open_handles();
  puts("test_close: ok");
  return 0;
}
