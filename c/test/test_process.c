/* Child processes: SIGCHLD shared with another user of it (a handler found
 * at a spawn or installed after one is kept, libuv's is installed over
 * SIG_DFL, spawns from several threads); exit codes and signals, spawn
 * errors, environment and working directory, stdio through pipes, closing a
 * running child, closing the loop with children alive, and many children at
 * once; then the same exits found by the exit check when libuv's SIGCHLD
 * handler is replaced, both reapers racing, and a child reaped behind the
 * loop's back.  No child is ever left a zombie, and every count of events
 * is exact. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "test.h"

static const int no_stdio[3] = {-1, -1, -1};

/* The exit check's interval (PS__REAP_INTERVAL_MS), and the bound on how
 * late it may find an exit on a busy machine. */
#define REAP_INTERVAL_MS 250
#define REAP_BOUND_MS 3000

static volatile sig_atomic_t sigchld_seen;

/* Stands for a Python signal.signal(SIGCHLD, ...) handler: it takes the
 * signal and reaps nothing.  With loops in several threads, it may run in
 * two of them at once, hence the atomic count. */
static void count_sigchld(int signum) {
  int saved_errno = errno;
  (void)signum;
  __atomic_add_fetch(&sigchld_seen, 1, __ATOMIC_RELAXED);
  errno = saved_errno;
}

typedef void (*handler_t)(int);

/* libuv's SIGCHLD handler, as test_libuv_handler_over_sig_dfl first saw it
 * installed. */
static handler_t libuv_handler;

static void read_sigchld(struct sigaction* out) {
  memset(out, 0, sizeof(*out));
  CHECK_EQ(sigaction(SIGCHLD, NULL, out), 0);
}

static handler_t current_handler(void) {
  struct sigaction current;
  read_sigchld(&current);
  return current.sa_handler;
}

static int libuv_handler_installed(void) {
  CHECK(libuv_handler != NULL);
  return current_handler() == libuv_handler;
}

/* Installs count_sigchld with a mask and flags of its own, as another user
 * of SIGCHLD would, and reads back what the kernel holds into *installed. */
static void install_counter(struct sigaction* installed) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = count_sigchld;
  CHECK_EQ(sigemptyset(&action.sa_mask), 0);
  CHECK_EQ(sigaddset(&action.sa_mask, SIGUSR1), 0);
  action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  CHECK_EQ(sigaction(SIGCHLD, &action, NULL), 0);
  read_sigchld(installed);
  CHECK(installed->sa_handler == count_sigchld);
}

/* SIGCHLD's action is exactly *expected: function, flags and mask. */
static void check_action(const struct sigaction* expected) {
  struct sigaction current;
  int signum;
  read_sigchld(&current);
  CHECK(current.sa_handler == expected->sa_handler);
  CHECK_EQ(current.sa_flags, expected->sa_flags);
  for (signum = 1; signum < SIGRTMIN; signum++)
    CHECK_EQ(sigismember(&current.sa_mask, signum),
             sigismember(&expected->sa_mask, signum));
}

/* A test that installed a handler of its own ends with SIG_DFL again, as
 * the next one expects: pystream keeps such a handler, so only the test can
 * take it away. */
static void restore_default(void) {
  CHECK(signal(SIGCHLD, SIG_DFL) != SIG_ERR);
}

/* Replaces libuv's handler, as Python's signal.signal does at the C level.
 * libuv puts its own back only when a loop starts watching SIGCHLD anew:
 * at a spawn after every process handle of every loop has closed, and then
 * only over SIG_DFL or SIG_IGN, as pystream puts any other handler back. */
static void replace_libuv_handler(void (*handler)(int)) {
  CHECK(libuv_handler_installed());
  CHECK(signal(SIGCHLD, handler) != SIG_ERR);
}

static long elapsed_ms(const struct timespec* start) {
  struct timespec now;
  CHECK_EQ(clock_gettime(CLOCK_MONOTONIC, &now), 0);
  return (now.tv_sec - start->tv_sec) * 1000 +
         (now.tv_nsec - start->tv_nsec) / 1000000;
}

static int same_counters(const ps_counters_t* a, const ps_counters_t* b) {
  return a->loops == b->loops && a->handles == b->handles &&
         a->streams == b->streams && a->listeners == b->listeners &&
         a->writes_pending == b->writes_pending &&
         a->bytes_buffered == b->bytes_buffered && a->processes == b->processes;
}

/* Exactly these events, and no other kind, were recorded for t. */
static void check_events(const tally_t* t, int exits, int closes) {
  int type;
  for (type = 0; type < 8; type++) {
    int want = type == PS_EV_EXIT ? exits : type == PS_EV_CLOSE ? closes : 0;
    CHECK_EQ(t->count[type], want);
  }
  if (exits > 0)
    CHECK_EQ(t->status[PS_EV_EXIT], 0);
}

