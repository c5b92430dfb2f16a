"""Abstract base classes of pystream's resources and streams.

The contract follows Trio's streams, on asyncio: every operation is a
checkpoint (it yields to the event loop once and can be cancelled there,
even when it has nothing to wait for), two tasks using one direction at
once get ``BusyResourceError``, using a closed object raises
``ClosedResourceError``, and a broken transport raises
``BrokenResourceError``.  A socket stream or listener belongs to the
event loop that made it: using it from another loop or thread raises
``RuntimeError``.

The methods below state the contract; each concrete stream's docstrings
say where it adds to it (what a cancelled ``send_all`` did, for one).
"""

from __future__ import annotations

import abc
import asyncio
import functools
import weakref
from types import TracebackType
from typing import Any, Callable, Generic, Optional, TypeVar, Union

from ._base._checkpoint import CHECKPOINT
from ._base._errors import ConflictDetector, EndOfChannel
from ._base._readers import DEFAULT_LIMIT, PushbackReader

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
    """Something to close: ``await resource.aclose()``, or ``async with
    resource:``, which returns the resource and closes it on the way out,
    whatever the block raised."""

    __slots__ = ()

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the resource.  Idempotent; later calls on it raise
        ``ClosedResourceError``.

        For a stream the close is graceful: the data ``send_all`` accepted
        is delivered before the end of file.  For a stream or a listener,
        calls blocked on it in other tasks wake with
        ``ClosedResourceError``.

        Cancellation:
            The resource is closed all the same (forcefully: without
            waiting for anything more), then the cancellation is raised.
            The same holds if closing fails.
        """

    def _close_now(self) -> None:
        """Close at once, synchronously, waiting for nothing: what
        ``aclose_forcefully`` and the wrappers' forceful closes call.
        Package-internal (pystream's resources override it); this default
        runs ``aclose()`` cancelled at every await, which the contract
        says closes forcefully.

        Raises:
            RuntimeError: ``aclose()`` still ran after 100 cancellations.
        """
        coro = self.aclose()
        try:
            coro.send(None)
            for _ in range(100):
                coro.throw(asyncio.CancelledError())
        except (StopIteration, asyncio.CancelledError):
            return
        finally:
            coro.close()
        raise RuntimeError(f"{coro!r} kept running after 100 cancellations")

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
        """Send all of ``data`` (``bytes``, ``bytearray``, ``memoryview``);
        return once the transport has taken it.

        It waits while the transport can take no more (the peer does not
        read): that is the backpressure, and nothing buffers without bound.
        The caller may reuse its buffer once this returns.  ``b""`` sends
        nothing and is not an end of file.  A checkpoint.

        Raises:
            pystream.BusyResourceError: another task is already in
                ``send_all``, ``wait_send_all_might_not_block`` or
                ``send_eof`` on this stream.
            pystream.ClosedResourceError: this stream was closed, or its
                sending side by ``send_eof``, before or during the call.
            pystream.BrokenResourceError: the peer or the transport broke
                the stream; ``__cause__`` says how.  Sending stays broken.
            TypeError: ``data`` is not bytes-like (a ``str``, say).

        Cancellation:
            Part of the data may have been sent.  Each stream says what it
            guarantees: for sockets, all of it or none, and the stream
            stays usable.
        """

    async def write(self, data: BytesLike) -> None:
        """``send_all`` under asyncio's name: a write that drains by
        itself.  It raises what ``send_all`` raises."""
        await self.send_all(data)

    async def send_file(self, file: Any, offset: int = 0, count: Optional[int] = None) -> int:
        """Send up to ``count`` bytes (None: to the end) of a regular file
        from ``offset``; return how many were sent.  ``file`` is a binary
        file object open for reading, or an fd; its position is unchanged.

        This default reads the file in 1 MiB chunks, in a thread (a slow
        disk never stops the event loop), and ``send_all``s each; socket
        and pipe streams override it with a kernel copy (``sendfile``).

        Raises:
            TypeError, ValueError: bad arguments (a text, closed or
                write-only file, not a regular file, a negative offset or
                count), at once, before anything is sent.
            pystream.BusyResourceError, pystream.ClosedResourceError,
            pystream.BrokenResourceError: as ``send_all``.

        Cancellation:
            A prefix of the range may have been sent.
        """
        from ._base._sendfile import file_range, send_file_by_reading

        where = file_range(file, offset, count)
        return await send_file_by_reading(self, self._send_guard(), where)

    def try_send(self, data: bytes) -> int:
        """Send what the transport takes of ``data`` at once, without a
        checkpoint and without waiting; return how many bytes it took.

        For a layer above whose own call was the checkpoint (``TLSStream``
        sends its records through it, and ``send_all`` for the rest).  0
        whenever ``send_all`` would do more than write: busy, closed,
        broken, queued writes, another loop or thread; and always 0 by
        default, for a stream that cannot tell.  Socket and pipe streams
        write what the kernel takes.
        """
        return 0

    def _send_guard(self) -> Optional[ConflictDetector]:
        """The conflict detector of this stream's sending direction, for
        a sender that holds it across several ``send_all`` (``send_file``'s
        reading path), or None.  Package-internal: pystream's streams
        return theirs."""
        return None

    @abc.abstractmethod
    async def wait_send_all_might_not_block(self) -> None:
        """Return when a ``send_all`` would probably not wait.

        A hint for producing data at the last moment: a ``send_all`` right
        after it may still wait.  A checkpoint.

        Raises:
            pystream.BusyResourceError: another task is sending on this
                stream.
            pystream.ClosedResourceError: this stream was closed (or its
                sending side by ``send_eof``), before or during the call.
            pystream.BrokenResourceError: the stream is broken.

        Cancellation:
            Nothing changes.
        """


class ReceiveStream(AsyncResource):
    """The receiving direction of a byte stream.

    ``async for chunk in stream`` receives non-empty chunks until the end
    of file (``receive_some()`` until it returns ``b""``), raising what
    ``receive_some`` raises.
    """

    __slots__ = ()

    @abc.abstractmethod
    async def receive_some(self, max_bytes: Optional[int] = None) -> bytes:
        """Return 1 to ``max_bytes`` bytes, or ``b""`` at the end of file.

        ``b""`` comes only once the peer has sent EOF (``send_eof``, or it
        closed) and everything it sent before was received.
        ``max_bytes=None`` lets the stream choose (65536 for pystream's).
        A checkpoint, also when data is already buffered.

        Raises:
            pystream.BusyResourceError: another task is already receiving
                on this stream.
            pystream.ClosedResourceError: this stream was closed, before or
                during the call.
            pystream.BrokenResourceError: the peer or the transport broke
                the stream (a reset, say); ``__cause__`` says how.
            ValueError: ``max_bytes`` is less than 1.
            TypeError: ``max_bytes`` is not an integer or None.

        Cancellation:
            Nothing is lost: what the call did not return stays buffered
            for the next one.
        """

    async def receive_into(self, buffer: Union[bytearray, memoryview]) -> int:
        """Receive 1 to ``len(buffer)`` bytes into ``buffer``, a writable
        bytes-like object; return the count, 0 only at the end of file.

        Bytes of ``buffer`` past the count are left as they were.  A
        checkpoint.

        Raises:
            pystream.BusyResourceError: another task is already receiving
                on this stream.
            pystream.ClosedResourceError: this stream was closed, before or
                during the call.
            pystream.BrokenResourceError: the peer or the transport broke
                the stream.
            TypeError: ``buffer`` is read-only, not contiguous (a strided
                slice such as ``memoryview(b)[::2]``), or not a buffer: as
                ``socket.recv_into`` and ``readinto`` raise.
            ValueError: ``buffer`` is empty.

        Cancellation:
            Nothing is lost, as for ``receive_some``.
        """
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError("receive_into needs a writable buffer")
        if not view.c_contiguous:
            raise TypeError("receive_into needs a contiguous buffer")
        view = view.cast("B")
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
    """A two-way byte stream, with asyncio's reading helpers.

    Every stream has ``send_eof`` (trio#823: a fallible half-close on every
    stream rather than a separate class); one that cannot half-close raises
    ``NotImplementedError`` from it.  The reading helpers (``readexactly``,
    ``readuntil``, ``readline``, ``read``) work on the same receive buffer
    as ``receive_some``, with the same busy and error rules, and lose
    nothing when cancelled.

    A subclass needs only the primitives (``send_all``,
    ``wait_send_all_might_not_block``, ``receive_some``, ``aclose``, and
    ``send_eof`` if it can half-close): the reading helpers here work over
    its ``receive_some``.  What they read ahead (past a separator) waits in
    a pushback buffer, and the subclass's ``receive_some`` is wrapped so
    that it returns that first.
    """

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.readuntil is not Stream.readuntil:
            return  # the class has reading helpers of its own
        receive = cls.__dict__.get("receive_some")
        if receive is not None and receive not in _wrapped:
            _raw_receives[cls] = receive
            cls.receive_some = _serving_pushback(receive)  # type: ignore[method-assign]
        close = cls.__dict__.get("aclose")
        if close is not None and close not in _wrapped:
            cls.aclose = _dropping_pushback(close)  # type: ignore[method-assign]

    async def send_eof(self) -> None:
        """Half-close: the peer reads ``b""`` after the data already sent;
        receiving goes on.

        Afterwards ``send_all`` raises ``ClosedResourceError``.  Idempotent.
        A checkpoint.  This default raises ``NotImplementedError``: a
        stream that can half-close overrides it.

        Raises:
            NotImplementedError: this stream cannot half-close (TLS before
                1.3, an asyncio transport without ``write_eof``).
            pystream.BusyResourceError: another task is sending on this
                stream.
            pystream.ClosedResourceError: this stream was closed.
            pystream.BrokenResourceError: sending was broken (an EOF does
                not hide it), or sending the EOF failed.

        Cancellation:
            Either the EOF was sent or nothing changed; call it again to be
            sure (it is idempotent).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot half-close")

    async def readexactly(self, n: int) -> bytes:
        """Receive exactly ``n`` bytes (``b""`` for 0).  A checkpoint.

        Raises:
            asyncio.IncompleteReadError: the end of file came first;
                ``partial`` holds the bytes before it (taken from the
                stream), ``expected`` is ``n``.
            ValueError: ``n`` is negative.
            TypeError: ``n`` is not an integer.
            pystream.BusyResourceError: another task is receiving.
            pystream.ClosedResourceError: this stream was closed.
            pystream.BrokenResourceError: the stream broke.

        Cancellation:
            Nothing is lost: the bytes stay buffered for the next call.
        """
        return await _reader_of(self).readexactly(n)

    @property
    def limit(self) -> int:
        """The limit ``readuntil`` and ``readline`` use when the call gives
        none: 65536 (asyncio's ``open_connection`` default) unless the
        stream's opener was given ``limit=``, or it was set here.

        Setting it takes an integer >= 1, else ``TypeError`` or
        ``ValueError``.  A call's own ``limit=`` overrides it for that call.
        This default serves a subclass using ``Stream``'s reading helpers;
        pystream's streams have their own.
        """
        reader = _readers.get(self)
        return DEFAULT_LIMIT if reader is None else reader.limit

    @limit.setter
    def limit(self, value: int) -> None:
        _reader_of(self).limit = value

    def receive_ready(self) -> bool:
        """Whether a receive would return (or raise) at once, from what
        this stream already holds: buffered bytes, a recorded end of file
        or error, or being closed.  Never blocks; pystream's streams answer
        without a system call.

        True is a promise that the peer has sent something or the stream
        ended (a ``TLSStream`` may hold part of a record, the rest on its
        way); False is not a promise (data may be on its way, or held by a
        layer that does not answer: wrappers ask the stream underneath
        when it has ``receive_ready``).  ``pystream.interop.httpcore`` asks it to tell whether an
        idle pooled connection has heard from its peer.  This default
        answers for the pushback buffer of ``Stream``'s reading helpers.
        """
        reader = _readers.get(self)
        return reader is not None and reader.receive_ready()

    async def readuntil(self, separator: bytes = b"\n", *, limit: Optional[int] = None) -> bytes:
        """Receive up to and including the first ``separator``.  A
        checkpoint.

        ``limit=None`` means the stream's ``limit`` (65536 unless its
        opener was given another).

        Raises:
            asyncio.LimitOverrunError: more than ``limit`` bytes come before
                the separator.  The data stays buffered (``consumed`` says
                how much was searched): read it another way, or give up.
            asyncio.IncompleteReadError: the end of file came first;
                ``partial`` holds the bytes before it (taken from the
                stream), ``expected`` is None.
            TypeError: ``separator`` is not bytes-like, or ``limit`` not an
                integer.
            ValueError: ``separator`` is empty, or ``limit`` less than 1.
            pystream.BusyResourceError: another task is receiving.
            pystream.ClosedResourceError: this stream was closed.
            pystream.BrokenResourceError: the stream broke.

        Cancellation:
            Nothing is lost: the bytes stay buffered for the next call.
        """
        return await _reader_of(self).readuntil(separator, limit=limit)

    async def readline(self, *, limit: Optional[int] = None) -> bytes:
        """``readuntil(b"\\n", limit=limit)``, except that at the end of
        file it returns what is left (``b""`` when nothing is) instead of
        raising.  ``limit=None`` means the stream's ``limit``.

        Unlike asyncio's, it keeps the data when it raises
        ``asyncio.LimitOverrunError`` (more than ``limit`` bytes before the
        newline).  It raises what ``readuntil`` raises but
        ``asyncio.IncompleteReadError``.
        """
        try:
            return await self.readuntil(b"\n", limit=limit)
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    async def read(self, n: int = -1) -> bytes:
        """With ``n > 0``, 1 to ``n`` bytes, or ``b""`` at the end of file;
        with ``n < 0``, everything until the end of file; with 0, ``b""``.
        A checkpoint.

        Raises:
            TypeError: ``n`` is not an integer.
            pystream.BusyResourceError: another task is receiving.
            pystream.ClosedResourceError: this stream was closed.
            pystream.BrokenResourceError: the stream broke.

        Cancellation:
            Nothing is lost, ``read()`` included: what it gathered stays
            buffered for the next call.
        """
        return await _reader_of(self).read(n)


# Kept for code written when only some streams had send_eof: every Stream
# has it now.
HalfCloseableStream = Stream

# The pushback readers of the streams using Stream's default helpers.
_readers: weakref.WeakKeyDictionary[Stream, PushbackReader] = weakref.WeakKeyDictionary()
# Each such class's own receive_some, before __init_subclass__ wrapped it.
_raw_receives: weakref.WeakKeyDictionary[type, Callable[..., Any]] = weakref.WeakKeyDictionary()
# The wrappers made here (a subclass that inherits one is not wrapped twice).
_wrapped: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def _reader_of(stream: Stream) -> PushbackReader:
    reader = _readers.get(stream)
    if reader is None:
        raw = next((_raw_receives[k] for k in type(stream).__mro__ if k in _raw_receives), None)
        if raw is None:
            raise TypeError(f"{type(stream).__name__} has no receive_some")
        # A weak reference: the reader is the stream's, not the other way.
        ref = weakref.ref(stream)

        async def raw_receive(max_bytes: int) -> bytes:
            owner = ref()
            if owner is None:  # pragma: no cover - a helper keeps it alive
                raise RuntimeError("the stream is gone")
            data: bytes = await raw(owner, max_bytes)
            return data

        reader = _readers[stream] = PushbackReader(raw_receive)
    return reader


def _serving_pushback(receive: Callable[..., Any]) -> Callable[..., Any]:
    """receive_some that returns what the default helpers read ahead first
    (and is busy while one of them runs)."""

    @functools.wraps(receive)
    async def receive_some(self: Stream, max_bytes: Optional[int] = None) -> bytes:
        reader = _readers.get(self)
        if reader is not None and reader.serves_first():
            return await reader.receive_some(max_bytes)
        data: bytes = await receive(self, max_bytes)
        return data

    _wrapped.add(receive_some)
    return receive_some


def _dropping_pushback(close: Callable[..., Any]) -> Callable[..., Any]:
    """aclose that also closes the default helpers' pushback buffer."""

    @functools.wraps(close)
    async def aclose(self: Stream) -> None:
        reader = _readers.get(self)
        if reader is not None:
            reader.close()
        await close(self)

    _wrapped.add(aclose)
    return aclose


class Listener(AsyncResource, Generic[T]):
    """Accepts connections; ``aclose()`` stops listening."""

    __slots__ = ()

    @abc.abstractmethod
    async def accept(self) -> T:
        """Wait for the next connection and return it as a stream.  A
        checkpoint.

        Raises:
            pystream.BusyResourceError: another task is already accepting
                on this listener.
            pystream.ClosedResourceError: the listener was closed, before or
                during the call.
            OSError: accepting failed for a reason that is not about one
                connection (out of file descriptors, say: ``EMFILE``); the
                listener stays usable.

        Cancellation:
            No connection is lost: the next ``accept`` returns it.
        """


class SendChannel(AsyncResource, Generic[T]):
    """The sending end of an object channel."""

    __slots__ = ()

    @abc.abstractmethod
    async def send(self, value: T) -> None:
        """Send ``value``, waiting for room.  A checkpoint.

        Raises:
            pystream.ClosedResourceError: this end was closed.
            pystream.BrokenResourceError: every receiving end was closed
                (before or during the call).

        Cancellation:
            Either a receiver has the value and ``send`` returns normally
            (the cancellation then reaches the task at its next await), or
            the value was not sent.
        """


class ReceiveChannel(AsyncResource, Generic[T]):
    """The receiving end of an object channel; ``async for`` gives values
    until every sender closed."""

    __slots__ = ()

    @abc.abstractmethod
    async def receive(self) -> T:
        """Wait for the next value and return it.  A checkpoint.

        Raises:
            pystream.EndOfChannel: every sending end was closed and the
                buffered values are all taken.
            pystream.ClosedResourceError: this end was closed.

        Cancellation:
            No value is lost: one the call did not return goes to the next
            receive.
        """

    def __aiter__(self) -> ReceiveChannel[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except EndOfChannel:
            raise StopAsyncIteration from None


async def aclose_forcefully(resource: AsyncResource) -> None:
    """Close resource at once, without waiting for anything; never blocks.

    Forceful means "do not wait", not "discard": what ``send_all`` already
    handed over is still delivered (a socket's kernel sends it, then a FIN;
    a memory stream's peer keeps its buffer).  To abort a TCP connection
    with a reset on purpose, set ``SO_LINGER`` to 0 with ``setsockopt``
    first.  For a resource that is not pystream's, its ``aclose()`` is run
    as if cancelled at its first await, which the contract says makes it
    close forcefully.  Idempotent.  A checkpoint, after the close.

    Raises:
        RuntimeError: a resource that is not pystream's still ran its
            ``aclose()`` after 100 cancellations (it ignores them, against
            the contract).
        Exception: what such an ``aclose()`` raises, other than
            ``CancelledError``.  pystream's own resources raise nothing
            here.

    Cancellation:
        The resource is closed all the same (the close comes before the
        checkpoint), then the cancellation is raised.
    """
    close_now(resource)
    await CHECKPOINT


def close_now(resource: AsyncResource) -> None:
    """Close resource forcefully, synchronously (no checkpoint)."""
    if isinstance(resource, AsyncResource):
        resource._close_now()
    else:  # duck-typed: the default, aclose cancelled at every await
        AsyncResource._close_now(resource)
