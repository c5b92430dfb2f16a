"""StapledStream: one two-way stream made of a send stream and a receive
stream."""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Union

from .._base._errors import ConflictDetector
from .._base._readers import BufferedReceiveMixin
from .._base._state import StreamState
from .._base._util import require_methods
from ..abc import HalfCloseableStream, ReceiveStream, SendStream, close_now

__all__ = ["StapledStream"]


class StapledStream(BufferedReceiveMixin, HalfCloseableStream):
    """One two-way stream made of two one-way streams: it sends on
    ``send_stream`` and receives from ``receive_stream``.

    Sending is the send stream's: its errors, its busy rule, its
    cancellation rule.  Receiving adds the reading helpers over
    ``receive_stream.receive_some``, with their own busy rule; a cancelled
    receive loses nothing.  ``send_eof`` calls the send stream's
    ``send_eof`` if it has one, and closes it otherwise; ``aclose`` closes
    both at once (each even if closing the other fails).

    Raises:
        TypeError: ``send_stream`` lacks ``send_all`` or ``aclose``, or
            ``receive_stream`` lacks ``receive_some`` or ``aclose``.

    Attributes:
        send_stream: the stream ``send_all`` sends on.
        receive_stream: the stream receiving reads from.
    """

    def __init__(self, send_stream: SendStream, receive_stream: ReceiveStream) -> None:
        require_methods(send_stream, "send_stream", "send_all", "aclose")
        require_methods(receive_stream, "receive_stream", "receive_some", "aclose")
        self.send_stream = send_stream
        self.receive_stream = receive_stream
        self._receive_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )
        self._pushback = bytearray()
        # Only "closed" is its own (the two streams keep their directions).
        self._state = StreamState()

    def __repr__(self) -> str:
        return f"<pystream.StapledStream {self.send_stream!r} {self.receive_stream!r}>"

    async def send_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """``send_stream.send_all(data)``: it raises, and behaves when
        cancelled, as the send stream does.  ``write`` is another name for
        it."""
        await self.send_stream.send_all(data)

    write = send_all

    async def wait_send_all_might_not_block(self) -> None:
        """``send_stream.wait_send_all_might_not_block()``, with its errors
        and cancellation."""
        await self.send_stream.wait_send_all_might_not_block()

    async def send_file(self, file: Any, offset: int = 0, count: Optional[int] = None) -> int:
        """``send_stream.send_file(...)`` (its kernel copy, if it has one),
        with its errors and cancellation."""
        send_file = getattr(self.send_stream, "send_file", None)
        if send_file is None:  # not a pystream stream: read and send_all
            from .._base._sendfile import file_range, send_file_by_reading

            where = file_range(file, offset, count)
            return await send_file_by_reading(self.send_stream, None, where)
        result: int = await send_file(file, offset, count)
        return result

    async def send_eof(self) -> None:
        """``send_stream.send_eof()`` if the send stream has one (its errors,
        ``NotImplementedError`` included, and its cancellation), else
        ``send_stream.aclose()``: either way the receiving side goes on."""
        send_eof = getattr(self.send_stream, "send_eof", None)
        if send_eof is not None:
            await send_eof()
        else:
            await self.send_stream.aclose()

    def _check_receive_open(self) -> None:
        # Only for data a reading helper left here: the receive stream
        # checks for itself otherwise.
        self._state.check_receive()

    async def _receive_raw(self, max_bytes: int) -> bytes:
        return await self.receive_stream.receive_some(max_bytes)

    def receive_ready(self) -> bool:
        """Its own pushback buffer, then ``receive_stream``'s answer (False
        for a receive stream without ``receive_ready``)."""
        if super().receive_ready():
            return True
        ready = getattr(self.receive_stream, "receive_ready", None)
        return bool(ready()) if callable(ready) else False

    def _close_now(self) -> None:
        self._state.close()
        close_now(self.send_stream)
        close_now(self.receive_stream)

    async def aclose(self) -> None:
        """Close ``send_stream`` and ``receive_stream`` concurrently, so
        this takes as long as the slower of the two (at most 5 s for
        pystream's streams), not their sum.  Each is closed even if closing
        the other fails; an error from either is raised (the send stream's
        if both fail).  Idempotent if theirs are.

        Cancellation:
            Both closes are cancelled, which closes each forcefully; once
            both have ended, the cancellation is raised.
        """
        self._state.close()
        closes = [
            asyncio.ensure_future(self.send_stream.aclose()),
            asyncio.ensure_future(self.receive_stream.aclose()),
        ]
        cancelled = False
        pending = set(closes)
        while pending:
            try:
                _, pending = await asyncio.wait(pending)
            except asyncio.CancelledError:
                cancelled = True
                for close in pending:
                    close.cancel()
        errors: list[BaseException] = []
        for close, stream in zip(closes, (self.send_stream, self.receive_stream)):
            if close.cancelled():
                # Its aclose closed it forcefully, unless the cancellation
                # came before it even started: make sure.
                close_now(stream)
                cancelled = True
                continue
            error = close.exception()
            if error is not None:
                errors.append(error)
        if cancelled:
            raise asyncio.CancelledError
        if errors:
            raise errors[0]
