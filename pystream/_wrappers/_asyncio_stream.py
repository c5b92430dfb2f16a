"""AsyncioStream: the Stream API over an asyncio StreamReader/StreamWriter
pair, in pure Python, so that code written for pystream runs on any asyncio
transport (Windows' proactor loop, other libraries' connections)."""

from __future__ import annotations

import asyncio
from typing import Optional, Union

from .._base._errors import ConflictDetector
from .._base._readers import BufferedReceiveMixin
from .._base._state import EOF_SENT, OPEN, StreamState, closed_during_call
from .._base._util import CHECKPOINT
from ..abc import HalfCloseableStream

__all__ = ["AsyncioStream"]

# aclose waits at most this long for the transport to finish closing.
_CLOSE_TIMEOUT = 5.0


class AsyncioStream(BufferedReceiveMixin, HalfCloseableStream):
    """A pystream ``Stream`` over ``(reader, writer)`` from
    ``asyncio.open_connection`` or ``asyncio.start_server``.

    ``send_all`` writes and then drains, so it waits while the transport
    holds more than its high-water mark: the backpressure asyncio has.  An
    ``OSError`` from the transport becomes ``BrokenResourceError`` (with it
    as ``__cause__``), and a transport closed under the stream breaks
    sending.  A cancelled ``send_all`` sent all of its data or none, a
    cancelled receive loses nothing, a cancelled ``aclose`` still closes.

    Attributes:
        reader: the ``asyncio.StreamReader`` receiving reads from.
        writer: the ``asyncio.StreamWriter`` sending writes to.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._state = StreamState()  # the rules: pystream/_base/_state.py
        self._send_conflict = ConflictDetector("another task is already sending on this stream")
        self._receive_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )
        self._pushback = bytearray()
        self._closing: Optional[asyncio.Future[None]] = None  # set by aclose
        _retrieve_close_error(writer)

    def __repr__(self) -> str:
        return f"<pystream.AsyncioStream {self.writer.transport!r}>"

    # -- sending ----------------------------------------------------------
    def _check_send(self) -> None:
        state = self._state
        if state.send is OPEN and self.writer.transport.is_closing():
            state.break_send(ConnectionResetError("the transport is closed"))
        state.check_send()

    async def _drain(self) -> None:
        """Wait until the transport is below its high-water mark, or until
        aclose (asyncio's drain alone would wait on)."""
        draining = asyncio.ensure_future(self.writer.drain())
        closing = self._closing = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait([draining, closing], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            draining.cancel()
            raise
        finally:
            self._closing = None
        if not draining.done():
            draining.cancel()
            raise closed_during_call()
        try:
            draining.result()
        except OSError as exc:
            raise self._state.send_failed(exc) from exc
        if self._state.closed:
            raise closed_during_call()

    async def send_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Write ``data`` to the transport (a copy of it unless it is
        ``bytes``), then wait until the transport's buffer is below its
        high-water mark (``drain``).  ``write`` is another name for it.  A
        checkpoint.

        Raises:
            pystream.BusyResourceError: another task is already in
                ``send_all``, ``wait_send_all_might_not_block`` or
                ``send_eof`` on this stream.
            pystream.ClosedResourceError: the stream was closed (or its
                sending side by ``send_eof``), before or during the call.
            pystream.BrokenResourceError: the transport is closing or
                failed; ``__cause__`` says how.
            TypeError: ``data`` is not bytes-like.

        Cancellation:
            All of the data was sent or none of it, and the stream stays
            usable: once written, all of it is the transport's to send.
        """
        if isinstance(data, str):
            raise TypeError("send_all needs bytes-like data, not str")
        payload = bytes(memoryview(data).cast("B")) if not isinstance(data, bytes) else data
        with self._send_conflict:
            self._check_send()
            await CHECKPOINT
            self._check_send()
            if payload:
                self.writer.write(payload)
                await self._drain()

    write = send_all

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the transport's buffer is below its high-water mark
        (``drain``).  A checkpoint.

        Raises:
            pystream.BusyResourceError: another task is sending on this
                stream.
            pystream.ClosedResourceError: the stream was closed (or its
                sending side by ``send_eof``).
            pystream.BrokenResourceError: the transport is closing or
                failed.

        Cancellation:
            Nothing changes.
        """
        with self._send_conflict:
            self._check_send()
            await CHECKPOINT
            await self._drain()

    async def send_eof(self) -> None:
        """Half-close with the transport's ``write_eof``: the peer reads
        ``b""`` after the data written before; receiving goes on.
        Idempotent; then ``send_all`` raises ``ClosedResourceError``.  A
        checkpoint.

        Raises:
            NotImplementedError: the transport cannot write EOF (SSL
                transports).
            pystream.BusyResourceError: another task is sending on this
                stream.
            pystream.ClosedResourceError: the stream was closed.
            pystream.BrokenResourceError: the transport is closing, or
                ``write_eof`` failed.

        Cancellation:
            Nothing changed: it sends the EOF after its one checkpoint,
            without waiting.
        """
        with self._send_conflict:
            if self._state.closed:
                raise self._state.send_error()
            await CHECKPOINT
            if self._state.send is EOF_SENT:
                return
            if not self.writer.can_write_eof():
                # SSL transports, for one: the peer would never see EOF.
                raise NotImplementedError(f"{type(self.writer.transport).__name__} cannot send EOF")
            self._check_send()
            self._state.send_eof()
            try:
                self.writer.write_eof()
            except OSError as exc:  # e.g. ENOTCONN after a reset
                raise self._state.send_failed(exc) from exc

    # -- receiving --------------------------------------------------------
    def _check_receive_open(self) -> None:
        if self._state.receive is not OPEN:
            raise self._state.receive_error()

    async def _receive_raw(self, max_bytes: int) -> bytes:
        self._check_receive_open()
        # StreamReader.read returns at once when it has data: yield first.
        await CHECKPOINT
        self._check_receive_open()
        try:
            data = await self.reader.read(max_bytes)
        except OSError as exc:
            raise self._state.receive_failed(exc) from exc
        self._check_receive_open()
        return data

    # -- closing ----------------------------------------------------------
    def _wake_waiters(self) -> None:
        # StreamReader has no "closed" notion: end its wait with an error.
        self.reader.set_exception(closed_during_call())
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)

    async def aclose(self) -> None:
        """Close gracefully without waiting: asyncio's transport sends what it
        holds, then closes; if that takes more than 5 s (a peer that does not
        read), it is aborted.  Calls blocked in other tasks wake at once with
        ``ClosedResourceError``.  Idempotent.

        If data received is still unread, the transport is aborted at once
        instead, as a kernel resets a socket closed with unread data: what
        it held is then lost (the peer's loss).

        Cancellation:
            The stream is closed all the same: closing happens before its
            one checkpoint.
        """
        self._close_now()
        await CHECKPOINT

    def _send_guard(self) -> ConflictDetector:
        return self._send_conflict

    def _close_now(self) -> None:
        """Close without waiting.  Forceful or not, this does not discard
        what send_all handed to the transport (``transport.abort()`` would):
        the transport flushes it in the background, bounded by 5 s.  As a
        kernel does with a socket closed with unread incoming data, the
        connection is aborted instead when data we received is unread:
        that is the peer's loss, and it frees a peer stuck writing to us."""
        if not self._state.close():
            return
        unread = self._pushback or getattr(self.reader, "_buffer", None)
        self._wake_waiters()
        transport = self.writer.transport
        if unread:
            transport.abort()
            return
        self.writer.close()
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(_CLOSE_TIMEOUT, _abort_if_open, transport)


def _retrieve_close_error(writer: asyncio.StreamWriter) -> None:
    """asyncio keeps a lost connection's error in a future that only
    ``wait_closed()`` reads; before Python 3.11 an unread one is reported to
    the loop as "never retrieved".  We report the error through our own
    calls instead, so mark it read."""
    closed = getattr(getattr(writer, "_protocol", None), "_closed", None)
    if isinstance(closed, asyncio.Future):
        closed.add_done_callback(_read_outcome)


def _read_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _abort_if_open(transport: asyncio.WriteTransport) -> None:
    transport.abort()  # a no-op once the transport finished closing
