/* Child processes: spawned by libuv, reaped by libuv's SIGCHLD handler or,
 * when that handler is not the one installed, by the loop's exit check, and
 * reported as PS_EV_EXIT.
 *
 * Why the exit check exists: libuv hears of exits only through its SIGCHLD
 * handler, and a handler installed over it (Python's signal.signal, or a
 * second copy of libuv such as uvloop's) silences it for good.  A spawn
 * also leaves such a handler in place when it finds one (sigchld.c), as
 * libuv's would take that user's signals.  Without the check, PS_EV_EXIT
 * would never come and a close would wait forever.
 *
 * Who reaps first.  libuv 1.44 on Linux reaps in uv__wait_children, which
 * its SIGCHLD watcher runs during a pass: for each process handle still on
 * the loop's list it calls waitpid(pid, WNOHANG); a pid that waitpid
 * reports as ECHILD it skips without calling the exit callback, leaving
 * the handle on its list.  The exit check runs in the same thread, in the
 * timers phase of a pass, so the two never overlap and whichever calls
 * waitpid first gets the status:
 * - libuv first: its exit callback marks the process PS__EXITED, and the
 *   check never looks at it again.
 * - the check first: it closes libuv's handle at once.  uv_close takes the
 *   handle off libuv's list before it returns (uv__process_close), so libuv
 *   never calls the exit callback for it, and never calls waitpid for that
 *   pid again: not even after the kernel has given the pid to another child
 *   of this process, whose exit libuv would otherwise steal.
 * So PS_EV_EXIT is recorded once, by whichever reaped.
 *
 * The pid rule: a process is signalled or waited for only while it is our
 * unreaped child.  Once reaped (PS__EXITED) its pid may belong to anyone.
 * Something else in this process may also reap it (a waitpid(-1), SIGCHLD
 * set to SIG_IGN); waitpid then fails with ECHILD, which the exit check
 * records as an exit of unknown status, and a signal is sent only after
 * waitid(WNOWAIT) has shown that the child is still ours. */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "internal.h"

static void ps__process_unlink(ps_process_t* p) {
  ps_loop_t* loop = p->loop;

  if (p->prev != NULL)
    p->prev->next = p->next;
  else
    loop->processes = p->next;
  if (p->next != NULL)
    p->next->prev = p->prev;
  p->prev = p->next = NULL;
}

/* The end of a process the owner closed and libuv is done with. */
static void ps__process_release(ps_process_t* p) {
  ps_loop_t* loop = p->loop;

  assert(p->tag == PS__TAG_PROCESS);
  assert((p->flags & PS__PROCESS_CLOSING) && (p->flags & PS__UV_CLOSED));
  if (p->flags & PS__SPAWNED) {
    ps__process_unlink(p);
    ps__emit(loop, p->data, PS_EV_CLOSE, 0);
    ps__count_handles(loop, PS__TAG_PROCESS, -1);
  }
  free(p);
}

void ps__process_release_queued(ps_loop_t* loop) {
  while (loop->process_release != NULL) {
    ps_process_t* p = loop->process_release;
    loop->process_release = p->next_release;
    ps__process_release(p);
  }
}

static void ps__process_close_cb(uv_handle_t* handle) {
  ps_process_t* p = handle->data;

  /* Only uv_close, after the child was reaped (or never ran), brings us
   * here. */
  assert(p->tag == PS__TAG_PROCESS && !(p->flags & PS__UV_CLOSED));
  assert(!(p->flags & PS__SPAWNED) || (p->flags & PS__EXITED));
  p->flags |= PS__UV_CLOSED;
  /* A process whose child the exit check reaped may still be the owner's:
   * the owner's close then frees it. */
  if (p->flags & PS__PROCESS_CLOSING)
    ps__process_release(p);
}

/* Closes libuv's handle.  Closing the loop's last unreaped one makes libuv
 * stop its SIGCHLD watcher, and the last watcher's stop resets SIGCHLD to
 * SIG_DFL (see sigchld.c): a handler someone else installed meanwhile is
 * put back. */
static void ps__process_uv_close(ps_process_t* p) {
  struct sigaction before;

  ps__sigchld_enter(&before);
  uv_close(&p->u.handle, ps__process_close_cb);
  ps__sigchld_leave(&before, 0);
}

/* What libuv's exit callback and the exit check both do with an exit. */
static void ps__process_record_exit(ps_process_t* p, long long exit_status,
                                    int term_signal, int status) {
  ps_loop_t* loop = p->loop;

  assert(p->tag == PS__TAG_PROCESS && (p->flags & PS__SPAWNED));
  assert(!(p->flags & PS__EXITED) && loop->unreaped > 0);
  p->flags |= PS__EXITED;
  p->exit_status = exit_status;
  p->term_signal = term_signal;
  if (--loop->unreaped == 0)
    uv_timer_stop(&loop->reap_timer);
  ps__emit(loop, p->data, PS_EV_EXIT, status);
}

