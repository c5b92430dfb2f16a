/* The loop handle: a private uv_loop_t, its event queue and counters. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static ps_counters_t ps__process_counters;

static void ps__add(long* field, long delta) {
  __atomic_add_fetch(field, delta, __ATOMIC_RELAXED);
}

void ps__count_handles(ps_loop_t* loop, int tag, long delta) {
  loop->counters.handles += delta;
  ps__add(&ps__process_counters.handles, delta);
  if (tag == PS__TAG_STREAM) {
    loop->counters.streams += delta;
    ps__add(&ps__process_counters.streams, delta);
  } else if (tag == PS__TAG_LISTENER) {
    loop->counters.listeners += delta;
    ps__add(&ps__process_counters.listeners, delta);
  } else {
    assert(tag == PS__TAG_PROCESS);
    loop->counters.processes += delta;
    ps__add(&ps__process_counters.processes, delta);
  }
}

void ps__count_polls(ps_loop_t* loop, long delta) {
  loop->counters.polls += delta;
  ps__add(&ps__process_counters.polls, delta);
}

void ps__count_writes(ps_loop_t* loop, long delta) {
  loop->counters.writes_pending += delta;
  ps__add(&ps__process_counters.writes_pending, delta);
}

void ps__count_buffered(ps_loop_t* loop, long delta) {
  loop->counters.bytes_buffered += delta;
  ps__add(&ps__process_counters.bytes_buffered, delta);
}

void ps_counters(ps_loop_t* loop, ps_counters_t* out) {
  if (loop != NULL) {
    *out = loop->counters;
    return;
  }
  out->loops = __atomic_load_n(&ps__process_counters.loops, __ATOMIC_RELAXED);
  out->handles =
      __atomic_load_n(&ps__process_counters.handles, __ATOMIC_RELAXED);
  out->streams =
      __atomic_load_n(&ps__process_counters.streams, __ATOMIC_RELAXED);
  out->listeners =
      __atomic_load_n(&ps__process_counters.listeners, __ATOMIC_RELAXED);
  out->writes_pending =
      __atomic_load_n(&ps__process_counters.writes_pending, __ATOMIC_RELAXED);
  out->bytes_buffered =
      __atomic_load_n(&ps__process_counters.bytes_buffered, __ATOMIC_RELAXED);
  out->processes =
      __atomic_load_n(&ps__process_counters.processes, __ATOMIC_RELAXED);
  out->polls = __atomic_load_n(&ps__process_counters.polls, __ATOMIC_RELAXED);
}

int ps_loop_new(ps_loop_t** out) {
  ps_loop_t* loop = PS__FAULT_ALLOC(LOOP_CALLOC, calloc(1, sizeof(*loop)));
  int err;

  if (loop == NULL)
    return UV_ENOMEM;
  err = PS__FAULT_CALL(LOOP_UV_LOOP_INIT, uv_loop_init(&loop->uv));
  if (err != 0) {
    free(loop);
    return err;
  }
  loop->uv.data = loop;
  /* It only links the timer into the loop, so it cannot fail. */
  err = uv_timer_init(&loop->uv, &loop->reap_timer);
  assert(err == 0);
  /* The exit check runs only while children do, and each of them keeps the
   * loop alive by itself: the timer must never be a reason on its own. */
  uv_unref((uv_handle_t*)&loop->reap_timer);
  /* Referenced, but active only inside ps_loop_run_once. */
  err = uv_timer_init(&loop->uv, &loop->wait_timer);
  assert(err == 0);
  loop->counters.loops = 1;
  ps__add(&ps__process_counters.loops, 1);
  *out = loop;
  return 0;
}

int ps_loop_backend_fd(ps_loop_t* loop) {
  return uv_backend_fd(&loop->uv);
}

/* The most events one handle records in a pass, besides one per write
 * (PS_EV_WRITE, counted by writes_pending): a stream's PS_EV_READ,
 * PS_EV_CONNECT, PS_EV_SHUTDOWN and PS_EV_CLOSE; a listener's and a
 * process's are fewer.  A handle made during a pass (an accepted
 * connection) has no owner yet, so records nothing. */
#define PS__EVENTS_PER_HANDLE 4

/* Grows the event queue, before a pass, to hold every event the pass can
 * record, so that none is ever lost for want of memory in the middle of
 * it: a failure here happens before anything ran. */
