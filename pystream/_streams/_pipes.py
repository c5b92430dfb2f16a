"""PipeStream: one end of an OS pipe or FIFO (or another descriptor epoll
can watch), on the core layer; ``open_pipe`` and ``wrap_fd``."""

from __future__ import annotations

import fcntl
import io
import os
import socket
import stat
from typing import Any, Optional, Union

from .._base._readers import DEFAULT_LIMIT, check_limit
from .._base._state import EOF_SENT, OPEN
from .._base._util import CHECKPOINT
from .._core import KIND_PIPE, CoreStream, get_bridge, open_fd
from ._socket import SocketStream, stream_from_socket

__all__ = ["PipeStream", "open_pipe", "wrap_fd", "pipe_stream", "new_pipe"]

# Pipes made here ask for 256 KiB of kernel buffer instead of Linux's 64
# KiB: fewer wake-ups per MiB moved.  Not more: a user's pipes share a
# budget (fs.pipe-user-pages-soft, 64 MiB by default), past which every new
# pipe of that user, in any program, gets 8 KiB.  F_SETPIPE_SZ is in fcntl
# from Python 3.10.
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_PIPE_SIZE = 256 << 10

# The access mode bits of the file status flags (PyPy's os lacks the name).
_ACCMODE = getattr(os, "O_ACCMODE", os.O_RDONLY | os.O_WRONLY | os.O_RDWR)


class PipeStream(CoreStream):
    """One end of a pipe: a receive stream over a read end, a send stream
    over a write end (a FIFO opened for both is both).

    The Stream API in full on the directions the descriptor has; the other
    direction's calls raise ``io.UnsupportedOperation``.  A pipe has no
    half-close: ``send_eof`` waits for the bytes ``send_all`` queued, then
    closes the write end, so the reader sees EOF after all of them.  Made by
    ``open_pipe``, ``wrap_fd`` and ``open_process``, not directly.
    """

    __slots__ = ("_readable", "_writable")

    _readable: bool
    _writable: bool

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else f"fd={self.fileno()}"
        mode = "r" * self._readable + "w" * self._writable
        return f"<pystream.PipeStream {mode} {state}>"

    @property
    def readable(self) -> bool:
        return self._readable

    @property
    def writable(self) -> bool:
        return self._writable

    def _need(self, direction: bool, what: str) -> None:
        if not direction and not self._state.closed:
            raise io.UnsupportedOperation(f"this pipe end is not {what}")

    # The direction checks come first: after send_eof, the C stream is
    # gone, and the error to give is the sending side's.
    def _check_sending(self) -> None:
        self._need(self._writable, "writable")
        if self._state.send is not OPEN and not self._state.closed:
            self._state.check_send()

    async def send_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        self._check_sending()
        await CoreStream.send_all(self, data)

    write = send_all

    async def wait_send_all_might_not_block(self) -> None:
        self._check_sending()
        await CoreStream.wait_send_all_might_not_block(self)

    async def send_file(self, file: Any, offset: int = 0, count: Optional[int] = None) -> int:
        self._check_sending()
        return await CoreStream.send_file(self, file, offset, count)

    async def send_eof(self) -> None:
        """Close the write end after what was queued (a pipe's EOF).
        Idempotent; then ``send_all`` raises ``ClosedResourceError``."""
        self._need(self._writable, "writable")
        if self._readable:
            raise NotImplementedError(
                "a pipe end open for reading and writing has no half-close: "
                "closing its writing would close its reading too; use aclose()"
            )
        if self._state.send is EOF_SENT:
            with self._send_conflict:
                self._bridge.check_loop()
                await CHECKPOINT
                return
        await CoreStream.send_eof(self)

    async def receive_some(self, max_bytes: Optional[int] = None) -> bytes:
        self._need(self._readable, "readable")
        return await CoreStream.receive_some(self, max_bytes)

    async def _wait_readable(self, want: int) -> None:
        self._need(self._readable, "readable")
        await CoreStream._wait_readable(self, want)