/* The child is gone for good: neither running nor a zombie. */
static void check_reaped(int pid) {
  CHECK(pid > 0);
  CHECK_EQ(waitpid(pid, NULL, WNOHANG), -1);
  CHECK_EQ(errno, ECHILD);
}

static ps_process_t* spawn_sh(ps_loop_t* loop, const char* script,
                              const int* stdio_fds, tally_t* t) {
  char* argv[] = {"/bin/sh", "-c", (char*)script, NULL};
  ps_process_t* p;
  CHECK_EQ(
      ps_process_spawn(loop, "/bin/sh", argv, NULL, NULL, stdio_fds, t, &p), 0);
  CHECK(ps_process_pid(p) > 0);
  return p;
}

static ps_process_t* spawn_sleep(ps_loop_t* loop, tally_t* t) {
  char* argv[] = {"sleep", "100", NULL};
  ps_process_t* p;
  /* No slash: found in PATH. */
  CHECK_EQ(ps_process_spawn(loop, "sleep", argv, NULL, NULL, no_stdio, t, &p),
           0);
  return p;
}

/* Closes p, waits for its last event and checks that it left no zombie. */
static void close_and_check(ps_loop_t* loop, ps_process_t* p, tally_t* t) {
  int pid = ps_process_pid(p);
  CHECK_EQ(ps_process_close(p), 0);
  CHECK_EQ(ps_process_close(p), UV_EALREADY);
  PUMP_UNTIL(loop, t->count[PS_EV_CLOSE] == 1);
  check_events(t, 1, 1);
  check_reaped(pid);
}

/* Reads s until end of file into buf; returns the count. */
static size_t read_to_eof(ps_loop_t* loop, ps_stream_t* s, tally_t* t,
                          char* buf, size_t cap) {
  size_t got = 0;
  for (;;) {
    int ready = ps_stream_want_read(s, 1);
    CHECK(ready >= 0);
    if (ready) {
      ssize_t n = ps_stream_take_into(s, buf + got, cap - got);
      if (n == UV_EOF)
        return got;
      CHECK(n > 0);
      got += (size_t)n;
      CHECK(got < cap);
    } else {
      int seen = t->count[PS_EV_READ];
      PUMP_UNTIL(loop, t->count[PS_EV_READ] > seen);
    }
  }
}

static void test_exit_code(ps_loop_t* loop) {
  tally_t t = {{0}, {0}};
  ps_counters_t c;
  long long status = -1;
  int sig = -1;
  ps_process_t* p = spawn_sh(loop, "exit 3", no_stdio, &t);

  ps_counters(loop, &c);
  CHECK_EQ(c.processes, 1);
  CHECK_EQ(c.handles, 1);
  CHECK_EQ(ps_loop_dirty(loop), 1); /* libuv's SIGCHLD watcher is new */
  /* Only a pass reaps: nothing is known before one. */
  CHECK_EQ(ps_process_exit_status(p, &status, &sig), 0);
  CHECK_EQ(status, -1);
  CHECK_EQ(ps_process_kill(p, 0), 0);
  PUMP_UNTIL(loop, t.count[PS_EV_EXIT] == 1);
  check_events(&t, 1, 0);
  CHECK_EQ(ps_process_exit_status(p, &status, &sig), 1);
  CHECK_EQ(status, 3);
  CHECK_EQ(sig, 0);
  /* Reaped: its pid may belong to someone else now. */
  CHECK_EQ(ps_process_kill(p, SIGTERM), UV_ESRCH);
  CHECK_EQ(ps_process_kill(p, 0), UV_ESRCH);
  close_and_check(loop, p, &t);
}

static void test_signals(ps_loop_t* loop) {
  tally_t t1 = {{0}, {0}}, t2 = {{0}, {0}};
  long long status = -1;
  int sig = -1;
  ps_process_t* self = spawn_sh(loop, "kill -TERM $$", no_stdio, &t1);
  ps_process_t* sleeper = spawn_sleep(loop, &t2);

  PUMP_UNTIL(loop, t1.count[PS_EV_EXIT] == 1);
  CHECK_EQ(ps_process_exit_status(self, &status, &sig), 1);
  CHECK_EQ(status, 0);
  CHECK_EQ(sig, SIGTERM);
  close_and_check(loop, self, &t1);

  CHECK_EQ(ps_process_kill(sleeper, 0), 0);
  CHECK_EQ(t2.count[PS_EV_EXIT], 0);
  CHECK_EQ(ps_process_kill(sleeper, SIGTERM), 0);
  PUMP_UNTIL(loop, t2.count[PS_EV_EXIT] == 1);
  CHECK_EQ(ps_process_exit_status(sleeper, &status, &sig), 1);
  CHECK_EQ(status, 0);
  CHECK_EQ(sig, 15);
  CHECK_EQ(ps_process_kill(sleeper, SIGKILL), UV_ESRCH);
  close_and_check(loop, sleeper, &t2);
}

