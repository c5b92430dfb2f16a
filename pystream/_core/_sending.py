"""The rest of ``CoreStream``'s sending side: what the kernel did not take
at once (queued in libuv, or waiting for room), waiting for room
(``wait_send_all_might_not_block``), half-closing (``send_eof``) and the
kernel path of ``send_file`` (``sendfile(2)`` from the file to the socket
or pipe, driven by writability, the data never passing through Python).
The hot path, ``send_all``, is in ``_stream``."""

from __future__ import annotations

import asyncio
import errno
import platform
from typing import Any, Optional

from .._base._checkpoint import CHECKPOINT
from .._base._errors import ConflictDetector
from .._base._sendfile import FileRange, file_range, read_and_send
from .._base._state import OPEN, StreamState
from .._binding import UV_EAGAIN, UV_ECANCELED, ffi, lib

__all__ = ["CSendingMixin", "byte_view"]

# PyPy lets a buffer pinned by ffi.from_buffer be resized (see _send).
_RESIZABLE_WHILE_PINNED = platform.python_implementation() == "PyPy"

# Asked of one sendfile(2) call; a socket takes what its buffer has room
# for.  Between calls the loop gets a turn every _YIELD_EVERY bytes, so a
# peer that reads as fast as we send cannot starve the other tasks.
_CHUNK = 1 << 30
_YIELD_EVERY = 16 << 20
_UV_EBUSY = -errno.EBUSY  # writes are still queued ahead of us
# sendfile(2)'s answers for a file it cannot read from.
_NOT_SENDFILE_ABLE = (-errno.EINVAL, -errno.ENOSYS, -errno.EOPNOTSUPP)


