"""``Handle``: Python's side of one C handle, and what its events resolve.

Each C handle's data slot is its ``Handle``'s CFFI handle; the bridge
(``_loop``) reads a pass's events and hands each to its handle.  A receive's
wait is resolved by the bridge itself (the hot path, inlined there); every
other event goes to its owner here: a finished write to the stream's
``WriteQueue``, a shutdown, connection, accepted connection or child's exit
to the slot of the one operation waiting for it, the close to whoever waits
for the close.  A ``Slot`` is "one task waits here for an event": the one
helper for storing a future where the event finds it, awaiting it, and
clearing it.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any, Callable, Optional

from .._base._state import loop_closed
from .._binding import ffi, lib
from ._waiter import Waiter

if TYPE_CHECKING:
    from ._loop import Bridge

__all__ = ["Handle", "Slot", "WriteQueue"]

_UV_ECANCELED = lib.UV_ECANCELED


class Slot:
    """Where one waiting task's future is kept for the event that resolves
    it (or for a close, which fails it)."""

    __slots__ = ("waiter",)

    def __init__(self) -> None:
        self.waiter: Optional[asyncio.Future[Any]] = None

    async def wait(self, waiter: asyncio.Future[Any]) -> Any:
        """Keep waiter here while awaiting it; its result."""
        self.waiter = waiter
        try:
            return await waiter
        finally:
            self.waiter = None

    def resolve(self, result: Any = None) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    def fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class WriteQueue:
    """The writes of one stream that libuv has queued (uvloop's write
    context is the model): the buffers it writes from, oldest first, kept
    alive and pinned here until each write's completion, and the first
    failure.  A stream makes its queue at its first queued write: most
    connections never queue one, and an empty deque costs more than half a
    KiB."""

    __slots__ = ("buffers", "status")

    def __init__(self) -> None:
        self.buffers: collections.deque[Any] = collections.deque()
        self.status = 0  # the first write error, or 0

    def add(self, buffer: Any) -> None:
        """buffer (from ``ffi.from_buffer``) is in a write libuv queued."""
        self.buffers.append(buffer)

    def completed(self, status: int) -> bool:
        """The oldest write is done (status 0 or an error): unpin its buffer
        now (PyPy would keep a bytearray unresizable until the next
        collection).  Whether the task waiting on the queue is to wake: it
        is drained, or a write failed."""
        ffi.release(self.buffers.popleft())
        if status < 0 and status != _UV_ECANCELED and not self.status:
            self.status = status
        return not self.buffers or status < 0

    def release_all(self) -> None:
        """libuv is done with every buffer (its handle is closed)."""
        self.buffers.clear()


class Handle:
    """Python's side of one C handle: what its events resolve."""

    __slots__ = (
        "bridge",
        "ptr",
        "cdata",
        "recv_waiter",
        "spare_waiter",
        "send",
        "op",
        "close_waiter",
        "writes",
        "__weakref__",
    )

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.ptr: Any = None  # the C handle; None once closed
        self.cdata = ffi.new_handle(self)
        # A receive's Waiter or Future, resolved by the bridge (inlined).
        self.recv_waiter: Any = None
        # The Waiter each receive re-arms, or None: receives make Futures.
        self.spare_waiter = Waiter(bridge.loop) if bridge.eager_wake else None
        # A sender waiting for its queued writes, or for room in the kernel.
        self.send = Slot()
        # A shutdown, connection, accept or child's exit waited for.
        self.op = Slot()
        # The close completion; shared by every closer (each shields it).
        self.close_waiter: Optional[asyncio.Future[Any]] = None
        self.writes: Optional[WriteQueue] = None

    def arm_recv_waiter(self) -> Any:
        """Set and return what a receive waits on: the handle's own Waiter,
        re-armed, or a new Future (see Bridge.eager_wake)."""
        waiter: Any = self.spare_waiter
        if waiter is None:
            waiter = self.bridge.new_future()
        else:
            waiter.rearm()
        self.recv_waiter = waiter
        return waiter

    def write_queue(self) -> WriteQueue:
        """The stream's write queue, made on first use."""
        queue = self.writes
        if queue is None:
            queue = self.writes = WriteQueue()
        return queue

    def writes_pending(self) -> bool:
        queue = self.writes
        return queue is not None and bool(queue.buffers)

    def write_error(self) -> int:
        """The first queued write's error, or 0."""
        queue = self.writes
        return 0 if queue is None else queue.status

    # -- events other than reads, each to its owner ----------------------
    def on_event(self, kind: int, status: int) -> None:
        """Every event but PS_EV_READ, which the bridge resolves inline."""
        _ON_EVENT[kind](self, status)

    def on_write(self, status: int) -> None:
        queue = self.writes
        assert queue is not None  # a write was queued
        if queue.completed(status):
            self.send.resolve()

    def on_op(self, status: int) -> None:
        """A shutdown, connection, accepted connection or exit: status."""
        self.op.resolve(status)

    def on_close(self, status: int) -> None:
        self.ptr = None
        if self.writes is not None:
            self.writes.release_all()
        self.bridge.live.discard(self)
        waiter = self.close_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- endings ----------------------------------------------------------
    def wake_all(self, exc: BaseException) -> None:
        """Fail every waiter but the close waiter with exc."""
        waiter = self.recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.send.fail(exc)
        self.op.fail(exc)

    def abandon(self) -> None:
        """The bridge is gone: the C handle no longer exists.  Closing is
        done, as far as anyone can tell; the rest fail."""
        self.ptr = None
        if self.writes is not None:
            self.writes.release_all()
        exc = loop_closed("stream or listener")
        try:
            self.wake_all(exc)
            waiter = self.close_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        except RuntimeError:  # their loop is closed
            pass


_ON_EVENT: dict[int, Callable[[Handle, int], None]] = {
    lib.PS_EV_WRITE: Handle.on_write,
    lib.PS_EV_SHUTDOWN: Handle.on_op,
    lib.PS_EV_CONNECT: Handle.on_op,
    lib.PS_EV_ACCEPT: Handle.on_op,
    lib.PS_EV_EXIT: Handle.on_op,
    lib.PS_EV_CLOSE: Handle.on_close,
}
