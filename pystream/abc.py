"""Abstract base classes of pystream's resources and streams.

The contract follows Trio's streams, on asyncio: every operation is a
checkpoint (it yields to the event loop and can be cancelled there), two
tasks using one direction at once get ``BusyResourceError``, using a closed
object raises ``ClosedResourceError``, and a broken transport raises
``BrokenResourceError``.
"""

from __future__ import annotations

import abc
import asyncio
from types import TracebackType
from typing import Generic, Optional, TypeVar, Union

from ._errors import EndOfChannel

__all__ = [
    "AsyncResource",
    "SendStream",
    "ReceiveStream",
    "Stream",
    "HalfCloseableStream",
    "Listener",
    "SendChannel",
    "ReceiveChannel",
]

T = TypeVar("T")
R = TypeVar("R", bound="AsyncResource")
BytesLike = Union[bytes, bytearray, memoryview]


class AsyncResource(abc.ABC):
    """Something with an ``aclose()``, usable as ``async with``."""

    __slots__ = ()

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the resource.  Idempotent; if cancelled, it still closes
        (forcefully) and re-raises the cancellation."""

    async def __aenter__(self: R) -> R:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()


class SendStream(AsyncResource):
    """The sending direction of a byte stream."""

    __slots__ = ()

    @abc.abstractmethod
    async def send_all(self, data: BytesLike) -> None:
        """Send all of data; return once the transport has taken it.

        Blocks while the peer does not read.  ``b""`` is legal and is not an
        end of file.  If cancelled, some, all or none of the data may have
        been sent.  The caller may reuse its buffer once this returns.
        """

    async def write(self, data: BytesLike) -> None:
        """The same as ``send_all``: a write that drains by itself."""
        await self.send_all(data)

    @abc.abstractmethod
    async def wait_send_all_might_not_block(self) -> None:
        """Return when a ``send_all`` would likely not block."""


class ReceiveStream(AsyncResource):
    """The receiving direction of a byte stream."""

    __slots__ = ()

    @abc.abstractmethod
    async def receive_some(self, max_bytes: Optional[int] = None) -> bytes:
        """Return 1 to max_bytes bytes, or ``b""`` only at end of file.

        A cancelled call loses no data.
        """

    async def receive_into(self, buffer: Union[bytearray, memoryview]) -> int:
        """Fill a writable buffer with 1..len(buffer) bytes and return the
        count; 0 only at end of file."""
        view = memoryview(buffer).cast("B")
        if view.readonly:
            raise TypeError("receive_into needs a writable buffer")
        if view.nbytes == 0:
            raise ValueError("receive_into needs a non-empty buffer")
        data = await self.receive_some(view.nbytes)
        view[: len(data)] = data
        return len(data)

    def __aiter__(self) -> ReceiveStream:
        return self

    async def __anext__(self) -> bytes:
        data = await self.receive_some()
        if not data:
            raise StopAsyncIteration
        return data


class Stream(SendStream, ReceiveStream):
    """A two-way byte stream, with asyncio-style reading helpers.

    Every stream has ``send_eof`` (trio#823: a fallible half-close on every
    stream rather than a separate class); one that cannot half-close raises
    ``NotImplementedError`` from it.
    """

    __slots__ = ()

    async def send_eof(self) -> None:
        """Half-close: the peer reads ``b""`` after the data already sent,
        and receiving still works.  Idempotent; ``send_all`` then raises
        ``ClosedResourceError``.  ``NotImplementedError`` if this stream
        cannot half-close (TLS 1.2, an asyncio transport without
        ``write_eof``), which is what this default says: a subclass that
        can half-close overrides it."""
        raise NotImplementedError(f"{type(self).__name__} cannot half-close")

    @abc.abstractmethod
    async def readexactly(self, n: int) -> bytes:
        """Read exactly n bytes; ``asyncio.IncompleteReadError`` at EOF."""

    @abc.abstractmethod
    async def readuntil(self, separator: bytes = b"\n", *, limit: int = 65536) -> bytes:
        """Read through separator (included).  ``asyncio.LimitOverrunError``
        when limit bytes pass without it, keeping the data buffered."""

    async def readline(self) -> bytes:
        """``readuntil(b"\\n")``, except that at EOF it returns what is left
        (``b""`` when nothing is)."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    @abc.abstractmethod
    async def read(self, n: int = -1) -> bytes:
        """Up to n bytes (``b""`` at EOF), or everything until EOF if n < 0."""


# Kept for code written when only some streams had send_eof: every Stream
# has it now.
HalfCloseableStream = Stream


class Listener(AsyncResource, Generic[T]):
    """Accepts connections."""

    __slots__ = ()

    @abc.abstractmethod
    async def accept(self) -> T:
        """Wait for and return the next connection."""


class SendChannel(AsyncResource, Generic[T]):
    """The sending end of an object channel."""

    __slots__ = ()

    @abc.abstractmethod
    async def send(self, value: T) -> None:
        """Send value, waiting for room.  ``BrokenResourceError`` once
        every receiver closed."""


class ReceiveChannel(AsyncResource, Generic[T]):
    """The receiving end of an object channel; ``async for`` gives values
    until every sender closed."""

    __slots__ = ()

    @abc.abstractmethod
    async def receive(self) -> T:
        """The next value; ``EndOfChannel`` once every sender closed."""

    def __aiter__(self) -> ReceiveChannel[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except EndOfChannel:
            raise StopAsyncIteration from None
