"""``from_anyio_stream``: an anyio byte stream as a pystream ``Stream``."""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Union

from .._base._errors import (
    BusyResourceError,
    ConflictDetector,
)
from .._base._readers import BufferedReceiveMixin, check_max_bytes
from .._base._state import EOF_SENT, StreamState, closed_during_call, translate
from .._base._util import CHECKPOINT
from ..abc import Stream

__all__ = ["AnyioStream", "from_anyio_stream"]


def from_anyio_stream(stream: Any) -> AnyioStream:
    """A pystream ``Stream`` over ``stream``, an ``anyio.abc.ByteStream``
    (or a one-way ``ByteReceiveStream`` or ``ByteSendStream``: the other
    direction's calls then raise ``NotImplementedError``), on anyio's
    asyncio backend.

    ``receive_some`` is ``receive``, ``b""`` where anyio raises
    ``EndOfStream``; ``send_all`` is ``send``; ``send_eof`` and ``aclose``
    are the stream's.  anyio's ``ClosedResourceError``,
    ``BrokenResourceError`` and ``BusyResourceError`` become pystream's,
    anyio's as ``__cause__``.  The wrapper adds what pystream's contract
    has and anyio's does not promise: every call is a checkpoint,
    ``BusyResourceError`` for a second task in one direction,
    ``ClosedResourceError`` after ``aclose``, ``b""`` after the end of file
    every time, and the reading helpers (``readexactly``, ``readuntil``,
    ``readline``, ``read``, with a pushback buffer; bytes a ``receive``
    returned past ``max_bytes`` wait there too).

    What a cancellation does is the anyio stream's: a cancelled receive
    loses nothing if its ``receive`` loses nothing; a cancelled
    ``send_all`` sent what its ``send`` sent.  A cancelled ``aclose``
    still closes (through ``anyio.aclose_forcefully``).

    Raises:
        TypeError: ``stream`` has neither ``receive`` nor ``send``.
    """
    if not callable(getattr(stream, "receive", None)) and not callable(
        getattr(stream, "send", None)
    ):
        raise TypeError(f"{type(stream).__name__} is not an anyio byte stream")
    return AnyioStream(stream)


def _translate(exc: BaseException, doing: str) -> Optional[Exception]:
    """pystream's error for one of anyio's, or None if it is not one: the
    closed and broken ones through the one translator (``_state``)."""
    import anyio

    if isinstance(exc, anyio.ClosedResourceError):
        return translate(exc, doing, closed=True)
    if isinstance(exc, anyio.BrokenResourceError):
        return translate(exc, doing)
    if isinstance(exc, anyio.BusyResourceError):
        return BusyResourceError(f"the anyio stream is busy {doing}")
    return None


