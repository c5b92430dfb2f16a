/* Child processes: spawned by libuv, reaped by libuv's SIGCHLD handler, and
 * reported as PS_EV_EXIT. */
#include <assert.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void ps__process_close_cb(uv_handle_t* handle) {
  ps_process_t* p = handle->data;
  ps_loop_t* loop = p->loop;

  /* Only uv_close, after the close was asked and the child was reaped (or
   * never ran), brings us here. */
  assert(p->tag == PS__TAG_PROCESS && (p->flags & PS__PROCESS_CLOSING));
  assert(!(p->flags & PS__SPAWNED) || (p->flags & PS__EXITED));
  if (p->flags & PS__SPAWNED) {
    ps__emit(loop, p->data, PS_EV_CLOSE, 0);
    ps__count_handles(loop, PS__TAG_PROCESS, -1);
  }
  free(p);
}

static void ps__process_on_exit(uv_process_t* handle, int64_t exit_status,
                                int term_signal) {
  ps_process_t* p = handle->data;

  assert(p->tag == PS__TAG_PROCESS && (p->flags & PS__SPAWNED));
  assert(!(p->flags & PS__EXITED) && !uv_is_closing(&p->u.handle));
  p->flags |= PS__EXITED;
  p->exit_status = exit_status;
  p->term_signal = term_signal;
  ps__emit(p->loop, p->data, PS_EV_EXIT, 0);
  /* A close asked while the child ran waited for this: libuv has reaped
   * it now, so closing the handle can no longer leave a zombie. */
  if (p->flags & PS__PROCESS_CLOSING)
    uv_close(&p->u.handle, ps__process_close_cb);
}

void ps__process_begin_close(ps_process_t* p) {
  assert(p->tag == PS__TAG_PROCESS);
  if (p->flags & PS__PROCESS_CLOSING)
    return;
  p->flags |= PS__PROCESS_CLOSING;
  p->loop->dirty = 1;
  if (p->flags & PS__EXITED) {
    uv_close(&p->u.handle, ps__process_close_cb);
    return;
  }
  /* Closing libuv's handle would take the child off the list libuv reaps
   * from, and leave it a zombie; so it is killed, and the handle closes
   * when libuv reports the reaping.  Should the kill fail (a child that
   * changed its user), the handle waits for it to exit by itself. */
  (void)uv_process_kill(&p->u.process, SIGKILL);
}

int ps_process_spawn(ps_loop_t* loop, const char* file, char** argv,
                     char** envp, const char* cwd, const int* stdio_fds,
                     void* data, ps_process_t** out) {
  uv_process_options_t options;
  uv_stdio_container_t stdio[3];
  ps_process_t* p;
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
  p = calloc(1, sizeof(*p));
  if (p == NULL)
    return UV_ENOMEM;
  p->tag = PS__TAG_PROCESS;
  p->loop = loop;
  memset(&options, 0, sizeof(options));
  options.exit_cb = ps__process_on_exit;
  options.file = file;
  options.args = argv;
  options.env = envp;
  options.cwd = cwd;
  options.stdio_count = 3;
  options.stdio = stdio;
  err = uv_spawn(&loop->uv, &p->u.process, &options);
  p->u.handle.data = p;
  /* The SIGCHLD watcher libuv started, or the close below, takes effect
   * only during a pass. */
  loop->dirty = 1;
  if (err != 0) {
    /* libuv registered the handle even so (and reaped a child whose exec
     * failed): it must be closed, and is freed in its close callback
     * without ever being counted or reported, as the caller never had
     * it. */
    p->flags |= PS__PROCESS_CLOSING;
    uv_close(&p->u.handle, ps__process_close_cb);
    return err;
  }
  p->flags |= PS__SPAWNED;
  p->pid = uv_process_get_pid(&p->u.process);
  p->data = data;
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
  /* Until libuv reaps the child, its pid stays taken even if it exited;
   * once reaped, the kernel may give the pid to another process. */
  if (p->flags & PS__EXITED)
    return UV_ESRCH;
  return uv_process_kill(&p->u.process, signum);
}

int ps_process_close(ps_process_t* p) {
  if (p->flags & PS__PROCESS_CLOSING)
    return UV_EALREADY;
  ps__process_begin_close(p);
  return 0;
}