static void expect_spawn_error(ps_loop_t* loop, const char* file, char** argv,
                               const char* cwd, const int* stdio_fds,
                               int expected) {
  ps_counters_t before, after, total_before, total_after;
  ps_process_t* p = NULL;
  tally_t t = {{0}, {0}};

  ps_counters(loop, &before);
  ps_counters(NULL, &total_before);
  CHECK_EQ(ps_process_spawn(loop, file, argv, NULL, cwd, stdio_fds, &t, &p),
           expected);
  CHECK(p == NULL);
  ps_counters(loop, &after);
  ps_counters(NULL, &total_after);
  CHECK(same_counters(&before, &after));
  CHECK(same_counters(&total_before, &total_after));
  /* Nothing is ever reported about an attempt that failed. */
  pump(loop, 0);
  check_events(&t, 0, 0);
}

static void test_spawn_errors(ps_loop_t* loop) {
  char* missing[] = {"/nonexistent/ps-test-program", NULL};
  char* not_in_path[] = {"ps-test-no-such-program", NULL};
  char* true_argv[] = {"true", NULL};
  char* empty[] = {NULL};
  int bad_fd[3] = {-1, -2, -1};
  char path[] = "/tmp/ps-test-noexec-XXXXXX";
  char* noexec[] = {path, NULL};
  int fd = mkstemp(path);

  CHECK(fd >= 0);
  CHECK_EQ(write(fd, "#!/bin/sh\n", 10), 10);
  CHECK_EQ(close(fd), 0);
  CHECK_EQ(chmod(path, 0644), 0);

  expect_spawn_error(loop, missing[0], missing, NULL, no_stdio, UV_ENOENT);
  expect_spawn_error(loop, not_in_path[0], not_in_path, NULL, no_stdio,
                     UV_ENOENT);
  expect_spawn_error(loop, path, noexec, NULL, no_stdio, UV_EACCES);
  expect_spawn_error(loop, "true", true_argv, "/nonexistent", no_stdio,
                     UV_ENOENT);
  expect_spawn_error(loop, "true", NULL, NULL, no_stdio, UV_EINVAL);
  expect_spawn_error(loop, "true", empty, NULL, no_stdio, UV_EINVAL);
  expect_spawn_error(loop, "true", true_argv, NULL, NULL, UV_EINVAL);
  expect_spawn_error(loop, "true", true_argv, NULL, bad_fd, UV_EINVAL);
  CHECK_EQ(unlink(path), 0);
  /* The failed attempts' libuv handles are gone too. */
  pump(loop, 0);
  CHECK_EQ(ps_loop_alive(loop), 0);
}

/* A pipe whose fds do not leak into children: the caller's part of the
 * spawn contract. */
static void make_pipe(int fds[2]) {
  CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
}

static void test_env_and_cwd(ps_loop_t* loop) {
  tally_t t = {{0}, {0}}, tr = {{0}, {0}};
  char* argv[] = {"/bin/sh", "-c",
                  "printf '%s|%s|%s' \"$PS_TEST\" \"$(pwd)\" \"${HOME-unset}\"",
                  NULL};
  char* envp[] = {"PS_TEST=hello world", NULL};
  const char expected[] = "hello world|/|unset";
  int out[2], stdio_fds[3];
  ps_process_t* p;
  ps_stream_t* r;
  char buf[256];
  size_t n;

  make_pipe(out);
  stdio_fds[0] = -1;
  stdio_fds[1] = out[1];
  stdio_fds[2] = -1;
  CHECK_EQ(
      ps_process_spawn(loop, "/bin/sh", argv, envp, "/", stdio_fds, &t, &p), 0);
  CHECK_EQ(close(out[1]), 0); /* the child has its own copy */
  CHECK_EQ(ps_stream_open(loop, out[0], PS_KIND_PIPE, &tr, &r), 0);
  n = read_to_eof(loop, r, &tr, buf, sizeof(buf));
  CHECK_EQ(n, sizeof(expected) - 1);
  CHECK(memcmp(buf, expected, n) == 0);
  CHECK_EQ(ps_stream_close(r), 0);
  PUMP_UNTIL(loop, tr.count[PS_EV_CLOSE] == 1 && t.count[PS_EV_EXIT] == 1);
  close_and_check(loop, p, &t);
}

