"""Runs a private libuv loop inside the running asyncio loop.

One ``Bridge`` per asyncio loop, made on first use.  The asyncio loop watches
libuv's backend fd; when it is readable, or when a call changed what libuv
watches, or when libuv's next timer is due, the bridge runs one non-blocking
libuv pass.  The C core records completions during the pass; the bridge reads
them afterwards and resolves the futures that tasks wait on, so no Python code
runs inside ``uv_run``.

Lifetimes: every C handle has a ``Handle`` here, whose CFFI handle is the C
handle's data slot.  The bridge keeps each ``Handle`` alive until the C close
completion (``PS_EV_CLOSE``), after which C never mentions it again.  Public
objects (streams, listeners) hold their ``Handle``, not the other way round,
so an unclosed object can still be garbage-collected and warn.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import platform
import weakref
from threading import get_ident
from typing import (
    Any,
    AsyncGenerator,
    Callable,
    Optional,
)

from .._base._checkpoint import LoopCheckpoint
from .._binding import ffi, lib, oserror
from ._handle import Handle
from ._waiter import Waiter

__all__ = ["Bridge", "get_bridge", "counters", "EAGER_WAKE"]

_EV_READ = lib.PS_EV_READ

# Whether receives wait on a Waiter (see Bridge.eager_wake);
# PYSTREAM_EAGER_WAKE=1 or 0 overrides the interpreter's default.
EAGER_WAKE = (
    os.environ.get(
        "PYSTREAM_EAGER_WAKE", "1" if platform.python_implementation() == "PyPy" else "0"
    )
    == "1"
)


class Bridge:
    """A libuv loop driven by one asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ptr: Any = None) -> None:
        """With ptr (a ps_loop_t), the bridge of pystream's own event loop
        (``_selector``): its selector runs the libuv iterations and hands
        their events to ``resolve`` and ``resume``; the bridge runs no pass of its own."""
        self.loop = loop
        # Read by the streams' hot paths, which inline check_loop's fast
        # test and poke: the thread the loop runs in, and whether a pass is
        # already scheduled.
        self.thread = get_ident()
        # The checkpoint of the streams of this loop (they know their loop:
        # no lookup of the running one, a system call before Python 3.12).
        self.checkpoint = LoopCheckpoint(loop)
        # loop.create_future(), without the Python frame of asyncio's own.
        if type(loop).create_future is asyncio.BaseEventLoop.create_future:
            self.new_future: Callable[[], asyncio.Future[Any]] = functools.partial(
                asyncio.Future, loop=loop
            )
        else:
            self.new_future = loop.create_future
        # What a receive waits on.  On PyPy its handle's Waiter, which
        # resumes its task inside the pass (measured: 12% less CPU per small
        # echoed request); on CPython a new Future, because the Waiter's
        # methods cost more Python calls there than the loop iteration they
        # save (3% more).  Handles made while this is set keep a Waiter.
        self.eager_wake = EAGER_WAKE
        # Where ps_stream_take_ptr puts its pointer, for every stream of
        # this loop: each read uses it at once, in the loop's thread.
        self.out = ffi.new("const char **")
        self.live: set[Handle] = set()
        self.closed = False
        self._events = ffi.new("ps_event_t **")
        self.passes = 0  # libuv passes run, for tests and benchmarks
        self._timer: Optional[asyncio.TimerHandle] = None
        self._shutdown_watch: Optional[AsyncGenerator[None, None]] = None
        # Only a nested bridge schedules passes: with pass_pending always
        # True, every poke and schedule_pass of its own loop's is a no-op
        # (that loop's next iteration applies the change).
        self.pass_pending = ptr is not None
        if ptr is not None:
            self.ptr = ptr
            self._fd = -1
            return
        out = ffi.new("ps_loop_t **")
        err = lib.ps_loop_new(out)
        if err < 0:
            raise oserror(err)
        self.ptr = out[0]
        self._fd = lib.ps_loop_backend_fd(self.ptr)
        loop.add_reader(self._fd, self.run_pass)
        self._shutdown_watch = _watch_loop_shutdown(weakref.ref(self))
        try:
            self._shutdown_watch.asend(None).send(None)
        except StopIteration:
            pass

    # -- passes ---------------------------------------------------------
    def schedule_pass(self) -> None:
        """Run a pass soon: a call changed what libuv watches."""
        if not self.pass_pending:
            self.pass_pending = True
            self.loop.call_soon(self._scheduled_pass)

    def poke(self) -> None:
        """Schedule a pass only if the last C calls made one necessary."""
        if not self.pass_pending and lib.ps_loop_dirty(self.ptr):
            self.pass_pending = True
            self.loop.call_soon(self._scheduled_pass)

    def _scheduled_pass(self) -> None:
        if self.pass_pending:
            self.run_pass()

    def run_pass(self) -> None:
        if self.closed:
            return
        self.pass_pending = False
        self.passes += 1
        n = lib.ps_loop_run(self.ptr, self._events)
        if n < 0:
            # Only out of memory, before the pass ran: nothing is lost.  The
            # loop reports it; the pass is tried again shortly.
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_later(0.01, self.run_pass)
            raise oserror(n)
        ready = self.resolve(n)
        timeout = lib.ps_loop_timeout(self.ptr)
        if timeout == 0:
            self.schedule_pass()
        elif timeout > 0:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_later(timeout / 1000, self.run_pass)
        if ready:
            self.resume(ready)

    def resolve(self, n: int) -> list[Waiter]:
        """Resolve what the n events of the last pass complete; return the
        Waiters whose tasks are to resume now (``resume``).  The selector
        of pystream's own loop (``_selector``) calls both for the events of
        the iteration it ran."""
        ready: list[Waiter] = []
        if n:
            events = self._events[0]
            from_handle = ffi.from_handle
            for i in range(n):
                event = events[i]
                handle = from_handle(event.data)
                if event.type == _EV_READ:  # the common event, inlined
                    waiter = handle.recv_waiter
                    if waiter is None:
                        continue
                    if type(waiter) is Waiter:
                        if waiter.settle():
                            ready.append(waiter)
                    elif not waiter.done():
                        waiter.set_result(None)
                    continue
                try:
                    handle.on_event(event.type, event.status)
                except Exception as exc:  # pragma: no cover - a bug
                    self.loop.call_exception_handler(
                        {"message": "pystream event failed", "exception": exc}
                    )
        return ready

    def resume(self, ready: list[Waiter]) -> None:
        """Run the next step of each task waiting on a waiter in ready, now
        (unless a task is running: then through call_soon, as a Future)."""
        if asyncio.current_task(self.loop) is not None:
            for waiter in ready:
                waiter.schedule_callbacks()
            return
        for i, waiter in enumerate(ready):
            try:
                waiter.resume()
            except BaseException:  # KeyboardInterrupt, SystemExit
                # Leave nobody behind: the rest resume in later callbacks.
                for later in ready[i + 1 :]:
                    later.schedule_callbacks()
                raise

    # -- handles --------------------------------------------------------
    def adopt(self, handle: Handle, ptr: Any) -> None:
        """The C side now holds handle.cdata: keep handle alive until
        its close completion."""
        handle.ptr = ptr
        self.live.add(handle)

    def check_loop(self) -> None:
        """Raise RuntimeError unless called from this bridge's loop.

        The fast test: this loop is running, in this thread (no other loop
        can run in a thread while one does).  It avoids
        ``asyncio.get_running_loop()``, which costs a getpid() system call
        per use before Python 3.12.  The streams' hot paths test, before
        calling this, for this thread and a task of this loop running
        (``task_of``: a lookup in C, where ``is_running`` is a Python
        call); a call outside any task comes here.
        """
        if get_ident() == self.thread and self.loop.is_running():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self.loop:
            raise RuntimeError(
                "this pystream object belongs to another event loop or "
                "thread; use it only from the loop that created it"
            )
        self.thread = get_ident()  # the loop now runs in this thread

    # -- teardown -------------------------------------------------------
    def close(self) -> None:
        """Close every handle and free the libuv loop.  Idempotent."""
        if self.closed:
            return
        self.closed = True
        _bridges.pop(self.loop, None)
        if self._timer is not None:
            self._timer.cancel()
        if self._fd >= 0 and not self.loop.is_closed():
            try:
                self.loop.remove_reader(self._fd)
            except (RuntimeError, ValueError, OSError):
                pass
        # Free the C side first: buffers of queued writes stay pinned until
        # libuv has cancelled those writes.
        err = lib.ps_loop_close(self.ptr)
        if err < 0:  # pragma: no cover - a handle libuv still uses
            raise oserror(err)
        self.ptr = None
        for handle in list(self.live):
            handle.abandon()
        self.live.clear()
        # Finish the shutdown watch, unless it is what is closing us.
        watch, self._shutdown_watch = self._shutdown_watch, None
        if watch is not None:
            try:
                watch.aclose().send(None)
            except StopIteration:
                pass