static void ps__process_on_exit(uv_process_t* handle, int64_t exit_status,
                                int term_signal) {
  ps_process_t* p = handle->data;

  /* The exit check closes libuv's handle when it reaps, which takes it off
   * libuv's list: libuv cannot report a child the check reaped. */
  assert(!uv_is_closing(&p->u.handle));
  ps__process_record_exit(p, exit_status, term_signal, 0);
  /* A close asked while the child ran waited for this: the child is
   * reaped now, so closing the handle can no longer leave a zombie. */
  if (p->flags & PS__PROCESS_CLOSING)
    ps__process_uv_close(p);
}

/* Waits for the child with waitpid(options): returns 0 if it still runs
 * (only with WNOHANG), else records its exit as libuv's exit callback
 * would, closes libuv's handle so that libuv forgets the pid (see the top
 * of this file), and returns 1. */
static int ps__process_wait(ps_process_t* p, int options) {
  long long exit_status = 0;
  int term_signal = 0;
  int status = 0;
  int event_status = 0;
  pid_t got;

  assert(!(p->flags & PS__EXITED) && !uv_is_closing(&p->u.handle));
  do {
    got = waitpid(p->pid, &status, options);
  } while (got == -1 && errno == EINTR);
  if (got == 0)
    return 0;
  if (got == -1) {
    /* Only ECHILD is possible for a valid pid and options: something else
     * reaped the child and its status is lost.  It is reported as exit
     * status 0, as Python's subprocess does, with the event saying why:
     * libuv has no code for ECHILD, and UV_ESRCH is what ps_process_kill
     * gives for the child from now on. */
    assert(errno == ECHILD);
    event_status = UV_ESRCH;
  } else {
    assert(got == p->pid);
    if (WIFEXITED(status))
      exit_status = WEXITSTATUS(status);
    if (WIFSIGNALED(status))
      term_signal = WTERMSIG(status);
  }
  ps__process_record_exit(p, exit_status, term_signal, event_status);
  ps__process_uv_close(p);
  return 1;
}

/* The exit check: finds the exits libuv missed.  Reaping closes handles
 * but frees nothing until their close callbacks, later in this pass, so
 * the walk stays on valid links. */
static void ps__reap_check(uv_timer_t* timer) {
  ps_loop_t* loop = timer->loop->data;
  ps_process_t* p;

  for (p = loop->processes; p != NULL; p = p->next) {
    if (!(p->flags & PS__EXITED))
      (void)ps__process_wait(p, WNOHANG);
  }
}

/* Sends signum if the child is still ours: UV_ESRCH once it was reaped,
 * by us or by something else in this process, as its pid may be another
 * process's by then.  A reaper in another thread could still take the
 * child between the check and the kill; nothing short of a pidfd closes
 * that gap, and such a reaper already breaks libuv's own bookkeeping. */
static int ps__process_signal(ps_process_t* p, int signum) {
  siginfo_t info;
  int err;

  if (p->flags & PS__EXITED)
    return UV_ESRCH;
  memset(&info, 0, sizeof(info));
  do {
    err = waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT);
  } while (err == -1 && errno == EINTR);
  if (err == -1)
    return UV_ESRCH;
  /* Running, or a zombie, which takes the signal and ignores it. */
  return PS__FAULT_CALL(PROCESS_UV_KILL, uv_kill(p->pid, signum));
}

void ps__process_begin_close(ps_process_t* p) {
  ps_loop_t* loop = p->loop;

  assert(p->tag == PS__TAG_PROCESS);
  if (p->flags & PS__PROCESS_CLOSING)
    return;
  p->flags |= PS__PROCESS_CLOSING;
  loop->dirty = 1;
  if (p->flags & PS__UV_CLOSED) {
    /* The exit check reaped the child in an earlier pass and libuv is done
     * with the handle; the caller reads events only after passes, so the
     * next one records PS_EV_CLOSE and frees the process. */
    p->next_release = loop->process_release;
    loop->process_release = p;
    return;
  }
  if (uv_is_closing(&p->u.handle))
    return; /* just reaped by ps_loop_close: the close callback frees it */
  if (p->flags & PS__EXITED) {
    ps__process_uv_close(p);
    return;
  }
  /* Closing libuv's handle would take the child off the list libuv reaps
   * from, and leave it a zombie; so it is killed, and the handle closes
   * once libuv or the exit check has reaped it.  Should the kill fail (a
   * child that changed its user), the handle waits for it to exit by
   * itself. */
  (void)ps__process_signal(p, SIGKILL);
}

