"""In-memory streams: a buffered pair (like a socket pair) and a lockstep
pair (``send_all`` returns only once the peer has received everything)."""

from __future__ import annotations

import asyncio
import errno
from typing import Awaitable, Callable, Optional, Union

from .._base._errors import ConflictDetector
from .._base._readers import BufferedReceiveMixin
from .._base._state import OPEN, StreamState, closed_during_call
from .._base._util import CHECKPOINT
from ..abc import HalfCloseableStream

__all__ = ["MemoryStream", "memory_stream_pair", "lockstep_stream_pair"]

SendHook = Callable[[bytes], Awaitable[None]]
ReceiveHook = Callable[[], Awaitable[None]]


def _peer_closed() -> OSError:
    return BrokenPipeError(errno.EPIPE, "the peer closed its end")


def _new_future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


def _settle(waiter: Optional[asyncio.Future[None]], exc: Optional[BaseException] = None) -> None:
    if waiter is not None and not waiter.done():
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)


class _Pipe:
    """One direction: bytes in flight from one stream to the other."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False  # the sender sent EOF or closed
        self.receiver_closed = False
        self.reader: Optional[asyncio.Future[None]] = None  # waits for data
        self.writer: Optional[asyncio.Future[None]] = None  # waits for room

    def wake_reader(self) -> None:
        _settle(self.reader)

    def wake_writer(self) -> None:
        _settle(self.writer)


class MemoryStream(BufferedReceiveMixin, HalfCloseableStream):
    """One end of ``memory_stream_pair()`` or ``lockstep_stream_pair()``.

    Hooks for tests, all optional and settable at any time:

    - ``send_hook(data)``: awaited inside ``send_all`` before the data is
      handed over: sleep in it for a delay, raise in it for a fault;
    - ``receive_hook()``: awaited inside each receive before it takes data;
    - ``max_receive_chunk``: deliver at most this many bytes per receive,
      so that one send arrives in pieces.
    """

    def __init__(self, outgoing: _Pipe, incoming: _Pipe, *, lockstep: bool) -> None:
        self._out = outgoing
        self._in = incoming
        self._lockstep = lockstep
        self._state = StreamState()  # the rules: pystream/_base/_state.py
        self._send_conflict = ConflictDetector("another task is already sending on this stream")
        self._receive_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )
        self._pushback = bytearray()
        self.send_hook: Optional[SendHook] = None
        self.receive_hook: Optional[ReceiveHook] = None
        self.max_receive_chunk: Optional[int] = None

    def __repr__(self) -> str:
        kind = "lockstep" if self._lockstep else "memory"
        return f"<pystream.testing.MemoryStream {kind}{' closed' if self._state.closed else ''}>"

    # -- sending ----------------------------------------------------------
    def _check_send(self) -> None:
        state = self._state
        if state.send is OPEN and self._out.receiver_closed:
            state.break_send(_peer_closed())
        state.check_send()

    async def send_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        if isinstance(data, str):
            raise TypeError("send_all needs bytes-like data, not str")
        payload = bytes(memoryview(data).cast("B")) if not isinstance(data, bytes) else data
        with self._send_conflict:
            self._check_send()
            await CHECKPOINT
            if self.send_hook is not None:
                await self.send_hook(payload)
            self._check_send()
            if not payload:
                return
            pipe = self._out
            pipe.data += payload
            pipe.wake_reader()
            if self._lockstep:
                while pipe.data:
                    await self._wait_writer()

    async def _wait_writer(self) -> None:
        pipe = self._out
        pipe.writer = _new_future()
        try:
            await pipe.writer
        finally:
            pipe.writer = None
        if self._state.closed:
            raise closed_during_call()
        if pipe.receiver_closed:
            raise self._state.send_failed(_peer_closed())

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_conflict:
            self._check_send()
            await CHECKPOINT
            # A lockstep send blocks until the peer waits in a receive.
            while self._lockstep and self._out.reader is None:
                await self._wait_writer()
            self._check_send()

    async def send_eof(self) -> None:
        with self._send_conflict:
            if self._state.closed:
                raise self._state.send_error()
            await CHECKPOINT
            if self._state.send_eof():  # the first (broken or closed: raises)
                self._out.eof = True
                self._out.wake_reader()

    # -- receiving --------------------------------------------------------
    def _check_receive_open(self) -> None:
        if self._state.receive is not OPEN:
            raise self._state.receive_error()

    async def _receive_raw(self, max_bytes: int) -> bytes:
        self._check_receive_open()
        if self.receive_hook is not None:
            await self.receive_hook()
            self._check_receive_open()
        pipe = self._in
        if pipe.data or pipe.eof:
            await CHECKPOINT
            self._check_receive_open()  # closed meanwhile: the data is gone
        while not (pipe.data or pipe.eof):
            pipe.reader = _new_future()
            pipe.wake_writer()  # a lockstep sender may wait for a reader
            try:
                await pipe.reader
            finally:
                pipe.reader = None
            self._check_receive_open()  # woken by data, then closed: gone
        if not pipe.data:
            return b""
        n = min(max_bytes, len(pipe.data))
        if self.max_receive_chunk is not None:
            n = min(n, self.max_receive_chunk)
        chunk = bytes(pipe.data[:n])
        del pipe.data[:n]
        if not pipe.data:
            pipe.wake_writer()
        return chunk

    # -- closing ----------------------------------------------------------
    def _send_guard(self) -> ConflictDetector:
        return self._send_conflict

    def _close_now(self) -> None:
        """Close at once, gracefully or not: what ``send_all`` put in the
        peer's buffer stays there for the peer to read, then EOF."""
        if not self._state.close():
            return
        closed = closed_during_call()
        self._out.eof = True
        self._out.wake_reader()
        _settle(self._out.writer, closed)
        self._in.receiver_closed = True
        self._in.data.clear()
        self._in.wake_writer()
        _settle(self._in.reader, closed)

    async def aclose(self) -> None:
        self._close_now()
        await CHECKPOINT


def memory_stream_pair() -> tuple[MemoryStream, MemoryStream]:
    """Two connected in-memory streams, buffered without limit: ``send_all``
    returns once the data is in the peer's buffer."""
    a_to_b, b_to_a = _Pipe(), _Pipe()
    return (
        MemoryStream(a_to_b, b_to_a, lockstep=False),
        MemoryStream(b_to_a, a_to_b, lockstep=False),
    )


def lockstep_stream_pair() -> tuple[MemoryStream, MemoryStream]:
    """Two connected in-memory streams without buffering: ``send_all``
    returns only once the peer has received all of the data."""
    a_to_b, b_to_a = _Pipe(), _Pipe()
    return (
        MemoryStream(a_to_b, b_to_a, lockstep=True),
        MemoryStream(b_to_a, a_to_b, lockstep=True),
    )