static void test_stdio_through_cat(ps_loop_t* loop) {
  tally_t t = {{0}, {0}}, tr = {{0}, {0}}, tw = {{0}, {0}};
  char* argv[] = {"cat", NULL};
  const char text[] = "hello through cat\n";
  int in[2], out[2], stdio_fds[3];
  long long status = -1;
  int sig = -1;
  ps_process_t* p;
  ps_stream_t *r, *w;
  char buf[256];
  size_t n;

  make_pipe(in);
  make_pipe(out);
  stdio_fds[0] = in[0];
  stdio_fds[1] = out[1];
  stdio_fds[2] = -1;
  CHECK_EQ(ps_process_spawn(loop, "cat", argv, NULL, NULL, stdio_fds, &t, &p),
           0);
  CHECK_EQ(close(in[0]), 0);
  CHECK_EQ(close(out[1]), 0);
  CHECK_EQ(ps_stream_open(loop, out[0], PS_KIND_PIPE, &tr, &r), 0);
  CHECK_EQ(ps_stream_open(loop, in[1], PS_KIND_PIPE, &tw, &w), 0);
  CHECK_EQ(ps_stream_write(w, text, sizeof(text) - 1), 0);
  /* A pipe has no half-close: the shutdown closes the write end after the
   * write, which is cat's end of file. */
  CHECK_EQ(ps_stream_shutdown(w), 0);
  n = read_to_eof(loop, r, &tr, buf, sizeof(buf));
  CHECK_EQ(n, sizeof(text) - 1);
  CHECK(memcmp(buf, text, n) == 0);
  CHECK_EQ(ps_stream_close(r), 0);
  PUMP_UNTIL(loop, tr.count[PS_EV_CLOSE] == 1 && tw.count[PS_EV_CLOSE] == 1 &&
                       t.count[PS_EV_EXIT] == 1);
  CHECK_EQ(tw.count[PS_EV_WRITE], 1);
  CHECK_EQ(tw.status[PS_EV_WRITE], 0);
  CHECK_EQ(tw.count[PS_EV_SHUTDOWN], 1);
  CHECK_EQ(tw.status[PS_EV_SHUTDOWN], 0);
  CHECK_EQ(ps_process_exit_status(p, &status, &sig), 1);
  CHECK_EQ(status, 0);
  CHECK_EQ(sig, 0);
  close_and_check(loop, p, &t);
}

/* Waits, without a pass, until the child has exited: it is a zombie then,
 * as libuv reaps only during a pass. */
static void wait_for_zombie(ps_process_t* p) {
  for (;;) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    CHECK_EQ(waitid(P_PID, (id_t)ps_process_pid(p), &info,
                    WEXITED | WNOHANG | WNOWAIT),
             0);
    if (info.si_pid != 0)
      return;
    usleep(1000);
  }
}

static void test_close_running_child(ps_loop_t* loop) {
  tally_t t1 = {{0}, {0}}, t2 = {{0}, {0}};
  ps_process_t* zombie = spawn_sh(loop, "exit 0", no_stdio, &t1);
  ps_process_t* sleeper;
  ps_counters_t c;

  /* Exited but not reaped: the close's SIGKILL does not disturb a zombie,
   * and the next pass reaps it. */
  wait_for_zombie(zombie);
  close_and_check(loop, zombie, &t1);
  /* Still running: the close kills it, and the handle stays until libuv
   * has reaped it. */
  sleeper = spawn_sleep(loop, &t2);
  pump(loop, 0);
  CHECK_EQ(ps_process_kill(sleeper, 0), 0);
  close_and_check(loop, sleeper, &t2);
  ps_counters(loop, &c);
  CHECK_EQ(c.processes, 0);
  CHECK_EQ(c.handles, 0);
}

static void test_loop_close_with_live_children(void) {
  tally_t t1 = {{0}, {0}}, t2 = {{0}, {0}}, t3 = {{0}, {0}};
  ps_loop_t* loop;
  ps_process_t *running, *closing, *exited;
  int pids[3];

  CHECK_EQ(ps_loop_new(&loop), 0);
  running = spawn_sleep(loop, &t1);
  closing = spawn_sleep(loop, &t2);
  exited = spawn_sh(loop, "exit 0", no_stdio, &t3);
  pids[0] = ps_process_pid(running);
  pids[1] = ps_process_pid(closing);
  pids[2] = ps_process_pid(exited);
  PUMP_UNTIL(loop, t3.count[PS_EV_EXIT] == 1);
  CHECK_EQ(ps_process_close(closing), 0);
  /* One running, one being killed, one reaped but open: the loop's close
   * kills, reaps and frees them all, recording no events. */
  close_loop_and_check(loop);
  check_events(&t1, 0, 0);
  check_events(&t2, 0, 0);
  check_events(&t3, 1, 0);
  check_reaped(pids[0]);
  check_reaped(pids[1]);
  check_reaped(pids[2]);
}

#define MANY 50