def pipe_stream(fd: int) -> PipeStream:
    """A PipeStream owning fd (non-blocking from now on; closed here on
    failure).  The caller made sure fd is a pipe, FIFO or terminal whose
    open file description nobody else uses."""
    try:
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & _ACCMODE
    except OSError:
        os.close(fd)
        raise
    stream = open_fd(PipeStream, fd, KIND_PIPE)
    stream._readable = mode in (os.O_RDONLY, os.O_RDWR)
    stream._writable = mode in (os.O_WRONLY, os.O_RDWR)
    return stream


async def open_pipe(*, limit: int = DEFAULT_LIMIT) -> tuple[PipeStream, PipeStream]:
    """A new OS pipe: ``(receive_end, send_end)``.  A checkpoint.
    ``limit`` is the receive end's default limit for ``readuntil`` and
    ``readline`` (its ``limit`` property).

    Raises:
        OSError: out of file descriptors, say.
        TypeError, ValueError: ``limit`` is not an int >= 1.

    Cancellation:
        Before the pipe is made: nothing happened.
    """
    limit = check_limit(limit)
    get_bridge()  # made (or failing) before any fd exists
    await CHECKPOINT
    read_fd, write_fd = new_pipe()
    try:
        receive_end = pipe_stream(read_fd)
    except BaseException:
        os.close(write_fd)
        raise
    try:
        send_end = pipe_stream(write_fd)
    except BaseException:
        receive_end._close_now()
        raise
    receive_end.limit = send_end.limit = limit
    return receive_end, send_end


def new_pipe() -> tuple[int, int]:
    """os.pipe2(O_CLOEXEC), with a bigger buffer where the system allows."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass  # (a lower pipe-max-size, or too many pipe pages in use)
    return read_fd, write_fd


async def wrap_fd(fd: int, *, limit: int = DEFAULT_LIMIT) -> Union[PipeStream, SocketStream]:
    """A stream that owns fd from now on (``aclose`` closes it): a pipe or
    FIFO end or a terminal gives a ``PipeStream``, a connected stream
    socket a ``SocketStream``.

    fd becomes non-blocking, and so does every descriptor sharing its open
    file description (a ``dup`` of it, or a parent's copy): wrap only a
    descriptor nobody else uses.  A regular file or a directory raises
    ``ValueError`` (epoll cannot watch them), a bad fd ``OSError``.
    ``limit`` is the stream's default limit for ``readuntil`` and
    ``readline`` (its ``limit`` property).  A checkpoint, before anything
    is adopted.

    Raises:
        TypeError, ValueError: not an fd, or not one epoll can watch, or
            ``limit`` not an int >= 1; fd is still the caller's.
        OSError: fd is not open (EBADF); or adopting it failed, which
            closed it.

    Cancellation:
        At its checkpoint, before adopting: fd is still the caller's.
    """
    if isinstance(fd, bool) or not isinstance(fd, int):
        raise TypeError(f"fd must be an int, not {type(fd).__name__}")
    if fd < 0:
        raise ValueError(f"fd must not be negative, not {fd}")
    limit = check_limit(limit)
    get_bridge()
    await CHECKPOINT  # (cancelled here, fd is still the caller's)
    mode = os.fstat(fd).st_mode
    stream: Union[PipeStream, SocketStream]
    if stat.S_ISSOCK(mode):
        sock = socket.socket(fileno=fd)
        try:
            stream = stream_from_socket(sock)
        except BaseException:
            # An argument error (not a stream socket) leaves fd to the
            # caller; a failure to adopt it has closed it already.
            sock.detach()
            raise
        stream.limit = limit
        return stream
    if stat.S_ISFIFO(mode) or (stat.S_ISCHR(mode) and os.isatty(fd)):
        stream = pipe_stream(fd)
        stream.limit = limit
        return stream
    kind = "a regular file" if stat.S_ISREG(mode) else "not a pipe, socket or terminal"
    raise ValueError(f"wrap_fd: fd {fd} is {kind}; epoll cannot watch it")
