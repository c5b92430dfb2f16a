/* pystream.h - the one public header of pystream's C core.
 *
 * A small handle-based API over a private libuv loop.  The library allocates
 * every handle and frees it itself, after libuv's close callback.  Every call
 * returns 0 (or a count) on success and a negative libuv error code on
 * failure.  Completions are never delivered by calling back into the caller:
 * they are appended to the loop's event queue during ps_loop_run(), and the
 * caller reads them after the pass returns.  So no caller code ever runs
 * inside uv_run().
 *
 * The text between the CDEF markers is read by build_ffi.py as the CFFI
 * declarations, so it holds plain C declarations only.
 */
#ifndef PYSTREAM_H
#define PYSTREAM_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
typedef struct ps_loop_s ps_loop_t;
typedef struct ps_stream_s ps_stream_t;
typedef struct ps_listener_s ps_listener_t;
typedef struct ps_process_s ps_process_t;
typedef struct ps_poll_s ps_poll_t;

/* Event types, one per kind of completion. */
enum {
  PS_EV_READ = 1,     /* an armed stream has what ps_stream_want_read asked  */
  PS_EV_WRITE = 2,    /* one queued write finished; status 0 or an error     */
  PS_EV_SHUTDOWN = 3, /* ps_stream_shutdown finished; status 0 or an error */
  PS_EV_CONNECT = 4,  /* ps_tcp_connect/ps_pipe_connect finished           */
  PS_EV_ACCEPT = 5,   /* an armed listener has a connection or an error    */
  PS_EV_CLOSE = 6,    /* the handle is closed: its last event              */
  PS_EV_EXIT = 7      /* a child was reaped: read ps_process_exit_status   */
};

/* What a poll handle watches for, and what ps_loop_polls reports. */
enum { PS_POLL_READABLE = 1, PS_POLL_WRITABLE = 2 };

/* One poll handle's readiness in a pass (see Polls). */
typedef struct {
  int fd;     /* the fd given to ps_poll_open */
  int events; /* the PS_POLL_* mask of what is ready */
} ps_poll_ready_t;

/* Stream kinds. */
enum { PS_KIND_TCP = 1, PS_KIND_PIPE = 2 };

typedef struct {
  void* data; /* the handle's data slot when the event was recorded */
  int type;   /* PS_EV_* */
  int status; /* 0 or a negative libuv error code */
} ps_event_t;

typedef struct {
  int family;      /* AF_INET, AF_INET6, AF_UNIX, or 0 if unknown */
  char host[112];  /* numeric host, or the socket path for AF_UNIX */
  size_t host_len; /* bytes used in host (a path may hold NULs) */
  int port;
  unsigned int flowinfo;
  unsigned int scope_id;
} ps_address_t;

typedef struct {
  long loops;   /* ps_loop_t objects alive */
  long handles; /* streams, listeners and processes not yet freed */
  long streams;
  long listeners;
  long writes_pending; /* queued writes libuv has not completed */
  long bytes_buffered; /* received bytes held in stream buffers */
  long processes;      /* ps_process_t objects not yet freed (in handles) */
  long polls;          /* ps_poll_t objects not yet freed (not in handles) */
} ps_counters_t;

/* ---- Loop ---------------------------------------------------------------
 * ps_loop_run runs one non-blocking pass of libuv and returns the number of
 * events recorded during it; *events points at them until the next
 * ps_loop_run or ps_loop_close.  Before the pass it makes room for every
 * event the pass can record; when that fails it returns UV_ENOMEM without
 * running the pass, so no completion is ever lost, and the caller runs it
 * again later.  ps_loop_timeout says when the next pass is
 * due: 0 now (the caller changed what libuv watches, or callbacks are
 * pending), a positive number of milliseconds, or -1 when only I/O on the
 * backend fd can make work.  While a child process of the loop is not yet
 * reaped, a pass is due at least every 250 ms, for the exit check (see
 * Processes): the caller must run it then.  ps_loop_close closes every
 * handle, drops their events, waits for libuv to finish with them, and
 * frees the loop.  A child process still running is sent SIGKILL and
 * reaped with a blocking waitpid, which needs no SIGCHLD: the close
 * returns as soon as the kernel has ended the child, and leaves no zombie.
 * (Only a child SIGKILL cannot reach, one that changed its user, is waited
 * for until it exits by itself.) */