async def _watch_loop_shutdown(
    bridge_ref: weakref.ReferenceType[Bridge],
) -> AsyncGenerator[None, None]:
    """An async generator the loop knows about: ``loop.shutdown_asyncgens()``
    (which ``asyncio.run`` calls before closing the loop) closes it, and so
    tears the bridge down while the loop still runs."""
    try:
        yield
    finally:
        bridge = bridge_ref()
        if bridge is not None and not bridge.closed:
            bridge._shutdown_watch = None
            bridge.close()


_bridges: dict[asyncio.AbstractEventLoop, Bridge] = {}


def get_bridge() -> Bridge:
    """The bridge of the running loop, made on first use."""
    loop = asyncio.get_running_loop()
    bridge = _bridges.get(loop)
    if bridge is None:
        # A loop closed without shutting down its async generators leaves
        # its bridge behind: free those now.
        for old in [b for b in _bridges.values() if b.loop.is_closed()]:
            old.close()
        bridge = _bridges[loop] = Bridge(loop)
    return bridge


@atexit.register
def _close_all() -> None:
    for bridge in list(_bridges.values()):
        if bridge.loop.is_closed() or not bridge.loop.is_running():
            bridge.close()


def counters(loop: Optional[asyncio.AbstractEventLoop] = None) -> dict[str, int]:
    """The C core's debug counters: process-wide, or for one asyncio loop's
    bridge (all zero if it has none)."""
    out = ffi.new("ps_counters_t *")
    if loop is None:
        lib.ps_counters(ffi.NULL, out)
    else:
        bridge = _bridges.get(loop)
        if bridge is not None:
            lib.ps_counters(bridge.ptr, out)
    return {
        name: getattr(out, name)
        for name in (
            "loops",
            "handles",
            "streams",
            "listeners",
            "writes_pending",
            "bytes_buffered",
            "processes",
            "polls",
        )
    }
