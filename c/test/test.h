/* A tiny harness for the C core's tests: checks, and a pump that waits on
 * the backend fd like the Python bridge does, then runs one pass and counts
 * the events per handle. */
#ifndef PS_TEST_H
#define PS_TEST_H

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pystream.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#define CHECK_EQ(a, b)                                                    \
  do {                                                                    \
    long a_ = (long)(a), b_ = (long)(b);                                  \
    if (a_ != b_) {                                                       \
      fprintf(stderr, "%s:%d: %s == %ld, expected %s == %ld\n", __FILE__, \
              __LINE__, #a, a_, #b, b_);                                  \
      exit(1);                                                            \
    }                                                                     \
  } while (0)

/* What one handle's events were: a count and the last status per type. */
typedef struct {
  int count[8];
  int status[8];
} tally_t;

static inline void pump(ps_loop_t* loop, int wait_ms) {
  ps_event_t* events;
  int n, i;
  if (ps_loop_timeout(loop) != 0) {
    struct pollfd p;
    p.fd = ps_loop_backend_fd(loop);
    p.events = POLLIN;
    p.revents = 0;
    (void)poll(&p, 1, wait_ms);
  }
  n = ps_loop_run(loop, &events);
  CHECK(n >= 0);
  for (i = 0; i < n; i++) {
    tally_t* t = events[i].data;
    CHECK(events[i].type > 0 && events[i].type < 8);
    t->count[events[i].type]++;
    t->status[events[i].type] = events[i].status;
  }
}

/* Pump until cond holds; fail after about ten seconds. */
#define PUMP_UNTIL(loop, cond)                                         \
  do {                                                                 \
    int spins_ = 0;                                                    \
    while (!(cond)) {                                                  \
      if (++spins_ > 1000) {                                           \
        fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, \
                __LINE__, #cond);                                      \
        exit(1);                                                       \
      }                                                                \
      pump((loop), 10);                                                \
    }                                                                  \
  } while (0)

/* Every test ends here: the loop closes cleanly and nothing is left. */
static inline void close_loop_and_check(ps_loop_t* loop) {
  ps_counters_t c;
  CHECK_EQ(ps_loop_close(loop), 0);
  ps_counters(NULL, &c);
  CHECK_EQ(c.loops, 0);
  CHECK_EQ(c.handles, 0);
  CHECK_EQ(c.processes, 0);
  CHECK_EQ(c.writes_pending, 0);
  CHECK_EQ(c.bytes_buffered, 0);
}

#endif