int ps_loop_new(ps_loop_t** out);
int ps_loop_backend_fd(ps_loop_t* loop);
int ps_loop_run(ps_loop_t* loop, ps_event_t** events);
int ps_loop_timeout(ps_loop_t* loop);
int ps_loop_alive(ps_loop_t* loop);
/* 1 if a call since the last pass changed what libuv watches (a read
 * started, a write queued, a handle opened or closed): a pass is due. */
int ps_loop_dirty(ps_loop_t* loop);
int ps_loop_close(ps_loop_t* loop);
/* Runs one libuv iteration that may block: the loop's only poll when the
 * caller is an event loop built on this one (ps_poll_*).  timeout_ms is the
 * longest it waits for I/O: 0 does not wait (as ps_loop_run), -1 waits
 * until an fd is ready or a libuv timer of the loop is due.  It does not
 * wait at all when events are already recorded (a release from an earlier
 * pass), when libuv has callbacks pending (a completed write), or when
 * nothing keeps the loop alive.  Changes made since the last pass (reads
 * started, writes queued, polls started) are applied before it waits, so
 * no ps_loop_dirty check is needed.  Returns the number of events, as
 * ps_loop_run; the readiness of polls is apart (ps_loop_polls).  The
 * caller's thread blocks in epoll_wait meanwhile (CFFI releases the GIL
 * around it). */
int ps_loop_run_once(ps_loop_t* loop, int timeout_ms, ps_event_t** events);
/* The readiness the last pass recorded for polls: returns the count and
 * points *ready at them, valid until the next pass or ps_loop_close. */
int ps_loop_polls(ps_loop_t* loop, ps_poll_ready_t** ready);

/* Process-wide counters when loop is NULL, else this loop's. */
void ps_counters(ps_loop_t* loop, ps_counters_t* out);

/* ---- Streams ------------------------------------------------------------
 * A stream starts reading as soon as it is connected, into a buffer the
 * library owns.  Reading stops while the buffer holds at least the high-water
 * mark (or what ps_stream_want_read asked for, if more) and resumes once the
 * caller has taken it below the low-water mark. */

/* Connects to a numeric IPv4/IPv6 address.  fd is -1 for a new socket, or an
 * unconnected socket (for example, already bound) that the stream adopts.
 * PS_EV_CONNECT reports the outcome; on failure the caller closes the
 * stream.  *out is valid once this returns 0. */
int ps_tcp_connect(ps_loop_t* loop, int fd, const char* ip, int port,
                   unsigned int scope_id, void* data, ps_stream_t** out);
/* Connects to a Unix socket path (not the abstract namespace). */
int ps_pipe_connect(ps_loop_t* loop, const char* path, void* data,
                    ps_stream_t** out);
/* Adopts a connected socket, or with PS_KIND_PIPE one end of a pipe (from
 * pipe(2), or a FIFO); the stream owns fd from then on, and on failure fd
 * is closed here too: the caller never closes it after this call.
 * A pipe's write end (an O_WRONLY fd) never reads: it is open with reading
 * already ended, as at end of file, so ps_stream_read_status gives UV_EOF,
 * ps_stream_want_read returns 1 at once (no PS_EV_READ ever comes) and the
 * takes return UV_EOF.  A read end (O_RDONLY) reads as a socket does, up to
 * UV_EOF once every copy of the write end is closed; writes on it fail with
 * UV_EPIPE and ps_stream_shutdown with UV_ENOTCONN. */
int ps_stream_open(ps_loop_t* loop, int fd, int kind, void* data,
                   ps_stream_t** out);

