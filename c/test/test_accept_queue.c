/* More connections than the accept queue holds (64): libuv keeps the
 * next one while the queue is full, and each accept takes the queue's
 * head and lets libuv go on; none is lost, each carries its own bytes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "test.h"

#define CLIENTS 80

int main(void) {
  ps_loop_t* loop;
  ps_listener_t* l;
  ps_stream_t* clients[CLIENTS];
  ps_stream_t* server;
  tally_t tl = {{0}, {0}}, tc[CLIENTS], ts[CLIENTS];
  ps_address_t addr;
  struct sockaddr_in sin;
  int seen[CLIENTS];
  int connected = 0;
  int fd, i, port, err;

  memset(tc, 0, sizeof(tc));
  memset(ts, 0, sizeof(ts));
  memset(seen, 0, sizeof(seen));
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(bind(fd, (struct sockaddr*)&sin, sizeof(sin)), 0);
  CHECK_EQ(ps_loop_new(&loop), 0);
  CHECK_EQ(ps_listener_open(loop, fd, PS_KIND_TCP, 128, &tl, &l), 0);
  CHECK_EQ(ps_listener_address(l, &addr), 0);
  port = addr.port;

  /* Each client sends its number once connected; nobody accepts yet. */
  for (i = 0; i < CLIENTS; i++)
    CHECK_EQ(
        ps_tcp_connect(loop, -1, "127.0.0.1", port, 0, &tc[i], &clients[i]), 0);
  while (connected < CLIENTS) {
    pump(loop, 10);
    connected = 0;
    for (i = 0; i < CLIENTS; i++) connected += tc[i].count[PS_EV_CONNECT];
  }
  for (i = 0; i < CLIENTS; i++) {
    unsigned char byte = (unsigned char)i;
    CHECK_EQ(tc[i].status[PS_EV_CONNECT], 0);
    CHECK_EQ(ps_stream_try_write(clients[i], (const char*)&byte, 1), 1);
  }
  for (i = 0; i < 20; i++) pump(loop, 1);

  /* Every connection comes out of accept, the last ones only once the
   * queue had room again. */
  for (i = 0; i < CLIENTS; i++) {
    unsigned char byte;
    err = ps_listener_accept(l, &ts[i], &server);
    while (err == UV_EAGAIN) {
      PUMP_UNTIL(loop, tl.count[PS_EV_ACCEPT] > 0);
      tl.count[PS_EV_ACCEPT] = 0;
      err = ps_listener_accept(l, &ts[i], &server);
    }
    CHECK_EQ(err, 0);
    if (ps_stream_want_read(server, 1) == 0)
      PUMP_UNTIL(loop, ts[i].count[PS_EV_READ] == 1);
    CHECK_EQ(ps_stream_take_into(server, (char*)&byte, 1), 1);
    CHECK(byte < CLIENTS && !seen[byte]);
    seen[byte] = 1;
    CHECK_EQ(ps_stream_close(server), 0);
  }
  for (i = 0; i < CLIENTS; i++) CHECK_EQ(ps_stream_close(clients[i]), 0);
  CHECK_EQ(ps_listener_close(l), 0);
  PUMP_UNTIL(loop, tl.count[PS_EV_CLOSE] == 1);
  for (i = 0; i < CLIENTS; i++) {
    CHECK_EQ(tc[i].count[PS_EV_CLOSE], 1);
    CHECK_EQ(ts[i].count[PS_EV_CLOSE], 1);
  }
  close_loop_and_check(loop);
  puts("test_accept_queue: ok");
  return 0;
}
