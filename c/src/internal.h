/* Private structures and helpers of pystream's C core. */
#ifndef PYSTREAM_INTERNAL_H
#define PYSTREAM_INTERNAL_H

#include <signal.h>
#include <uv.h>

#include "fault.h"
#include "pystream.h"

/* Every handle starts with its libuv handle, so uv_handle_t.data can be
 * followed back to the owner and the tag tells what the owner is. */
enum {
  PS__TAG_STREAM = 0x5053,
  PS__TAG_LISTENER = 0x504c,
  PS__TAG_PROCESS = 0x5050,
  PS__TAG_POLL = 0x504f
};

#define PS__READ_CHUNK (64 * 1024)
#define PS__MIN_READ_ROOM (16 * 1024)
/* A stream with nothing buffered reads into its loop's spare buffer; a
 * read of at most this many bytes is then copied into a buffer of its own
 * (so an idle connection holds a small buffer, not 64 KiB), a bigger one
 * takes the spare over. */
#define PS__SMALL_READ (4 * 1024)
#define PS__SMALL_BUFFER_MIN 256
#define PS__DEFAULT_HIGH_WATER (256 * 1024)
#define PS__DEFAULT_LOW_WATER (64 * 1024)
#define PS__ACCEPT_QUEUE_MAX 64
/* How often the exit check looks for children libuv has not reaped: the
 * longest an exit goes unnoticed when libuv's SIGCHLD handler was
 * replaced, and the passes that cost while children run. */
#define PS__REAP_INTERVAL_MS 250

/* Stream flags. */
enum {
  PS__READING = 1 << 0,   /* uv_read_start is in effect */
  PS__WANT_READ = 1 << 1, /* the owner waits for PS_EV_READ */
  PS__CLOSING = 1 << 2,
  PS__CONNECTING = 1 << 3,
  PS__IN_SPARE = 1 << 4, /* libuv reads into the loop's spare buffer */
  /* Closed by a pipe's shutdown, not by its owner: freed a pass later. */
  PS__RELEASE_LATER = 1 << 5
};

/* Process flags. */
enum {
  PS__SPAWNED = 1 << 0, /* uv_spawn succeeded: counted and the owner's */
  /* The child was reaped (by libuv, by the exit check, or by something else
   * in this process): its pid may be reused, so it is never signalled or
   * waited for again. */
  PS__EXITED = 1 << 1,
  /* Closing: uv_close is called at once if the child was reaped (or never
   * ran), else when it is reaped. */
  PS__PROCESS_CLOSING = 1 << 2,
  /* libuv's close callback ran.  The exit check closes libuv's handle as
   * soon as it reaps the child, so the owner may still hold the process. */
  PS__UV_CLOSED = 1 << 3
};

/* The libuv handle that starts every pystream handle. */
typedef union {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
  uv_process_t process;
  uv_poll_t poll;
} ps__uv_t;

/* The common start of ps_stream_t, ps_listener_t and ps_process_t. */
typedef struct {
  ps__uv_t u;
  int tag;
} ps__base_t;

struct ps_loop_s {
  uv_loop_t uv;
  ps_event_t* events;
  size_t n_events;
  size_t events_cap;
  ps_poll_ready_t* polls; /* readiness of ps_poll_t handles, this pass */
  size_t n_polls;
  size_t polls_cap;     /* at least the live polls, from each pass's start */
  unsigned long passes; /* passes begun: which one a poll's record is of */
  int dirty;            /* a change libuv applies only during the next pass */
  int closing;          /* ps_loop_close runs: record no more events */
  int event_failure;    /* an event could not be recorded (out of memory) */
  char* spare;          /* PS__READ_CHUNK bytes, or NULL: see PS__SMALL_READ */
  /* Streams libuv has closed that the next pass frees (PS__RELEASE_LATER),
   * linked by next_release. */
  ps_stream_t* release_queue;
  /* Every spawned process not yet freed, linked by prev/next: the exit
   * check looks among them, and ps_loop_close finds them all, including
   * those whose libuv handle is already closed (uv_walk cannot). */
  ps_process_t* processes;
  long unreaped; /* processes in that list whose child is not reaped */
  /* The exit check: runs while unreaped > 0, unref'd. */
  uv_timer_t reap_timer;
  /* Bounds ps_loop_run_once's wait: active only during that call. */
  uv_timer_t wait_timer;
  /* Processes the owner closed after libuv's handle was gone: the next pass
   * records their PS_EV_CLOSE and frees them (linked by next_release). */
  ps_process_t* process_release;
  ps_counters_t counters;
};