int ps_stream_kind(ps_stream_t* s);
int ps_stream_fileno(ps_stream_t* s);
size_t ps_stream_buffered(ps_stream_t* s);
/* 0 while reading goes on, UV_EOF after end of stream, or the read error
 * that ended reading.  Buffered bytes are still there to take. */
int ps_stream_read_status(ps_stream_t* s);

/* Returns 1 if at least want bytes are buffered, or reading has ended (EOF
 * or error); otherwise arms the stream, so that PS_EV_READ is recorded once
 * that becomes true, and returns 0.  Asking for more than the high-water
 * mark raises the limit for this wait. */
int ps_stream_want_read(ps_stream_t* s, size_t want);

/* Takes up to max buffered bytes.  Returns the count (> 0) and sets *out to
 * them; the bytes stay valid until the next call on this loop.  Returns 0 if
 * nothing is buffered and reading goes on, UV_EOF after end of stream, or the
 * read error that ended reading. */
ssize_t ps_stream_take_ptr(ps_stream_t* s, size_t max, const char** out);
/* The same, copying into dst. */
ssize_t ps_stream_take_into(ps_stream_t* s, char* dst, size_t len);
/* Offset of the first sep at or after start in the buffered bytes, or -1. */
ssize_t ps_stream_find(ps_stream_t* s, const char* sep, size_t sep_len,
                       size_t start);

/* Writes what the kernel takes now: returns the count (0 if none), or an
 * error.  Never queues. */
ssize_t ps_stream_try_write(ps_stream_t* s, const char* buf, size_t len);
/* Queues buf after any queued writes.  buf must stay valid until this
 * write's PS_EV_WRITE, which is recorded even when the stream is closed
 * first (status UV_ECANCELED). */
int ps_stream_write(ps_stream_t* s, const char* buf, size_t len);
size_t ps_stream_write_queue_size(ps_stream_t* s);
/* 1 if the socket can take more data now, 0 if not, or an error. */
int ps_stream_writable(ps_stream_t* s);
/* Sends up to count bytes of the file in_fd from offset with sendfile(2):
 * what the socket or pipe takes now.  Returns the count sent (> 0), 0 at
 * the end of the file (or if count is 0), UV_EAGAIN if there is no room
 * (wait for writability, as ps_stream_writable tells), UV_EBUSY while
 * writes queued by ps_stream_write are pending (they go first), UV_EINVAL
 * for a negative fd or offset, or the error sendfile met (UV_ESPIPE or
 * UV_EINVAL when in_fd is not a regular file; UV_EPIPE or UV_ECONNRESET
 * when the peer went away).  Never queues; the file's position is
 * unchanged. */
ssize_t ps_stream_try_sendfile(ps_stream_t* s, int in_fd, long long offset,
                               size_t count);
/* Half-closes after the queued writes: PS_EV_SHUTDOWN reports it.
 * A pipe that is not a socket has no half-close, so on one the stream
 * closes instead: once the queued writes have finished (each reported by
 * its PS_EV_WRITE), the fd is closed, which gives the reader end of file
 * after all the data, and PS_EV_SHUTDOWN is recorded with status 0.  From
 * then on the stream is closing, as after ps_stream_close: ps_stream_write,
 * _try_write, _shutdown, _want_read and _fileno give UV_EBADF and
 * ps_stream_close UV_EALREADY.  It stays valid while the caller reads that
 * pass's events, and the next pass records its PS_EV_CLOSE and frees it,
 * so the caller does not close it itself.  Until the writes finish it is
 * open as before, and a ps_stream_close cancels the shutdown (UV_ECANCELED)
 * along with the writes.  While a connect is in progress: UV_ENOTCONN. */
int ps_stream_shutdown(ps_stream_t* s);
/* Closes the stream without waiting: what the kernel already took is still
 * delivered, then a FIN (set SO_LINGER to 0 first for a reset instead).
 * Queued writes end with UV_ECANCELED, then PS_EV_CLOSE is recorded and the
 * stream is freed.  Returns UV_EALREADY if it is already closing. */
