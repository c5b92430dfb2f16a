"""Object channels: ``open_memory_channel(max_buffer_size)``.

Values go from ``MemorySendChannel``s to ``MemoryReceiveChannel``s through a
buffer of at most ``max_buffer_size`` values (0: every send waits for a
receiver; ``math.inf``: no limit).  Each end can be cloned; a side is closed
when all its clones are.  Receivers get ``EndOfChannel`` once every sender
closed and the buffer is empty; senders get ``BrokenResourceError`` once
every receiver closed.  Closing an end wakes the calls blocked on that same
end with ``ClosedResourceError``, as in Trio (a blocked send's value is then
withdrawn).

Cancellation: a cancelled ``receive`` loses no value, and a ``send``
cancelled at the very moment a receiver takes its value returns normally
(the value was delivered; raising would make the caller send it twice).
Its cancellation is not lost: it is requested again and reaches the task at
its next await.
"""

from __future__ import annotations

import asyncio
import collections
import math
from typing import Any, Generic, TypeVar, Union

from .._base._errors import BrokenResourceError, ClosedResourceError, EndOfChannel
from .._base._util import CHECKPOINT
from ..abc import ReceiveChannel, SendChannel

__all__ = ["open_memory_channel", "MemorySendChannel", "MemoryReceiveChannel", "WouldBlock"]

T = TypeVar("T")


class WouldBlock(Exception):
    """A ``send_nowait`` or ``receive_nowait`` call could not finish
    without waiting."""


class _State(Generic[T]):
    def __init__(self, max_buffer_size: Union[int, float]) -> None:
        self.max_buffer_size = max_buffer_size
        self.buffer: collections.deque[T] = collections.deque()
        self.senders = 0  # open send handles
        self.receivers = 0  # open receive handles
        # Waiting tasks, first come first served.
        self.send_waiters: collections.OrderedDict[asyncio.Future[None], T] = (
            collections.OrderedDict()
        )
        self.receive_waiters: collections.OrderedDict[asyncio.Future[T], None] = (
            collections.OrderedDict()
        )