struct ps_stream_s {
  ps__uv_t u;
  int tag;
  int kind;
  unsigned int flags;
  ps_loop_t* loop;
  void* data;
  /* Received bytes live in rbuf[rstart, rend). */
  char* rbuf;
  size_t rcap;
  size_t rstart;
  size_t rend;
  size_t want;     /* bytes the owner waits for, while PS__WANT_READ */
  int read_status; /* 0 while reading goes on, else UV_EOF or an error */
  size_t low_water;
  size_t high_water;
  long writes_pending;
  /* A connect ends before a shutdown can start (ps_stream_shutdown refuses
   * one while connecting), so the two requests share their memory: most
   * streams are accepted and never use either. */
  union {
    uv_connect_t connect;
    uv_shutdown_t shutdown;
  } req;
  /* Accepted but not yet taken: a link in the listener's queue. */
  ps_listener_t* listener;
  ps_stream_t* next_accepted;
  ps_stream_t* next_release; /* in the loop's release_queue */
};

struct ps_listener_s {
  ps__uv_t u;
  int tag;
  int kind;
  int closing;
  int armed;         /* the owner waits for PS_EV_ACCEPT */
  int libuv_pending; /* libuv holds a connection we did not accept yet */
  int error;         /* an accept error not yet reported */
  ps_loop_t* loop;
  void* data;
  ps_stream_t* queue_head;
  ps_stream_t* queue_tail;
  int queued;
};

struct ps_process_s {
  ps__uv_t u;
  int tag;
  unsigned int flags;
  ps_loop_t* loop;
  void* data;
  int pid;
  long long exit_status; /* valid once PS__EXITED */
  int term_signal;       /* valid once PS__EXITED */
  ps_process_t* prev;    /* in the loop's processes, once PS__SPAWNED */
  ps_process_t* next;
  ps_process_t* next_release; /* in the loop's process_release */
};

struct ps_poll_s {
  ps__uv_t u;
  int tag;
  int fd;       /* the owner's, or the duplicate the poll owns */
  int owner_fd; /* the owner's: what readiness is reported for */
  int dup;      /* fd is a duplicate: an fd a stream or listener owns */
  int events;   /* the PS_POLL_* mask the owner asked for */
  int closing;  /* ps_poll_close was called */
  ps_loop_t* loop;
  /* The pass (ps_loop_t's passes) whose polls[slot] is this poll's
   * record, for a second report in the same pass to join. */
  unsigned long pass;
  size_t slot;
};

void ps__emit(ps_loop_t* loop, void* data, int type, int status);
void ps__emit_poll(ps_poll_t* p, int events);

/* Counter updates, applied to the loop and to the process-wide totals.
 * tag is the PS__TAG_* of the handles counted. */
void ps__count_handles(ps_loop_t* loop, int tag, long delta);
void ps__count_writes(ps_loop_t* loop, long delta);
void ps__count_polls(ps_loop_t* loop, long delta);
void ps__count_buffered(ps_loop_t* loop, long delta);

/* Streams. */
int ps__stream_new(ps_loop_t* loop, int kind, ps_stream_t** out);
int ps__stream_start_reading(ps_stream_t* s);
void ps__stream_close_cb(uv_handle_t* handle);
void ps__stream_begin_close(ps_stream_t* s);
void ps__stream_release_queued(ps_loop_t* loop);
void ps__listener_close_cb(uv_handle_t* handle);
void ps__listener_begin_close(ps_listener_t* l);
void ps__process_begin_close(ps_process_t* p);
void ps__process_release_queued(ps_loop_t* loop);
void ps__process_close_all(ps_loop_t* loop);
void ps__poll_begin_close(ps_poll_t* p);

/* SIGCHLD kept for its other users (sigchld.c).  Every uv_spawn, and every
 * uv_close of a process handle, runs between ps__sigchld_enter, which takes
 * a process-wide lock and reads the action in place into *before, and
 * ps__sigchld_leave, which puts that action back if libuv replaced it with
 * its own handler (spawned: uv_spawn succeeded) or reset it to SIG_DFL, as
 * the rules at the top of sigchld.c say, and releases the lock.
 * ps__sigchld_spawned comes right after uv_spawn, before any uv_close: it
 * learns libuv's handler from what the spawn installed. */
void ps__sigchld_enter(struct sigaction* before);
void ps__sigchld_spawned(const struct sigaction* before);
void ps__sigchld_leave(const struct sigaction* before, int spawned);
int ps__address(const struct sockaddr_storage* ss, int len, ps_address_t* out);

#endif /* PYSTREAM_INTERNAL_H */