int ps_stream_close(ps_stream_t* s);

int ps_stream_setsockopt(ps_stream_t* s, int level, int name, const void* value,
                         size_t len);
int ps_stream_getsockopt(ps_stream_t* s, int level, int name, void* value,
                         size_t* len);
int ps_stream_address(ps_stream_t* s, int peer, ps_address_t* out);

/* ---- Listeners ----------------------------------------------------------
 * Adopts a bound socket and listens on it.  Connections are accepted as
 * they arrive, up to a small queue, and start reading at once. */
int ps_listener_open(ps_loop_t* loop, int fd, int kind, int backlog, void* data,
                     ps_listener_t** out);
/* Returns 0 and a new stream whose data slot is data; UV_EAGAIN after arming
 * the listener, so that PS_EV_ACCEPT is recorded when a connection or an
 * error arrives; or the accept error libuv reported, once. */
int ps_listener_accept(ps_listener_t* l, void* data, ps_stream_t** out);
int ps_listener_fileno(ps_listener_t* l);
int ps_listener_address(ps_listener_t* l, ps_address_t* out);
/* Closes the listener and the connections it accepted but nobody took;
 * PS_EV_CLOSE follows. */
int ps_listener_close(ps_listener_t* l);

/* ---- Processes ----------------------------------------------------------
 * libuv reaps the children it spawned from its own SIGCHLD handler, and the
 * reaping records PS_EV_EXIT.  A SIGCHLD handler installed over libuv's (a
 * Python signal.signal(SIGCHLD, ...), or a second copy of libuv, such as
 * uvloop's, spawning a child) silences it; so while a loop has children not
 * yet reaped, its exit check also looks for their exits every 250 ms, with
 * waitpid(pid, WNOHANG) on each of them and on nothing else.  PS_EV_EXIT
 * then comes up to about 250 ms late, but comes, and only once, whichever
 * reaped.  Something else that reaps them (a waitpid(-1), SIGCHLD set to
 * SIG_IGN) takes their exit status with it: PS_EV_EXIT then has status
 * UV_ESRCH, and ps_process_exit_status gives exit status 0 and no signal,
 * as Python's subprocess does.
 *
 * SIGCHLD is shared with the rest of the process.  libuv installs its handler
 * with sigaction at a spawn when none of its loops watches SIGCHLD yet,
 * replacing whatever was there, and sets SIGCHLD to SIG_DFL when the last of
 * them stops watching (at the close of the last process handle).  pystream
 * undoes both for other users: a spawn that finds a handler function in place
 * that is not libuv's puts it back exactly (function, mask and flags), so that
 * user keeps receiving SIGCHLD for its own children, and the exits of
 * pystream's are then all found by the exit check, up to 250 ms late.  With
 * SIG_DFL (the usual case) or SIG_IGN in place, libuv's handler stays, exits
 * are recorded in the pass after their SIGCHLD, and SIGCHLD is SIG_DFL after
 * the last close.  A close (or a failed spawn) that makes libuv reset SIGCHLD
 * to SIG_DFL puts back the action that was in place before it, unless that was
 * libuv's own handler.  Each such restore is followed by one SIGCHLD sent to
 * the process, so that a SIGCHLD that came while libuv's handler or SIG_DFL
 * was in place is not lost to the other user, whose handler may then find no
 * child exited.  Spawns and closes in several threads take a process-wide lock
 * for this; a sigaction made elsewhere in the process at the same moment is
 * not serialised with them. */

