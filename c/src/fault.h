/* Fault injection: every allocation and every libuv or system call whose
 * failure the core handles goes through one of the PS__FAULT_* macros
 * below, with a site id.  In a normal build the macros are the call itself
 * and nothing else is compiled.  Built with -DPS_FAULT_INJECTION (the
 * fault build: c/Makefile's `make fault`, build_ffi.py with
 * PYSTREAM_FAULTS=1), each site counts its uses and can be told to fail
 * with a chosen error on its Nth use, as SQLite's tests fail each
 * allocation in turn.  The sites are listed once, in PS__FAULT_SITES, with
 * the error a sweep injects by default: the plausible one for that call.
 * Not sites: calls whose failure is a state, not a fault (waitid's ECHILD,
 * a child reaped by someone else, which the process tests make for real;
 * fcntl's F_GETFL and F_GETFD on an fd given to a poll, which fail only for
 * an fd that is not open, which the poll tests make for real),
 * and calls that cannot fail as the core makes them (uv_timer_init,
 * sigaction, pthread_*: asserted).
 *
 * The test-only API between the FAULT CDEF markers is read by build_ffi.py
 * in the fault build only. */
#ifndef PYSTREAM_FAULT_H
#define PYSTREAM_FAULT_H

#include <errno.h>
#include <stddef.h>
#include <uv.h>

/* X(name, default error).  An allocation fails by returning NULL, so its
 * error is UV_ENOMEM; a system call fails by returning -1 with errno set to
 * minus the error; a libuv call returns the error; a callback's status
 * (a completion libuv reports) is replaced by the error when it was a
 * success. */
#define PS__FAULT_SITES(X)                   \
  X(LOOP_CALLOC, UV_ENOMEM)                  \
  X(LOOP_UV_LOOP_INIT, UV_EMFILE)            \
  X(LOOP_EVENTS_REALLOC, UV_ENOMEM)          \
  X(LOOP_POLLS_REALLOC, UV_ENOMEM)           \
  X(STREAM_CALLOC, UV_ENOMEM)                \
  X(STREAM_UV_TCP_INIT, UV_EMFILE)           \
  X(STREAM_UV_PIPE_INIT, UV_ENOMEM)          \
  X(STREAM_SPARE_MALLOC, UV_ENOMEM)          \
  X(STREAM_READ_REALLOC, UV_ENOMEM)          \
  X(STREAM_ADOPT_REALLOC, UV_ENOMEM)         \
  X(STREAM_GETSOCKOPT_SO_ERROR, UV_EBADF)    \
  X(STREAM_UV_READ_START, UV_EINVAL)         \
  X(STREAM_READ_CB, UV_ECONNRESET)           \
  X(STREAM_CONNECT_TCP_OPEN, UV_EBADF)       \
  X(STREAM_UV_TCP_CONNECT, UV_EADDRNOTAVAIL) \
  X(STREAM_CONNECT_CB, UV_ECONNREFUSED)      \
  X(STREAM_OPEN_TCP_OPEN, UV_EBADF)          \
  X(STREAM_OPEN_PIPE_OPEN, UV_EBADF)         \
  X(STREAM_UV_TRY_WRITE, UV_EPIPE)           \
  X(STREAM_WRITE_MALLOC, UV_ENOMEM)          \
  X(STREAM_UV_WRITE, UV_EPIPE)               \
  X(STREAM_WRITE_CB, UV_ECONNRESET)          \
  X(STREAM_POLL, UV_ENOMEM)                  \
  X(STREAM_UV_SHUTDOWN, UV_ENOTCONN)         \
  X(STREAM_SHUTDOWN_CB, UV_ECONNRESET)       \
  X(STREAM_SETSOCKOPT, UV_ENOPROTOOPT)       \
  X(STREAM_GETSOCKOPT, UV_ENOPROTOOPT)       \
  X(STREAM_GETNAME, UV_ENOBUFS)              \
  X(SENDFILE, UV_EIO)                        \
  X(LISTENER_CALLOC, UV_ENOMEM)              \
  X(LISTENER_UV_TCP_INIT, UV_EMFILE)         \
  X(LISTENER_UV_PIPE_INIT, UV_ENOMEM)        \
  X(LISTENER_TCP_OPEN, UV_EBADF)             \
  X(LISTENER_PIPE_OPEN, UV_EBADF)            \
  X(LISTENER_UV_LISTEN, UV_EADDRINUSE)       \
  X(LISTENER_UV_ACCEPT, UV_EMFILE)           \
  X(LISTENER_GETSOCKNAME, UV_ENOBUFS)        \
  X(PROCESS_CALLOC, UV_ENOMEM)               \
  X(PROCESS_UV_SPAWN, UV_EAGAIN)             \
  X(PROCESS_UV_KILL, UV_EPERM)               \
  X(POLL_CALLOC, UV_ENOMEM)                  \
  X(POLL_DUP, UV_EMFILE)                     \
  X(POLL_UV_POLL_INIT, UV_ENOSPC)            \
  X(POLL_UV_POLL_START, UV_EEXIST)           \
  X(POLL_CB, UV_EBADF)