void ps__process_close_all(ps_loop_t* loop) {
  ps_process_t* p;

  assert(loop->closing);
  for (p = loop->processes; p != NULL; p = p->next) {
    if (!(p->flags & PS__EXITED)) {
      /* Waiting for libuv would need its SIGCHLD handler, which something
       * may have replaced: the loop kills and reaps the child itself. */
      (void)ps__process_signal(p, SIGKILL);
      (void)ps__process_wait(p, 0);
    }
    ps__process_begin_close(p);
  }
  assert(loop->unreaped == 0);
}

int ps_process_spawn(ps_loop_t* loop, const char* file, char** argv,
                     char** envp, const char* cwd, const int* stdio_fds,
                     void* data, ps_process_t** out) {
  uv_process_options_t options;
  uv_stdio_container_t stdio[3];
  struct sigaction before;
  ps_process_t* p;
  int injected = 0;
  int err;
  int i;

  if (file == NULL || argv == NULL || argv[0] == NULL || stdio_fds == NULL)
    return UV_EINVAL;
  for (i = 0; i < 3; i++) {
    if (stdio_fds[i] < -1)
      return UV_EINVAL;
    /* libuv opens /dev/null for a standard fd it is told to ignore. */
    stdio[i].flags = stdio_fds[i] == -1 ? UV_IGNORE : UV_INHERIT_FD;
    stdio[i].data.fd = stdio_fds[i];
  }
  p = PS__FAULT_ALLOC(PROCESS_CALLOC, calloc(1, sizeof(*p)));
  if (p == NULL)
    return UV_ENOMEM;
  p->tag = PS__TAG_PROCESS;
  p->loop = loop;
  memset(&options, 0, sizeof(options));
  options.exit_cb = ps__process_on_exit;
  /* A faked uv_spawn failure would skip libuv's registration of the
   * handle, which every real failure makes: a program that cannot exist
   * fails it for real. */
  options.file = PS__FAULT_ARG(PROCESS_UV_SPAWN, &injected, file,
                               "/nonexistent/pystream-fault");
  options.args = argv;
  options.env = envp;
  options.cwd = cwd;
  options.stdio_count = 3;
  options.stdio = stdio;
  /* uv_spawn may install libuv's SIGCHLD handler over someone else's, and
   * the close of a failed attempt may reset SIGCHLD to SIG_DFL: both run
   * under the SIGCHLD lock, which puts the other user's action back (see
   * sigchld.c). */
  ps__sigchld_enter(&before);
  err = uv_spawn(&loop->uv, &p->u.process, &options);
  if (injected != 0 && err != 0)
    err = injected;
  ps__sigchld_spawned(&before);
  p->u.handle.data = p;
  if (err != 0) {
    /* libuv registered the handle even so (and reaped a child whose exec
     * failed): it must be closed, and is freed in its close callback
     * without ever being counted or reported, as the caller never had
     * it. */
    p->flags |= PS__PROCESS_CLOSING;
    uv_close(&p->u.handle, ps__process_close_cb);
  }
  ps__sigchld_leave(&before, err == 0);
  /* The SIGCHLD watcher libuv started, or the close above, takes effect
   * only during a pass. */
  loop->dirty = 1;
  if (err != 0)
    return err;
  p->flags |= PS__SPAWNED;
  p->pid = uv_process_get_pid(&p->u.process);
  p->data = data;
  p->next = loop->processes;
  if (p->next != NULL)
    p->next->prev = p;
  loop->processes = p;
  if (loop->unreaped++ == 0) {
    /* The loop's clock may be old if no pass ran for a while; the first
     * check is due an interval from now, not from then. */
    uv_update_time(&loop->uv);
    uv_timer_start(&loop->reap_timer, ps__reap_check, PS__REAP_INTERVAL_MS,
                   PS__REAP_INTERVAL_MS);
  }
  ps__count_handles(loop, PS__TAG_PROCESS, 1);
  *out = p;
  return 0;
}

int ps_process_pid(ps_process_t* p) {
  return p->pid;
}

int ps_process_exit_status(ps_process_t* p, long long* exit_status,
                           int* term_signal) {
  if (!(p->flags & PS__EXITED))
    return 0;
  *exit_status = p->exit_status;
  *term_signal = p->term_signal;
  return 1;
}

int ps_process_kill(ps_process_t* p, int signum) {
  return ps__process_signal(p, signum);
}

int ps_process_close(ps_process_t* p) {
  if (p->flags & PS__PROCESS_CLOSING)
    return UV_EALREADY;
  ps__process_begin_close(p);
  return 0;
}
