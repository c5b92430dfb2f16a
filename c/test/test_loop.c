/* The loop handle: create, idle behaviour, close. */
#include "test.h"

int main(void) {
  ps_loop_t* loop;
  ps_counters_t c;
  ps_event_t* events;

  CHECK_EQ(ps_loop_new(&loop), 0);
  CHECK(ps_loop_backend_fd(loop) >= 0);
  ps_counters(NULL, &c);
  CHECK_EQ(c.loops, 1);
  /* Nothing to do: no pass is due and libuv has nothing alive, so the
   * owner can sleep on the backend fd instead of spinning. */
  CHECK_EQ(ps_loop_alive(loop), 0);
  CHECK_EQ(ps_loop_timeout(loop), -1);
  CHECK_EQ(ps_loop_dirty(loop), 0);
  CHECK_EQ(ps_loop_run(loop, &events), 0);
  CHECK_EQ(ps_loop_timeout(loop), -1);
  close_loop_and_check(loop);
  puts("test_loop: ok");
  return 0;
}