class AnyioStream(BufferedReceiveMixin, Stream):
    """pystream's ``Stream`` over an anyio byte stream; see
    ``from_anyio_stream``.

    Attributes:
        anyio_stream: the wrapped stream.
    """

    def __init__(self, anyio_stream: Any) -> None:
        self.anyio_stream = anyio_stream
        self._state = StreamState()  # the rules: pystream/_base/_state.py
        self._eof = False  # the peer's end of file was received
        self._pushback = bytearray()
        self._receive_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )
        self._send_conflict = ConflictDetector("another task is already sending on this stream")
        # The tasks waiting in the anyio stream's receive and send, which
        # aclose wakes (not every anyio stream wakes them itself).
        self._waiting: set[asyncio.Task[Any]] = set()
        self._woken: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else "open"
        return f"<pystream.interop.AnyioStream {state} over {self.anyio_stream!r}>"

    def _check_open(self) -> None:
        if self._state.closed:
            raise self._state.receive_error()

    def _check_send_open(self) -> None:
        self._state.check_send()  # closed, or send_eof closed the send side

    # -- receiving (BufferedReceiveMixin's primitives) ----------------------
    def _check_receive_open(self) -> None:
        self._check_open()

    async def _receive_raw(self, max_bytes: int) -> bytes:
        import anyio

        self._check_open()
        await CHECKPOINT
        self._check_open()
        if self._eof:
            return b""
        receive = getattr(self.anyio_stream, "receive", None)
        if receive is None:
            raise NotImplementedError(f"{type(self.anyio_stream).__name__} cannot receive")
        try:
            data = bytes(await self._wakeable(receive(max_bytes)))
        except anyio.EndOfStream:
            self._eof = True
            return b""
        except Exception as exc:
            ours = _translate(exc, "receiving")
            if ours is None:
                raise
            if self._state.closed:  # closed by another task while this waited
                raise closed_during_call() from exc
            raise ours from exc
        if len(data) > max_bytes:
            self._pushback += data[max_bytes:]
            data = data[:max_bytes]
        return data

    async def receive_some(self, max_bytes: Optional[int] = None) -> bytes:
        """1 to ``max_bytes`` (default 65536) bytes, ``b""`` only at the end
        of file.  A checkpoint.  Errors as in ``from_anyio_stream``."""
        return await BufferedReceiveMixin.receive_some(self, check_max_bytes(max_bytes))

    async def receive_into(self, buffer: Union[bytearray, memoryview]) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view):
            self._check_open()
            await CHECKPOINT
            return 0
        data = await self.receive_some(len(view))
        view[: len(data)] = data
        return len(data)

    # -- sending ---------------------------------------------------------
    async def send_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Send all of ``data`` through the anyio stream's ``send``.  A
        checkpoint, also for ``b""`` (which sends nothing)."""
        payload = bytes(data)
        with self._send_conflict:
            self._check_send_open()
            await CHECKPOINT
            self._check_send_open()
            if payload:
                await self._call_send("send", payload)

    async def wait_send_all_might_not_block(self) -> None:
        """A checkpoint: anyio streams do not say when a send would block."""
        with self._send_conflict:
            self._check_send_open()
            await CHECKPOINT
            self._check_send_open()

    async def send_eof(self) -> None:
        """The anyio stream's ``send_eof``.  ``NotImplementedError`` where
        it has none (anyio's ``TLSStream``, a one-way receive stream).
        Idempotent; ``send_all`` afterwards raises ``ClosedResourceError``."""
        with self._send_conflict:
            self._check_open()
            await CHECKPOINT
            self._check_open()
            if self._state.send is not EOF_SENT:
                await self._call_send("send_eof")
                self._state.send_eof()

    async def _call_send(self, name: str, *args: bytes) -> None:
        method = getattr(self.anyio_stream, name, None)
        if method is None:
            raise NotImplementedError(f"{type(self.anyio_stream).__name__} has no {name}")
        try:
            await self._wakeable(method(*args))
        except Exception as exc:
            ours = _translate(exc, "sending")
            if ours is None:
                raise
            if self._state.closed:
                raise closed_during_call() from exc
            raise ours from exc

    async def _wakeable(self, call: Any) -> Any:
        """Await the anyio stream's call; if aclose (another task) wakes
        it, raise ClosedResourceError."""
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            return await call
        except asyncio.CancelledError:
            if task not in self._woken:
                raise
            uncancel = getattr(task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            raise closed_during_call() from None
        finally:
            self._waiting.discard(task)
            self._woken.discard(task)

    # -- closing ---------------------------------------------------------
    async def aclose(self) -> None:
        """Close the anyio stream (its ``aclose``); idempotent.  Cancelled,
        it still closes, forcefully, and raises the cancellation."""
        import anyio

        if not self._state.close():
            await CHECKPOINT
            return
        self._pushback.clear()
        for task in self._waiting - self._woken:
            if task is not asyncio.current_task():
                self._woken.add(task)
                task.cancel()
        try:
            await self.anyio_stream.aclose()
        except asyncio.CancelledError:
            await anyio.aclose_forcefully(self.anyio_stream)
            raise
        except Exception as exc:
            # Closing a stream that broke: closed all the same.
            if _translate(exc, "closing") is None:
                raise
        # A checkpoint also where the anyio stream closes without yielding
        # (its memory object streams): closed already if cancelled here.
        await CHECKPOINT