static void test_many_children(ps_loop_t* loop) {
  static tally_t t[MANY];
  ps_process_t* p[MANY];
  ps_counters_t c;
  int exited, closed, i;

  memset(t, 0, sizeof(t));
  for (i = 0; i < MANY; i++) {
    char code[16];
    char* argv[] = {"/bin/sh", "-c", "exit $0", code, NULL};
    snprintf(code, sizeof(code), "%d", i);
    CHECK_EQ(ps_process_spawn(loop, "/bin/sh", argv, NULL, NULL, no_stdio,
                              &t[i], &p[i]),
             0);
  }
  ps_counters(loop, &c);
  CHECK_EQ(c.processes, MANY);
  do {
    pump(loop, 10);
    for (exited = 0, i = 0; i < MANY; i++) exited += t[i].count[PS_EV_EXIT];
  } while (exited < MANY);
  for (i = 0; i < MANY; i++) {
    long long status = -1;
    int sig = -1;
    check_events(&t[i], 1, 0);
    CHECK_EQ(ps_process_exit_status(p[i], &status, &sig), 1);
    CHECK_EQ(status, i);
    CHECK_EQ(sig, 0);
    CHECK_EQ(ps_process_close(p[i]), 0);
  }
  do {
    pump(loop, 10);
    for (closed = 0, i = 0; i < MANY; i++) closed += t[i].count[PS_EV_CLOSE];
  } while (closed < MANY);
  for (i = 0; i < MANY; i++) check_events(&t[i], 1, 1);
  ps_counters(loop, &c);
  CHECK_EQ(c.processes, 0);
  CHECK_EQ(c.handles, 0);
}

/* A child that exits with code when its stdin ends: it exits only once
 * the test closes *stdin_w, after replacing libuv's handler. */
static ps_process_t* spawn_waiting(ps_loop_t* loop, int code, int* stdin_w,
                                   tally_t* t) {
  char script[64];
  int in[2], stdio_fds[3] = {-1, -1, -1};
  ps_process_t* p;

  snprintf(script, sizeof(script), "read line; exit %d", code);
  make_pipe(in);
  stdio_fds[0] = in[0];
  p = spawn_sh(loop, script, stdio_fds, t);
  CHECK_EQ(close(in[0]), 0);
  *stdin_w = in[1];
  return p;
}

/* With libuv's handler in place, the exit check and libuv both reap, and
 * whichever comes first reports the exit, once. */
static void test_both_reapers(ps_loop_t* loop) {
  tally_t t = {{0}, {0}}, ts = {{0}, {0}}, tw[8];
  ps_process_t *p, *sleeper, *w[8];
  long long status = -1;
  int sig = -1, passes, exited, i;
  ps_counters_t c;

  /* The check first: the child is a zombie and libuv's handler has its
   * SIGCHLD, but no pass runs until the check is due.  A pass runs timers
   * before it reads libuv's signal pipe, so the check reaps the child, and
   * libuv, reading the pipe later in the pass, no longer knows it. */
  p = spawn_sh(loop, "exit 6", no_stdio, &t);
  CHECK(libuv_handler_installed());
  wait_for_zombie(p);
  usleep((REAP_INTERVAL_MS + 50) * 1000);
  pump(loop, 0);
  check_events(&t, 1, 0);
  CHECK_EQ(ps_process_exit_status(p, &status, &sig), 1);
  CHECK_EQ(status, 6);
  CHECK_EQ(sig, 0);
  CHECK_EQ(ps_process_kill(p, 0), UV_ESRCH);

  /* libuv first: each exit is reaped in the pass its SIGCHLD wakes, while
   * a sleeper keeps the check running for a few more intervals. */
  sleeper = spawn_sleep(loop, &ts);
  memset(tw, 0, sizeof(tw));
  for (i = 0; i < 8; i++) {
    char delay[16];
    char* argv[] = {"/bin/sh", "-c", "sleep $0; exit $1", delay, "", NULL};
    char code[16];
    snprintf(delay, sizeof(delay), "0.%d", i * 12);
    snprintf(code, sizeof(code), "%d", 10 + i);
    argv[4] = code;
    CHECK_EQ(ps_process_spawn(loop, "/bin/sh", argv, NULL, NULL, no_stdio,
                              &tw[i], &w[i]),
             0);
  }
  do {
    pump(loop, 10);
    for (exited = 0, i = 0; i < 8; i++) exited += tw[i].count[PS_EV_EXIT];
  } while (exited < 8);
  for (passes = 0; passes < 3 * REAP_INTERVAL_MS / 10; passes++) pump(loop, 10);
  check_events(&t, 1, 0);
  check_events(&ts, 0, 0);
  for (i = 0; i < 8; i++) {
    check_events(&tw[i], 1, 0);
    CHECK_EQ(ps_process_exit_status(w[i], &status, &sig), 1);
    CHECK_EQ(status, 10 + i);
    close_and_check(loop, w[i], &tw[i]);
  }
  close_and_check(loop, p, &t);
  close_and_check(loop, sleeper, &ts);
  ps_counters(loop, &c);
  CHECK_EQ(c.processes, 0);
  CHECK_EQ(c.handles, 0);
}

/* libuv's handler replaced: the exit check alone finds the exit, within
 * about an interval, and reports it once. */
