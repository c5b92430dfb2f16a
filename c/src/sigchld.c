/* SIGCHLD shared with the rest of the process.
 *
 * What libuv 1.44 does with SIGCHLD on Linux (src/unix/process.c and
 * src/unix/signal.c):
 * - uv_spawn calls uv_signal_start(&loop->child_watcher, uv__chld, SIGCHLD)
 *   at every spawn, before the fork, so also at a spawn that then fails.
 *   When no other uv_signal_t of this copy of libuv watches SIGCHLD (the
 *   signal tree is shared by all its loops), uv__signal_register_handler
 *   installs uv__signal_handler with sigaction (mask full, SA_RESTART),
 *   replacing whatever was there without saving it ("XXX save old action
 *   so we can restore it later on?").  A loop whose watcher is already
 *   active, or another loop's watcher, makes the start install nothing.
 * - uv_close on a process handle runs uv__process_close at once, which
 *   takes the handle off loop->process_handles (where only children not
 *   yet reaped are) and, when that list is then empty, calls
 *   uv_signal_stop on the child watcher.  When that was the last SIGCHLD
 *   watcher of this copy of libuv, uv__signal_unregister_handler sets
 *   SIGCHLD to SIG_DFL, whoever installed the handler in place.
 * - uv_loop_close stops the loop's signal watchers too
 *   (uv__signal_loop_cleanup), but by then every process handle of ours
 *   has been closed, so the child watcher is stopped already.
 *
 * So a spawn silently takes SIGCHLD from its other users in this process
 * (a Python signal.signal handler, uvloop's own copy of libuv), and a close
 * drops a handler they installed later.  pystream's children do not need
 * libuv's handler: the exit check finds their exits without it.  So around
 * each of these calls the action in place is read, and put back exactly
 * (function, mask and flags) when libuv replaced someone else's:
 * - at a spawn, a handler function that is not libuv's own: the exits of
 *   every pystream child then come from the exit check, up to 250 ms late,
 *   and the other user keeps its signals.  SIG_DFL (the usual case) and
 *   SIG_IGN give way to libuv's handler, so that exits are reported in the
 *   pass after their SIGCHLD (and, instead of SIG_IGN, with their status);
 * - at a close (or a spawn that failed, which pystream closes at once),
 *   any action but SIG_DFL and libuv's handler, if libuv reset it.
 * Between libuv's sigaction and the restore (at a spawn, the fork and the
 * wait for the child's exec), a SIGCHLD meant for the other user reaches
 * libuv's handler, or SIG_DFL, which discards it, and that user would
 * never hear of its child's exit.  So after each restore one SIGCHLD is
 * sent to the process: the other user looks for exits once more, and may
 * find none, as it may after any SIGCHLD (they coalesce, and stopped
 * children send them too).
 *
 * libuv's handler is a static function of the libuv we link with: its
 * address is learnt at the first spawn that installs it, as the action that
 * appeared during uv_spawn.  Until then no action is taken for libuv's; a
 * handler of this libuv installed by some other user of it is then
 * mistaken for a foreign one, which only ever puts back that same handler.
 *
 * sigaction is process-wide and loops run in several threads: a
 * process-wide mutex makes each read, libuv call and restore one step
 * against the others of this library.  libuv takes its own signal lock
 * inside that step, and never calls back into pystream while holding it,
 * so the order of the two locks is always the same.  A sigaction made
 * elsewhere in the process (another thread's signal.signal, another copy
 * of libuv) during such a step is not serialised with it: the restore
 * happens only when the action then in place is what libuv sets (its
 * handler, or SIG_DFL), which keeps that window to the step itself. */
#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

typedef void (*ps__sigfn_t)(void);

static pthread_mutex_t ps__sigchld_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t ps__sigchld_once = PTHREAD_ONCE_INIT;
/* libuv's SIGCHLD handler, once a spawn has shown it (under the mutex). */
static ps__sigfn_t ps__libuv_handler;
static int ps__libuv_handler_known;

/* A fork while another thread holds the mutex would leave it locked
 * forever in the child, where that thread does not exist.  uv_spawn's own
 * fork happens under the mutex too, but its child only execs. */
static void ps__sigchld_after_fork_in_child(void) {
  (void)pthread_mutex_init(&ps__sigchld_mutex, NULL);
}

static void ps__sigchld_init(void) {
  if (pthread_atfork(NULL, NULL, ps__sigchld_after_fork_in_child) != 0)
    abort();
}

/* The function an action runs, SIG_DFL or SIG_IGN, as one comparable
 * value, whichever member of the union it was set through. */
static ps__sigfn_t ps__action_fn(const struct sigaction* action) {
  if (action->sa_flags & SA_SIGINFO)
    return (ps__sigfn_t)action->sa_sigaction;
  return (ps__sigfn_t)action->sa_handler;
}

static int ps__is_default(const struct sigaction* action) {
  return ps__action_fn(action) == (ps__sigfn_t)SIG_DFL;
}

static int ps__is_ignore(const struct sigaction* action) {
  return ps__action_fn(action) == (ps__sigfn_t)SIG_IGN;
}

static int ps__is_libuv(const struct sigaction* action) {
  return ps__libuv_handler_known && ps__action_fn(action) == ps__libuv_handler;
}

static void ps__read_sigchld(struct sigaction* out) {
  int err;

  memset(out, 0, sizeof(*out));
  /* Only an invalid signal number or address makes sigaction fail. */
  err = sigaction(SIGCHLD, NULL, out);
  assert(err == 0);
  (void)err;
}

void ps__sigchld_enter(struct sigaction* before) {
  int err;

  err = pthread_once(&ps__sigchld_once, ps__sigchld_init);
  assert(err == 0);
  err = pthread_mutex_lock(&ps__sigchld_mutex);
  assert(err == 0);
  (void)err;
  ps__read_sigchld(before);
}

void ps__sigchld_spawned(const struct sigaction* before) {
  struct sigaction now;

  ps__read_sigchld(&now);
  /* Only libuv changed the action during uv_spawn, and it only ever
   * installs its handler there. */
  if (!ps__libuv_handler_known &&
      ps__action_fn(&now) != ps__action_fn(before) && !ps__is_default(&now) &&
      !ps__is_ignore(&now)) {
    ps__libuv_handler = ps__action_fn(&now);
    ps__libuv_handler_known = 1;
  }
}

void ps__sigchld_leave(const struct sigaction* before, int spawned) {
  struct sigaction now;
  int restore;
  int err;

  ps__read_sigchld(&now);
  /* Nothing to keep: SIG_DFL, or libuv's own handler, which libuv manages,
   * or an action libuv did not touch. */
  restore = !ps__is_default(before) && !ps__is_libuv(before) &&
            ps__action_fn(&now) != ps__action_fn(before) &&
            (ps__is_default(&now) || ps__is_libuv(&now));
  /* A child now runs: SIG_IGN would have the kernel reap it and take its
   * status, so libuv's handler stays (see the top of this file). */
  if (spawned && ps__is_ignore(before))
    restore = 0;
  if (restore) {
    err = sigaction(SIGCHLD, before, NULL);
    assert(err == 0);
    (void)err;
  }
  err = pthread_mutex_unlock(&ps__sigchld_mutex);
  assert(err == 0);
  (void)err;
  /* Sent once the lock is released: the handler may run in this thread
   * before kill returns. */
  if (restore)
    (void)kill(getpid(), SIGCHLD);
}