/* Spawns file (searched in PATH when it has no slash, as execvp does, with
 * the child's environment) with argv (NULL-terminated, argv[0] included),
 * envp (NULL-terminated; NULL inherits this process's environment) and cwd
 * (NULL: this process's); they are read only during the call.  stdio_fds[i]
 * for i in 0..2 is the parent's fd that becomes the child's fd i (the
 * parent keeps its own), or -1 for /dev/null.  Nothing closes the parent's
 * other fds in the child: the caller makes its fds close-on-exec
 * (O_CLOEXEC), as any fd left inheritable reaches the child.  On success
 * *out is the process and PS_EV_EXIT is recorded (status 0, or UV_ESRCH
 * as said above) once it has exited and been reaped.  Errors: UV_ENOENT
 * for a missing program (or cwd), UV_EACCES for a non-executable one,
 * UV_EINVAL for a bad argument (file, argv, argv[0] or stdio_fds NULL, an
 * fd below -1), or what fork, dup2, chdir or exec failed with; nothing is
 * left running and no handle is returned or counted on failure (libuv's
 * record of the attempt is freed during the next pass). */
int ps_process_spawn(ps_loop_t* loop, const char* file, char** argv,
                     char** envp, const char* cwd, const int* stdio_fds,
                     void* data, ps_process_t** out);
int ps_process_pid(ps_process_t* p);
/* 1 once the child has exited and been reaped, with *exit_status (its exit
 * code, 0 if a signal ended it) and *term_signal (that signal, 0 if none);
 * else 0, writing nothing. */
int ps_process_exit_status(ps_process_t* p, long long* exit_status,
                           int* term_signal);
/* Sends signum; UV_ESRCH once the child has been reaped, by libuv, by the
 * exit check (even before the caller has read that pass's PS_EV_EXIT) or
 * by something else in this process: never signals a pid the kernel may
 * have reused.  Before the reaping an exited child is a zombie, which
 * takes signals and ignores them.  signum 0 only checks. */
int ps_process_kill(ps_process_t* p, int signum);
/* Releases the handle.  If the child has been reaped, the handle closes
 * now; if not, it is sent SIGKILL and the handle stays until libuv or the
 * exit check has reaped it, then closes: no zombie is ever left (a child
 * SIGKILL may not reach, one running as another user, keeps the handle
 * until it exits).
 * PS_EV_CLOSE is the handle's last event; PS_EV_EXIT may come before it,
 * often in the same pass, when the handle is already freed: after this
 * call the caller reads nothing more from the handle, as with the other
 * kinds.  UV_EALREADY if already closing. */
int ps_process_close(ps_process_t* p);

/* ---- Polls ---------------------------------------------------------------
 * Readiness of an fd the caller owns, in the loop's own epoll set: what an
 * event loop built on this loop (an asyncio selector) watches for its
 * sockets, pipes and wake-up fds.  Level-triggered like epoll: while the
 * fd is ready for an event the poll watches, every pass records one
 * ps_poll_ready_t for it (read with ps_loop_polls), apart from the event
 * queue, with the PS_POLL_* mask of what is ready (an error or hang-up on
 * the fd reports everything the poll watches, as asyncio's epoll selector
 * does, and the poll keeps watching).  The caller keeps owning the fd: the
 * library never reads, writes or closes it, and leaves its blocking mode
 * as it was.  The caller must not close the fd while a poll handle
 * watches it. */

/* Opens a poll handle watching fd for events (a PS_POLL_* mask, 0 for
 * nothing yet).  An fd a stream or listener of this loop owns is watched
 * through a duplicate the poll owns (libuv cannot watch one fd number
 * twice); its readiness is still reported as fd's.  Errors: UV_EBADF for
 * an fd that is not open, UV_EPERM for one epoll cannot watch (a regular
 * file, a directory), UV_EINVAL for a bad mask.  *out is valid once this
 * returns 0.  Not counted in handles (ps_counters' polls). */
int ps_poll_open(ps_loop_t* loop, int fd, int events, ps_poll_t** out);
/* Changes what the poll watches from the next pass on (0 pauses it).
 * UV_EBADF if the fd is no longer open. */
int ps_poll_modify(ps_poll_t* p, int events);
/* Stops watching and releases the handle: no readiness is recorded for it
 * after this call (that of the pass before may still be in the array the
 * caller reads), and no PS_EV_CLOSE follows; the memory is freed during a
 * later pass.  The fd stays open. */
int ps_poll_close(ps_poll_t* p);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif /* PYSTREAM_H */