static void test_exit_without_libuv_handler(ps_loop_t* loop) {
  tally_t t = {{0}, {0}};
  struct timespec start;
  long long status = -1;
  int sig = -1, stdin_w, timeout, i;
  ps_process_t* p = spawn_waiting(loop, 7, &stdin_w, &t);
  int pid = ps_process_pid(p);

  pump(loop, 0);
  sigchld_seen = 0;
  replace_libuv_handler(count_sigchld);
  /* Nothing but the check can make work now: the next pass is due by the
   * time it is, not never (-1). */
  timeout = ps_loop_timeout(loop);
  CHECK(timeout >= 0 && timeout <= REAP_INTERVAL_MS);
  CHECK_EQ(clock_gettime(CLOCK_MONOTONIC, &start), 0);
  CHECK_EQ(close(stdin_w), 0);
  PUMP_UNTIL(loop, t.count[PS_EV_EXIT] == 1);
  CHECK(elapsed_ms(&start) < REAP_BOUND_MS);
  CHECK(sigchld_seen >= 1); /* the signal came, and libuv never saw it */
  CHECK_EQ(ps_process_exit_status(p, &status, &sig), 1);
  CHECK_EQ(status, 7);
  CHECK_EQ(sig, 0);
  /* Reaped by the check: the pid is free for reuse, so never signalled. */
  CHECK_EQ(ps_process_kill(p, SIGTERM), UV_ESRCH);
  CHECK_EQ(ps_process_kill(p, 0), UV_ESRCH);
  check_reaped(pid);
  for (i = 0; i < 3; i++) pump(loop, 10);
  check_events(&t, 1, 0);
  /* The check closed libuv's handle already; the owner's close still ends
   * with PS_EV_CLOSE, in the next pass. */
  close_and_check(loop, p, &t);
  /* That close stopped libuv's watcher, and libuv reset SIGCHLD: the
   * handler installed over libuv's is back. */
  CHECK(current_handler() == count_sigchld);
  restore_default();
}

/* libuv's handler replaced: a close kills the child and the exit check
 * reaps it, so the handle still closes. */
static void test_close_without_libuv_handler(ps_loop_t* loop) {
  tally_t t = {{0}, {0}};
  long long status = -1;
  int sig = -1;
  ps_process_t* p = spawn_sleep(loop, &t);
  ps_counters_t c;

  pump(loop, 0);
  replace_libuv_handler(SIG_DFL);
  CHECK_EQ(ps_process_exit_status(p, &status, &sig), 0);
  close_and_check(loop, p, &t);
  ps_counters(loop, &c);
  CHECK_EQ(c.processes, 0);
  CHECK_EQ(c.handles, 0);
}

/* Something else reaps the child (a waitpid(-1), SIGCHLD set to SIG_IGN):
 * its status is lost, the exit is still reported, and the pid is never
 * signalled again. */
static void test_child_reaped_elsewhere(ps_loop_t* loop) {
  tally_t t = {{0}, {0}};
  long long status = -1;
  int sig = -1, stdin_w, type;
  ps_process_t* p = spawn_waiting(loop, 9, &stdin_w, &t);
  int pid = ps_process_pid(p);
  int raw;

  pump(loop, 0);
  replace_libuv_handler(SIG_DFL);
  CHECK_EQ(close(stdin_w), 0);
  wait_for_zombie(p);
  CHECK_EQ(waitpid(pid, &raw, 0), pid);
  CHECK(WIFEXITED(raw) && WEXITSTATUS(raw) == 9);
  CHECK_EQ(ps_process_kill(p, 0), UV_ESRCH);
  PUMP_UNTIL(loop, t.count[PS_EV_EXIT] == 1);
  CHECK_EQ(t.status[PS_EV_EXIT], UV_ESRCH);
  CHECK_EQ(ps_process_exit_status(p, &status, &sig), 1);
  CHECK_EQ(status, 0);
  CHECK_EQ(sig, 0);
  CHECK_EQ(ps_process_close(p), 0);
  PUMP_UNTIL(loop, t.count[PS_EV_CLOSE] == 1);
  for (type = 0; type < 8; type++)
    CHECK_EQ(t.count[type], type == PS_EV_EXIT || type == PS_EV_CLOSE);
}

/* libuv's handler replaced: closing the loop with children alive kills
 * and reaps them itself, promptly, instead of waiting for a SIGCHLD that
 * libuv will never hear of. */
static void test_loop_close_without_libuv_handler(void) {
  tally_t t1 = {{0}, {0}}, t2 = {{0}, {0}};
  struct timespec start;
  ps_loop_t* loop;
  ps_process_t *running, *closing;
  int pids[2];

  CHECK_EQ(ps_loop_new(&loop), 0);
  running = spawn_sleep(loop, &t1);
  closing = spawn_sleep(loop, &t2);
  pids[0] = ps_process_pid(running);
  pids[1] = ps_process_pid(closing);
  pump(loop, 0);
  replace_libuv_handler(SIG_DFL);
  CHECK_EQ(ps_process_close(closing), 0);
  CHECK_EQ(clock_gettime(CLOCK_MONOTONIC, &start), 0);
  close_loop_and_check(loop);
  CHECK(elapsed_ms(&start) < REAP_BOUND_MS);
  check_events(&t1, 0, 0);
  check_events(&t2, 0, 0);
  check_reaped(pids[0]);
  check_reaped(pids[1]);
}