static int ps__reserve_events(ps_loop_t* loop) {
  size_t need = PS__EVENTS_PER_HANDLE * (size_t)loop->counters.handles +
                (size_t)loop->counters.writes_pending;
  size_t cap = loop->events_cap ? loop->events_cap : 64;
  ps_event_t* grown;

  if (need <= loop->events_cap)
    return 0;
  while (cap < need) cap *= 2;
  grown = PS__FAULT_ALLOC(LOOP_EVENTS_REALLOC,
                          realloc(loop->events, cap * sizeof(*grown)));
  if (grown == NULL)
    return UV_ENOMEM;
  loop->events = grown;
  loop->events_cap = cap;
  return 0;
}

void ps__emit(ps_loop_t* loop, void* data, int type, int status) {
  ps_event_t* ev;

  /* A handle nobody owns yet (an accepted connection in the queue) or a loop
   * being torn down has nobody to tell. */
  if (data == NULL || loop->closing)
    return;
  /* ps__reserve_events made room for every event of the pass. */
  assert(loop->n_events < loop->events_cap);
  if (loop->n_events == loop->events_cap) {
    loop->event_failure = 1; /* a bound above is wrong: say so, loudly */
    return;
  }
  ev = &loop->events[loop->n_events++];
  ev->data = data;
  ev->type = type;
  ev->status = status;
}

/* Room, before a pass, for every readiness record it can make: one per
 * poll (ps__emit_poll). */
static int ps__reserve_polls(ps_loop_t* loop) {
  size_t need = (size_t)loop->counters.polls;
  size_t cap = loop->polls_cap ? loop->polls_cap : 64;
  ps_poll_ready_t* grown;

  if (need <= loop->polls_cap)
    return 0;
  while (cap < need) cap *= 2;
  grown = PS__FAULT_ALLOC(LOOP_POLLS_REALLOC,
                          realloc(loop->polls, cap * sizeof(*grown)));
  if (grown == NULL)
    return UV_ENOMEM;
  loop->polls = grown;
  loop->polls_cap = cap;
  return 0;
}

/* One record per poll and pass, as a selector reports each fd once: libuv
 * calls a poll back more than once in a pass when its epoll_wait runs
 * again (more fds ready than it takes at once), and the events join. */
void ps__emit_poll(ps_poll_t* p, int events) {
  ps_loop_t* loop = p->loop;

  /* ps_loop_close closes every poll before its last passes, and libuv
   * calls no closing poll back. */
  assert(!loop->closing);
  if (p->pass == loop->passes) {
    loop->polls[p->slot].events |= events;
    return;
  }
  /* ps__reserve_polls made room for every poll, and none is opened during
   * a pass. */
  assert(loop->n_polls < loop->polls_cap);
  p->pass = loop->passes;
  p->slot = loop->n_polls++;
  loop->polls[p->slot].fd = p->owner_fd;
  loop->polls[p->slot].events = events;
}

int ps_loop_polls(ps_loop_t* loop, ps_poll_ready_t** ready) {
  *ready = loop->polls;
  return (int)loop->n_polls;
}

/* The start of every pass: room for every event it can record (out of
 * memory: nothing ran, nothing is lost, and the caller may run the pass
 * again later), a fresh event array, then the releases queued since the
 * last pass, which may record PS_EV_CLOSE. */
static int ps__begin_pass(ps_loop_t* loop) {
  int err;

  loop->n_events = 0;
  loop->n_polls = 0;
  loop->passes++; /* from 1: a poll's pass starts at 0, before any */
  err = ps__reserve_events(loop);
  if (err == 0)
    err = ps__reserve_polls(loop);
  if (err != 0)
    return err;
  loop->dirty = 0;
  ps__stream_release_queued(loop);
  ps__process_release_queued(loop);
  return 0;
}

int ps_loop_run(ps_loop_t* loop, ps_event_t** events) {
  int err = ps__begin_pass(loop);

  *events = loop->events;
  if (err != 0)
    return err;
  uv_run(&loop->uv, UV_RUN_NOWAIT);
  *events = loop->events;
  if (loop->event_failure) {
    /* Losing a completion would leave its waiter hanging forever; report it
     * so that the owner can fail loudly instead. */
    loop->event_failure = 0;
    return UV_ENOMEM;
  }
  return (int)loop->n_events;
}