class MemorySendChannel(SendChannel[T]):
    """The sending end of ``open_memory_channel``.

    ``clone()`` makes more ends; the receivers see ``EndOfChannel`` once
    every one is closed.  Any number of tasks may send at once: blocked
    senders are served first come, first served.  Closing an end wakes a
    ``send`` blocked on that same end in another task with
    ``ClosedResourceError``, its value not sent (unless a receiver had
    already taken it: then the send returns normally).
    """

    def __init__(self, state: _State[T]) -> None:
        self._state = state
        self._closed = False
        # The sends blocked on this end, which close() wakes.
        self._waiters: set[asyncio.Future[None]] = set()
        state.senders += 1

    def __repr__(self) -> str:
        return f"<pystream.MemorySendChannel{' closed' if self._closed else ''}>"

    def send_nowait(self, value: T) -> None:
        """Send ``value`` to a waiting receiver or into the buffer, without
        waiting.

        Raises:
            pystream.WouldBlock: no receiver waits and the buffer is full.
            pystream.ClosedResourceError: this end was closed.
            pystream.BrokenResourceError: every receiving end was closed.
        """
        state = self._state
        if self._closed:
            raise ClosedResourceError("this send channel was closed")
        if state.receivers == 0:
            raise BrokenResourceError("every receive channel was closed")
        while state.receive_waiters:
            waiter, _ = state.receive_waiters.popitem(last=False)
            if not waiter.done():
                waiter.set_result(value)
                return
        if len(state.buffer) < state.max_buffer_size:
            state.buffer.append(value)
            return
        raise WouldBlock

    async def send(self, value: T) -> None:
        """Send ``value``, waiting while the buffer is full and no receiver
        waits.  A checkpoint.

        Raises:
            pystream.ClosedResourceError: this end was closed, before or
                during the call (the value was then not sent).
            pystream.BrokenResourceError: every receiving end was closed,
                before or during the call.

        Cancellation:
            If a receiver took the value at that very moment, ``send``
            returns normally (raising would make the caller send it twice)
            and the cancellation reaches the task at its next await.
            Otherwise the value was not sent.
        """
        if self._closed:
            raise ClosedResourceError("this send channel was closed")
        await CHECKPOINT
        try:
            self.send_nowait(value)
            return
        except WouldBlock:
            pass
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._state.send_waiters[waiter] = value
        self._waiters.add(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # A receiver took the value as we were cancelled: it was
                # delivered, so return, and hand the cancellation on.
                _recancel_current_task()
                return
            raise
        finally:
            self._state.send_waiters.pop(waiter, None)
            self._waiters.discard(waiter)

    def clone(self) -> MemorySendChannel[T]:
        """Another sending end of the same channel, closed independently.
        ``ClosedResourceError`` if this end was closed."""
        if self._closed:
            raise ClosedResourceError("this send channel was closed")
        return MemorySendChannel(self._state)

    def close(self) -> None:
        """Close this end, at once.  Idempotent.  Sends blocked on this end
        wake with ``ClosedResourceError``, their values withdrawn.  When it
        is the last sending end, receivers get ``EndOfChannel`` once the
        buffer is empty."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        _wake_closed(self._waiters, state.send_waiters, "this send channel was closed")
        state.senders -= 1
        if state.senders == 0:
            for waiter in state.receive_waiters:
                if not waiter.done():
                    waiter.set_exception(EndOfChannel())
            state.receive_waiters.clear()

    async def aclose(self) -> None:
        """``close()``, then a checkpoint; cancelled, the end is closed all
        the same."""
        self.close()
        await CHECKPOINT


def _wake_closed(
    waiters: set[asyncio.Future[Any]],
    queue: collections.OrderedDict[Any, Any],
    message: str,
) -> None:
    """Wake the calls blocked on an end being closed with
    ClosedResourceError, and take them off the channel's queue.  A waiter
    already done keeps its outcome: a send whose value a receiver took
    returns normally, a receive handed a value returns it."""
    for waiter in waiters:
        queue.pop(waiter, None)
        if not waiter.done():
            waiter.set_exception(ClosedResourceError(message))
    waiters.clear()


def _recancel_current_task() -> None:
    """Re-request a cancellation the current task caught and will not
    raise: it reaches the task at its next await.  On 3.11+ the caught one
    is withdrawn first (``uncancel``), so that the task's count of pending
    cancellations, which ``asyncio.timeout`` reads, stays what it was.

    A limit on 3.11 and 3.12: if the send was the last await inside an
    ``asyncio.timeout`` block that expired at that moment, the block ends
    normally and the re-requested cancellation surfaces at the task's next
    await after it (3.13's ``uncancel`` clears it with the count)."""
    task = asyncio.current_task()
    assert task is not None
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()
    task.cancel()


class MemoryReceiveChannel(ReceiveChannel[T]):
    """The receiving end of ``open_memory_channel``; ``async for value in
    channel`` receives until ``EndOfChannel``.

    ``clone()`` makes more ends, each value going to one of them; senders
    get ``BrokenResourceError`` once every one is closed.  Any number of
    tasks may receive at once, served first come, first served.  Closing an
    end wakes a ``receive`` blocked on that same end in another task with
    ``ClosedResourceError``.
    """

    def __init__(self, state: _State[T]) -> None:
        self._state = state
        self._closed = False
        # The receives blocked on this end, which close() wakes.
        self._waiters: set[asyncio.Future[T]] = set()
        state.receivers += 1

    def __repr__(self) -> str:
        return f"<pystream.MemoryReceiveChannel{' closed' if self._closed else ''}>"

    def receive_nowait(self) -> T:
        """Return a buffered value, or one a blocked sender holds, without
        waiting.

        Raises:
            pystream.WouldBlock: there is no value yet.
            pystream.EndOfChannel: there is none, and every sending end was
                closed.
            pystream.ClosedResourceError: this end was closed.
        """
        state = self._state
        if self._closed:
            raise ClosedResourceError("this receive channel was closed")
        if state.buffer:
            value = state.buffer.popleft()
            self._refill()
            return value
        while state.send_waiters:
            waiter, value = state.send_waiters.popitem(last=False)
            if not waiter.done():
                waiter.set_result(None)
                return value
        if state.senders == 0:
            raise EndOfChannel
        raise WouldBlock

    def _refill(self) -> None:
        """Room in the buffer: take the value of the longest-waiting sender."""
        state = self._state
        while state.send_waiters and len(state.buffer) < state.max_buffer_size:
            waiter, value = state.send_waiters.popitem(last=False)
            if not waiter.done():
                state.buffer.append(value)
                waiter.set_result(None)

    async def receive(self) -> T:
        """Wait for the next value and return it.  A checkpoint.

        Raises:
            pystream.EndOfChannel: every sending end was closed and the
                buffer is empty.
            pystream.ClosedResourceError: this end was closed, before or
                during the call.

        Cancellation:
            No value is lost: one handed to the call as it was cancelled
            goes back to the front of the buffer.
        """
        if self._closed:
            raise ClosedResourceError("this receive channel was closed")
        await CHECKPOINT
        try:
            return self.receive_nowait()
        except WouldBlock:
            pass
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._state.receive_waiters[waiter] = None
        self._waiters.add(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # A sender handed us a value as we were cancelled: keep it.
                self._state.buffer.appendleft(waiter.result())
            raise
        finally:
            self._state.receive_waiters.pop(waiter, None)
            self._waiters.discard(waiter)

    def clone(self) -> MemoryReceiveChannel[T]:
        """Another receiving end of the same channel, closed independently.
        ``ClosedResourceError`` if this end was closed."""
        if self._closed:
            raise ClosedResourceError("this receive channel was closed")
        return MemoryReceiveChannel(self._state)

    def close(self) -> None:
        """Close this end, at once.  Idempotent.  Receives blocked on this
        end wake with ``ClosedResourceError``.  When it is the last
        receiving end, the buffered values are dropped and senders get
        ``BrokenResourceError``, blocked ones included."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        _wake_closed(self._waiters, state.receive_waiters, "this receive channel was closed")
        state.receivers -= 1
        if state.receivers == 0:
            for waiter in state.send_waiters:
                if not waiter.done():
                    waiter.set_exception(BrokenResourceError("every receive channel was closed"))
            state.send_waiters.clear()
            state.buffer.clear()

    async def aclose(self) -> None:
        """``close()``, then a checkpoint; cancelled, the end is closed all
        the same."""
        self.close()
        await CHECKPOINT


def open_memory_channel(
    max_buffer_size: Union[int, float],
) -> tuple[MemorySendChannel[Any], MemoryReceiveChannel[Any]]:
    """Make an object channel: ``(send_channel, receive_channel)`` sharing
    a buffer of up to ``max_buffer_size`` values (an int >= 0: 0 makes
    every send wait for a receiver; or ``math.inf``: no limit).

    Raises:
        TypeError: ``max_buffer_size`` is neither an int nor ``math.inf``.
        ValueError: ``max_buffer_size`` is negative (or a bool).
    """
    if max_buffer_size != math.inf and not isinstance(max_buffer_size, int):
        raise TypeError("max_buffer_size must be an int or math.inf")
    if isinstance(max_buffer_size, bool) or max_buffer_size < 0:
        raise ValueError("max_buffer_size must be an int >= 0 or math.inf")
    state: _State[Any] = _State(max_buffer_size)
    return MemorySendChannel(state), MemoryReceiveChannel(state)