/* Waits, without a pass, until count_sigchld has run since it counted
 * seen. */
static void wait_for_sigchld(int seen) {
  int spins = 0;
  while (sigchld_seen == seen) {
    CHECK(++spins < 10000);
    usleep(1000);
  }
}

/* Runs while no pystream child has ever run in this process.  A handler
 * found at a spawn (a Python signal.signal handler, uvloop's copy of libuv)
 * is put back over the one libuv installs, with its mask and flags, and
 * still gets SIGCHLD for the children that are not pystream's; pystream's
 * own exit comes from the exit check, once, with its status. */
static void test_handler_found_at_spawn_is_kept(ps_loop_t* loop) {
  char* missing[] = {"/nonexistent/ps-test-program", NULL};
  tally_t t = {{0}, {0}};
  struct sigaction installed;
  long long status = -1;
  int sig = -1, stdin_w, seen, raw, passes;
  ps_process_t* p;
  pid_t other;

  CHECK(current_handler() == SIG_DFL);
  install_counter(&installed);
  /* A spawn that fails installs libuv's handler too, and the close of its
   * handle resets SIGCHLD to SIG_DFL. */
  expect_spawn_error(loop, missing[0], missing, NULL, no_stdio, UV_ENOENT);
  check_action(&installed);
  seen = sigchld_seen;
  p = spawn_waiting(loop, 4, &stdin_w, &t);
  check_action(&installed);
  /* No child has exited, but one SIGCHLD came: a SIGCHLD that reached
   * libuv's handler while it was in place is not lost to the counter. */
  CHECK(sigchld_seen > seen);
  pump(loop, 0);

  /* A child of someone else's, which pystream never waits for. */
  seen = sigchld_seen;
  other = fork();
  CHECK(other >= 0);
  if (other == 0)
    _exit(5);
  wait_for_sigchld(seen);
  CHECK_EQ(waitpid(other, &raw, 0), other);
  CHECK(WIFEXITED(raw) && WEXITSTATUS(raw) == 5);
  check_events(&t, 0, 0);

  /* pystream's child: its SIGCHLD goes to the counter too (the kernel
   * delivers it before the waitpid that reaps the child returns), and
   * the exit check reports it. */
  seen = sigchld_seen;
  CHECK_EQ(close(stdin_w), 0);
  PUMP_UNTIL(loop, t.count[PS_EV_EXIT] == 1);
  CHECK(sigchld_seen > seen);
  for (passes = 0; passes < 3 * REAP_INTERVAL_MS / 10; passes++) pump(loop, 10);
  check_events(&t, 1, 0);
  CHECK_EQ(ps_process_exit_status(p, &status, &sig), 1);
  CHECK_EQ(status, 4);
  CHECK_EQ(sig, 0);
  check_action(&installed);
  /* The last close stops libuv's watcher, which resets SIGCHLD. */
  close_and_check(loop, p, &t);
  check_action(&installed);
  restore_default();
}

/* With SIG_DFL in place, the usual case, libuv's handler is installed and
 * stays while children run: an exit is recorded in the pass after its
 * SIGCHLD, without waiting for the exit check.  After the last close,
 * libuv's reset to SIG_DFL stands. */
static void test_libuv_handler_over_sig_dfl(ps_loop_t* loop) {
  int attempt, fast = 0;

  for (attempt = 0; attempt < 5 && !fast; attempt++) {
    tally_t t = {{0}, {0}};
    struct timespec start;
    long long status = -1;
    int sig = -1;
    handler_t handler;
    ps_process_t* p;

    CHECK(current_handler() == SIG_DFL);
    CHECK_EQ(clock_gettime(CLOCK_MONOTONIC, &start), 0);
    p = spawn_sh(loop, "exit 2", no_stdio, &t);
    handler = current_handler();
    CHECK(handler != SIG_DFL && handler != SIG_IGN && handler != count_sigchld);
    if (libuv_handler == NULL)
      libuv_handler = handler;
    CHECK(handler == libuv_handler);
    PUMP_UNTIL(loop, t.count[PS_EV_EXIT] == 1);
    /* The check is first due an interval after the spawn (give or take
     * the loop clock's granularity), so an exit recorded well before that
     * came through libuv's handler.  A busy machine may make an attempt
     * slow; the check alone would make every attempt slow. */
    fast = elapsed_ms(&start) < REAP_INTERVAL_MS / 2;
    CHECK_EQ(ps_process_exit_status(p, &status, &sig), 1);
    CHECK_EQ(status, 2);
    CHECK_EQ(sig, 0);
    close_and_check(loop, p, &t);
    CHECK(current_handler() == SIG_DFL);
  }
  CHECK(fast);
}

/* A handler installed after a spawn, over libuv's, is not reset to SIG_DFL
 * when pystream's last child closes: neither at a close that leaves another
 * loop watching SIGCHLD (libuv resets nothing then) nor at the very last,
 * nor when that loop closes. */