static void ps__wait_over(uv_timer_t* timer) {
  (void)timer; /* Its only job was to end the wait. */
}

int ps_loop_run_once(ps_loop_t* loop, int timeout_ms, ps_event_t** events) {
  int err = ps__begin_pass(loop);

  *events = loop->events;
  if (err != 0)
    return err;
  if (loop->n_events > 0 || timeout_ms == 0) {
    /* The releases recorded events: the caller must see them now. */
    uv_run(&loop->uv, UV_RUN_NOWAIT);
  } else {
    if (timeout_ms > 0) {
      /* libuv's clock is cached: a timer started from a stale time would
       * end the wait early. */
      uv_update_time(&loop->uv);
      uv_timer_start(&loop->wait_timer, ps__wait_over, (uint64_t)timeout_ms, 0);
    }
    /* One iteration: pending callbacks, then epoll_wait for at most the
     * earliest of the caller's timeout and libuv's own timers (zero if
     * callbacks ran or handles are closing), then due timers. */
    uv_run(&loop->uv, UV_RUN_ONCE);
    uv_timer_stop(&loop->wait_timer);
  }
  *events = loop->events;
  if (loop->event_failure) {
    loop->event_failure = 0;
    return UV_ENOMEM;
  }
  return (int)loop->n_events;
}

int ps_loop_timeout(ps_loop_t* loop) {
  if (loop->dirty)
    return 0;
  /* A child not yet reaped holds an active, referenced libuv handle, so
   * the loop is alive while the exit check runs, and uv_backend_timeout
   * counts the check's timer (unref'd timers are in libuv's heap too):
   * the caller's next pass comes in time to run it. */
  assert(loop->unreaped == 0 || uv_loop_alive(&loop->uv));
  if (!uv_loop_alive(&loop->uv))
    return -1;
  return uv_backend_timeout(&loop->uv);
}

int ps_loop_alive(ps_loop_t* loop) {
  return uv_loop_alive(&loop->uv) || loop->release_queue != NULL ||
         loop->process_release != NULL;
}

int ps_loop_dirty(ps_loop_t* loop) {
  return loop->dirty;
}

static void ps__close_any(uv_handle_t* handle, void* arg) {
  int tag;
  (void)arg;
  if (handle->data == NULL)
    return;
  tag = ((ps__base_t*)handle->data)->tag;
  if (tag == PS__TAG_STREAM)
    ps__stream_begin_close(handle->data);
  else if (tag == PS__TAG_LISTENER)
    ps__listener_begin_close(handle->data);
  else if (tag == PS__TAG_PROCESS)
    ps__process_begin_close(handle->data);
  else {
    assert(tag == PS__TAG_POLL);
    ps__poll_begin_close(handle->data);
  }
}

int ps_loop_close(ps_loop_t* loop) {
  int err;

  loop->closing = 1;
  ps__stream_release_queued(loop);
  /* Children still running are killed and reaped here, with a blocking
   * waitpid rather than libuv's SIGCHLD handler, which something may have
   * replaced: the loop leaves no zombie behind, and never waits for a
   * signal that will not come. */
  ps__process_close_all(loop);
  ps__process_release_queued(loop);
  assert(loop->unreaped == 0);
  uv_walk(&loop->uv, ps__close_any, NULL);
  if (!uv_is_closing((uv_handle_t*)&loop->reap_timer))
    uv_close((uv_handle_t*)&loop->reap_timer, NULL);
  uv_close((uv_handle_t*)&loop->wait_timer, NULL);
  /* Close callbacks, cancelled writes and shutdowns all finish here: it
   * returns once nothing is left, as nothing calls uv_stop. */
  err = uv_run(&loop->uv, UV_RUN_DEFAULT);
  assert(err == 0);
  assert(loop->processes == NULL && loop->process_release == NULL);
  /* uv_loop_close stops the loop's signal watchers, which could reset
   * SIGCHLD to SIG_DFL; but libuv stopped the child watcher already, at
   * the uv_close of the last process handle (see sigchld.c), so this
   * touches no signal action and needs no SIGCHLD guard. */
  err = uv_loop_close(&loop->uv);
  if (err != 0)
    return err; /* Never free a loop libuv still uses. */
  free(loop->events);
  free(loop->polls);
  free(loop->spare);
  ps__add(&ps__process_counters.loops, -1);
  free(loop);
  return 0;
}