enum {
#define PS__FAULT_ENUM(name, error) PS__SITE_##name,
  PS__FAULT_SITES(PS__FAULT_ENUM)
#undef PS__FAULT_ENUM
      PS__SITE_COUNT
};

/* FAULT CDEF BEGIN */
/* The number of sites, and each one's name and default error. */
int ps_fault_sites(void);
const char* ps_fault_site_name(int site);
int ps_fault_site_error(int site);
/* Makes the nth use of site from now fail with error (a negative libuv
 * code), once; nth 0 disarms it.  UV_EINVAL for a bad site, nth or error. */
int ps_fault_set(int site, long nth, int error);
/* The uses of site since the last ps_fault_reset, and how many of them
 * were made to fail. */
long ps_fault_hits(int site);
long ps_fault_fired(int site);
/* Disarms every site and zeroes its counts. */
void ps_fault_reset(void);
/* FAULT CDEF END */

#ifdef PS_FAULT_INJECTION

/* Counts a use of site: 0 to go on, or the error to fail it with. */
int ps__fault_check(int site);
/* The same for a system call: -1 with errno set when it fails. */
int ps__fault_sys(int site);

#define PS__FAULT_ALLOC(site, call) \
  (ps__fault_check(PS__SITE_##site) != 0 ? NULL : (call))
/* The GNU "?:" keeps the check's error without a second call. */
#define PS__FAULT_CALL(site, call) (ps__fault_check(PS__SITE_##site) ?: (call))
#define PS__FAULT_SYS(site, call) \
  (ps__fault_sys(PS__SITE_##site) != 0 ? -1 : (call))
/* A completion's status: an error replaces a success (status >= 0), and
 * only successes count as uses. */
#define PS__FAULT_STATUS(site, status) \
  ((__typeof__(status))ps__fault_status(PS__SITE_##site, (long)(status)))
/* An argument that makes the call fail for real, where faking the failure
 * would leave libuv in a state no real failure leaves: *injected is then
 * the error to report instead of the call's own. */
#define PS__FAULT_ARG(site, injected, arg, bad) \
  ((*(injected) = ps__fault_check(PS__SITE_##site)) != 0 ? (bad) : (arg))
long ps__fault_status(int site, long status);

#else

#define PS__FAULT_ALLOC(site, call) (call)
#define PS__FAULT_CALL(site, call) (call)
#define PS__FAULT_SYS(site, call) (call)
#define PS__FAULT_STATUS(site, status) (status)
#define PS__FAULT_ARG(site, injected, arg, bad) (arg)

#endif /* PS_FAULT_INJECTION */
#endif /* PYSTREAM_FAULT_H */
