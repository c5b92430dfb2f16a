/* Listeners and connections: accept queue, TCP connect, addresses, and
 * closing a listener with connections nobody took. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "test.h"

static int bound_socket(void) {
  struct sockaddr_in sin;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(bind(fd, (struct sockaddr*)&sin, sizeof(sin)), 0);
  return fd;
}

int main(void) {
  ps_loop_t* loop;
  ps_listener_t* l;
  ps_stream_t *client, *server, *extra[3];
  tally_t tl = {{0}, {0}}, tc = {{0}, {0}}, ts = {{0}, {0}};
  tally_t te[3];
  ps_address_t addr, peer;
  ps_counters_t c;
  char buf[4];
  int i, port;

  memset(te, 0, sizeof(te));
  CHECK_EQ(ps_loop_new(&loop), 0);
  CHECK_EQ(ps_listener_open(loop, bound_socket(), PS_KIND_TCP, 128, &tl, &l),
           0);
  CHECK_EQ(ps_listener_address(l, &addr), 0);
  CHECK_EQ(addr.family, AF_INET);
  CHECK(strcmp(addr.host, "127.0.0.1") == 0);
  port = addr.port;
  CHECK(port > 0);

  /* Nothing yet: accept arms the listener. */
  CHECK_EQ(ps_listener_accept(l, &ts, &server), UV_EAGAIN);
  CHECK_EQ(ps_tcp_connect(loop, -1, "127.0.0.1", port, 0, &tc, &client), 0);
  PUMP_UNTIL(loop, tc.count[PS_EV_CONNECT] == 1 && tl.count[PS_EV_ACCEPT] == 1);
  CHECK_EQ(tc.status[PS_EV_CONNECT], 0);
  CHECK_EQ(ps_listener_accept(l, &ts, &server), 0);
  CHECK_EQ(ps_stream_address(client, 0, &addr), 0);
  CHECK_EQ(ps_stream_address(server, 1, &peer), 0);
  CHECK_EQ(addr.port, peer.port);
  CHECK_EQ(ps_stream_kind(server), PS_KIND_TCP);

  CHECK_EQ(ps_stream_try_write(client, "ping", 4), 4);
  CHECK_EQ(ps_stream_want_read(server, 4), 0);
  PUMP_UNTIL(loop, ts.count[PS_EV_READ] == 1);
  CHECK_EQ(ps_stream_take_into(server, buf, 4), 4);
  CHECK(memcmp(buf, "ping", 4) == 0);

  /* A refused connection reports through its event. */
  {
    ps_stream_t* refused;
    tally_t tr = {{0}, {0}};
    int closed_fd = bound_socket();
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    CHECK_EQ(getsockname(closed_fd, (struct sockaddr*)&sin, &len), 0);
    close(closed_fd);
    CHECK_EQ(ps_tcp_connect(loop, -1, "127.0.0.1", ntohs(sin.sin_port), 0, &tr,
                            &refused),
             0);
    PUMP_UNTIL(loop, tr.count[PS_EV_CONNECT] == 1);
    CHECK_EQ(tr.status[PS_EV_CONNECT], UV_ECONNREFUSED);
    CHECK_EQ(ps_stream_close(refused), 0);
    PUMP_UNTIL(loop, tr.count[PS_EV_CLOSE] == 1);
  }
  CHECK_EQ(ps_tcp_connect(loop, -1, "not-an-ip", 80, 0, &tc, &client),
           UV_EINVAL);
  CHECK_EQ(ps_tcp_connect(loop, -1, "127.0.0.1", 70000, 0, &tc, &client),
           UV_EINVAL);

  /* Connections nobody accepts are queued by the core, then closed with
   * the listener. */
  for (i = 0; i < 3; i++)
    CHECK_EQ(ps_tcp_connect(loop, -1, "127.0.0.1", port, 0, &te[i], &extra[i]),
             0);
  PUMP_UNTIL(loop, te[0].count[PS_EV_CONNECT] + te[1].count[PS_EV_CONNECT] +
                           te[2].count[PS_EV_CONNECT] ==
                       3);
  for (i = 0; i < 50; i++) pump(loop, 1);
  ps_counters(loop, &c);
  CHECK_EQ(c.streams, 2 + 3 + 3); /* pair, clients, queued on the server */
  CHECK_EQ(ps_listener_close(l), 0);
  PUMP_UNTIL(loop, tl.count[PS_EV_CLOSE] == 1);
  ps_counters(loop, &c);
  CHECK_EQ(c.streams, 2 + 3);
  for (i = 0; i < 3; i++) {
    if (ps_stream_want_read(extra[i], 1) == 0)
      PUMP_UNTIL(loop, te[i].count[PS_EV_READ] == 1);
    CHECK(ps_stream_read_status(extra[i]) != 0); /* EOF or reset */
    CHECK_EQ(ps_stream_close(extra[i]), 0);
  }
  CHECK_EQ(ps_stream_close(client), 0);
  CHECK_EQ(ps_stream_close(server), 0);
  PUMP_UNTIL(loop, tc.count[PS_EV_CLOSE] == 1 && ts.count[PS_EV_CLOSE] == 1);
  close_loop_and_check(loop);
  puts("test_listener: ok");
  return 0;
}