static void test_handler_installed_later_survives_last_close(ps_loop_t* loop) {
  tally_t t1 = {{0}, {0}}, t2 = {{0}, {0}};
  struct sigaction installed;
  ps_process_t *p1, *p2;
  ps_loop_t* other;

  CHECK_EQ(ps_loop_new(&other), 0);
  CHECK(current_handler() == SIG_DFL);
  p1 = spawn_sleep(loop, &t1);
  p2 = spawn_sleep(other, &t2);
  CHECK(libuv_handler_installed());
  pump(loop, 0);
  pump(other, 0);
  install_counter(&installed);
  close_and_check(loop, p1, &t1);
  check_action(&installed);
  close_and_check(other, p2, &t2);
  check_action(&installed);
  CHECK_EQ(ps_loop_close(other), 0);
  check_action(&installed);
  restore_default();
}

#define THREADS 2
#define ROUNDS 3
#define PER_ROUND 8

/* One thread's loop: rounds of children spawned together, reaped, closed,
 * so that libuv's SIGCHLD watchers start and stop in both threads at once
 * and its handler comes and goes. */
static void* spawn_rounds(void* arg) {
  tally_t t[PER_ROUND];
  ps_process_t* p[PER_ROUND];
  int round, done, i;
  ps_loop_t* loop;

  (void)arg;
  CHECK_EQ(ps_loop_new(&loop), 0);
  for (round = 0; round < ROUNDS; round++) {
    memset(t, 0, sizeof(t));
    for (i = 0; i < PER_ROUND; i++) {
      char code[16];
      char* argv[] = {"/bin/sh", "-c", "exit $0", code, NULL};
      long long status = -1;
      int sig = -1;
      snprintf(code, sizeof(code), "%d", i);
      CHECK_EQ(ps_process_spawn(loop, "/bin/sh", argv, NULL, NULL, no_stdio,
                                &t[i], &p[i]),
               0);
      CHECK_EQ(ps_process_exit_status(p[i], &status, &sig), 0);
    }
    do {
      pump(loop, 10);
      for (done = 0, i = 0; i < PER_ROUND; i++) done += t[i].count[PS_EV_EXIT];
    } while (done < PER_ROUND);
    for (i = 0; i < PER_ROUND; i++) {
      long long status = -1;
      int sig = -1;
      CHECK_EQ(ps_process_exit_status(p[i], &status, &sig), 1);
      CHECK_EQ(status, i);
      CHECK_EQ(ps_process_close(p[i]), 0);
    }
    do {
      pump(loop, 10);
      for (done = 0, i = 0; i < PER_ROUND; i++) done += t[i].count[PS_EV_CLOSE];
    } while (done < PER_ROUND);
    for (i = 0; i < PER_ROUND; i++) check_events(&t[i], 1, 1);
  }
  CHECK_EQ(ps_loop_close(loop), 0);
  return NULL;
}

static void run_spawn_threads(void) {
  pthread_t threads[THREADS];
  int i;
  for (i = 0; i < THREADS; i++)
    CHECK_EQ(pthread_create(&threads[i], NULL, spawn_rounds, NULL), 0);
  for (i = 0; i < THREADS; i++) CHECK_EQ(pthread_join(threads[i], NULL), 0);
}

/* Loops in several threads spawn and close at once: a handler found in
 * place stays through all of it, and with SIG_DFL, libuv's handler comes
 * and goes, ending as SIG_DFL. */
static void test_spawns_from_threads(void) {
  struct sigaction installed;
  ps_counters_t c;

  install_counter(&installed);
  run_spawn_threads();
  check_action(&installed);
  restore_default();
  run_spawn_threads();
  CHECK(current_handler() == SIG_DFL);
  ps_counters(NULL, &c);
  CHECK_EQ(c.processes, 0);
}

int main(void) {
  ps_loop_t* loop;
  /* As in Python, a write to a pipe nobody reads fails instead of
   * killing the test. */
  signal(SIGPIPE, SIG_IGN);
  /* A close that waits for a SIGCHLD nobody delivers hangs: fail then,
   * rather than never finish. */
  alarm(120);
  CHECK_EQ(ps_loop_new(&loop), 0);
  /* First: no spawn may come before it. */
  test_handler_found_at_spawn_is_kept(loop);
  test_libuv_handler_over_sig_dfl(loop);
  test_handler_installed_later_survives_last_close(loop);
  test_exit_code(loop);
  test_signals(loop);
  test_spawn_errors(loop);
  test_env_and_cwd(loop);
  test_stdio_through_cat(loop);
  test_close_running_child(loop);
  test_many_children(loop);
  test_both_reapers(loop);
  test_exit_without_libuv_handler(loop);
  test_close_without_libuv_handler(loop);
  test_child_reaped_elsewhere(loop);
  close_loop_and_check(loop);
  test_loop_close_with_live_children();
  test_loop_close_without_libuv_handler();
  test_spawns_from_threads();
  puts("test_process: ok");
  return 0;
}