class CSendingMixin:
    """The rest of ``send_all``, ``wait_send_all_might_not_block``,
    ``send_eof`` and ``send_file`` for ``CoreStream``."""

    # The socket asyncio watches for room (-1: none), while the kernel's
    # send buffer is full.
    __slots__ = ("_writable_fd",)
    _h: Any
    _bridge: Any
    _send_conflict: ConflictDetector
    _state: StreamState

    def _check_open(self) -> None:
        raise NotImplementedError

    def _check_send(self) -> None:
        raise NotImplementedError

    def _check_still_sendable(self) -> None:
        raise NotImplementedError

    def _broken_send(self, code: int) -> Exception:
        raise NotImplementedError

    async def _send(self, data: Any, view: Any, size: int, written: int) -> None:
        """The rest of send_all, when the kernel did not take everything at
        once: written bytes went (or written is an error)."""
        h = self._h
        if written < 0:
            raise self._broken_send(written)
        # The rest waits in libuv's queue, which keeps a pointer into the
        # buffer: hold it (pinned, through from_buffer) until the write's
        # completion, even if this call is cancelled.  On CPython the pin
        # also stops a bytearray from being resized meanwhile (BufferError);
        # PyPy resizes it all the same, which would leave libuv writing
        # from freed memory, so there a mutable buffer's rest is copied.
        start = written
        if view is not data and _RESIZABLE_WHILE_PINNED:
            owner = ffi.from_buffer(view[written:].tobytes())
            start = 0
        else:
            owner = ffi.from_buffer(view)
        err = lib.ps_stream_write(h.ptr, owner + start, size - written)
        if err < 0:
            ffi.release(owner)
            raise self._broken_send(err)
        queue = h.write_queue()
        queue.add(owner)
        self._bridge.schedule_pass()
        await h.send.wait(self._bridge.new_future())
        self._bridge.checkpoint.note_resumed()
        if queue.status:
            raise self._broken_send(queue.status)

    async def _wait_fd_writable(self) -> None:
        """The kernel's send buffer is full: let the asyncio loop watch the
        socket for room (libuv only watches it while a write is queued)."""
        h = self._h
        loop = self._bridge.loop
        fd = lib.ps_stream_fileno(h.ptr)
        waiter = loop.create_future()
        loop.add_writer(fd, _resolve, waiter)
        self._writable_fd = fd
        try:
            await h.send.wait(waiter)
        finally:
            self._stop_watching_fd()
        self._bridge.checkpoint.note_resumed()

    def _stop_watching_fd(self) -> None:
        if self._writable_fd >= 0:
            self._bridge.loop.remove_writer(self._writable_fd)
            self._writable_fd = -1

    async def _send_file_by_kernel(self, where: FileRange) -> int:
        """Send the range; the caller holds the send conflict detector and has
        checked the stream and made the checkpoint.  Returns the bytes sent.

        Cancelled (only while waiting for room or for queued writes, or at the
        periodic yield): if nothing was sent, nothing happened; else the peer
        got a prefix of the range, and sending is broken from then on."""
        h = self._h
        sent = 0
        since_yield = 0
        position = where.offset
        remaining = where.count
        try:
            while remaining is None or remaining > 0:
                if self._state.send is not OPEN or h.ptr is None:
                    self._check_still_sendable()
                size = _CHUNK if remaining is None else min(_CHUNK, remaining)
                n = lib.ps_stream_try_sendfile(h.ptr, where.fd, position, size)
                if n > 0:
                    sent += n
                    position += n
                    since_yield += n
                    if remaining is not None:
                        remaining -= n
                    if since_yield >= _YIELD_EVERY:
                        since_yield = 0
                        await CHECKPOINT
                    continue
                if n == 0:
                    break  # the end of the file
                if n == UV_EAGAIN:
                    since_yield = 0
                    await self._wait_fd_writable()
                    continue
                if n == _UV_EBUSY:  # send_all's queued rest goes first
                    await self._wait_queued_writes()
                    continue
                if n in _NOT_SENDFILE_ABLE and sent == 0:
                    # A file sendfile cannot read (many /proc files, some FUSE
                    # file systems): nothing went, so read it instead.
                    return await read_and_send(self, self._send_conflict, where)
                raise self._broken_send(n)
        except asyncio.CancelledError:
            if sent:
                self._state.break_send(None)
            raise
        return sent

    async def send_file(self, file: Any, offset: int = 0, count: Optional[int] = None) -> int:
        """Send up to ``count`` bytes (None: to the end) of a regular file
        from ``offset`` and return how many went: the kernel copies them
        (``sendfile(2)``), they never pass through Python.  ``file`` is a
        binary file object open for reading, or an fd; its position is
        unchanged.  Waits for room as ``send_all`` does.

        Raises:
            TypeError, ValueError: bad arguments (a text, closed or
                write-only file, not a regular file, a negative offset or
                count), at once, before anything is sent.
            pystream.BusyResourceError, pystream.ClosedResourceError,
            pystream.BrokenResourceError: as for ``send_all``.

        Cancellation:
            If nothing was sent yet, nothing happened.  Otherwise the peer
            got a prefix of the range, and sending is broken from then on
            (``BrokenResourceError``); receiving still works.
        """
        where = file_range(file, offset, count)
        with self._send_conflict:
            self._check_send()
            await CHECKPOINT
            self._check_still_sendable()
            await self._wait_queued_writes()
            return await self._send_file_by_kernel(where)

    async def _wait_queued_writes(self) -> None:
        """Wait until libuv has written what send_all queued (raise if that
        failed)."""
        h = self._h
        while h.writes_pending():
            await h.send.wait(self._bridge.new_future())
            self._check_still_sendable()
            if h.write_error():
                raise self._broken_send(h.write_error())

    async def wait_send_all_might_not_block(self) -> None:
        """Return once the data of earlier ``send_all`` calls is all in
        the kernel and the kernel has room for more.  A checkpoint.

        Raises:
            pystream.BusyResourceError: another task is in ``send_all``,
                ``send_eof`` or this on this stream.
            pystream.ClosedResourceError: the stream was closed (or its
                sending side by ``send_eof``) before or during the call.
            pystream.BrokenResourceError: sending is broken.
            RuntimeError: another event loop or thread than the stream's.

        Cancellation:
            Nothing changes.
        """
        with self._send_conflict:
            self._check_send()
            h = self._h
            if h.writes_pending():
                await h.send.wait(self._bridge.new_future())
            else:
                await CHECKPOINT
            self._check_still_sendable()
            if h.write_error():
                raise self._broken_send(h.write_error())
            if lib.ps_stream_writable(h.ptr) == 0:
                await self._wait_fd_writable()

    async def send_eof(self) -> None:
        """Half-close: the peer reads ``b""`` once it has all the data sent
        before; receiving goes on.  Waits until the shutdown is done.

        Idempotent; ``send_all`` then raises ``ClosedResourceError``.  A
        checkpoint.

        Raises:
            pystream.BusyResourceError: another task is sending on this
                stream.
            pystream.ClosedResourceError: the stream was closed, before or
                during the call.
            pystream.BrokenResourceError: sending was broken, or the
                shutdown failed; ``__cause__`` is the ``OSError``.
            RuntimeError: another event loop or thread than the stream's.

        Cancellation:
            The EOF is sent all the same: the shutdown was requested before
            the call waited.
        """
        with self._send_conflict:
            self._check_open()
            if not self._state.send_eof():  # sent before (closed or broken: raises)
                await CHECKPOINT
                return
            h = self._h
            err = lib.ps_stream_shutdown(h.ptr)
            if err < 0:
                raise self._broken_send(err)
            self._bridge.schedule_pass()
            status = await h.op.wait(self._bridge.new_future())
            if status < 0 and status != UV_ECANCELED:
                raise self._broken_send(status)


def byte_view(data: Any) -> memoryview:
    """A flat byte view of a bytes-like object, or TypeError."""
    if isinstance(data, str):
        raise TypeError("send_all needs bytes-like data, not str")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(
            f"send_all needs bytes, bytearray or memoryview, not {type(data).__name__}"
        ) from None
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
