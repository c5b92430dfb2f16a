"""The program's own stdin, stdout and stderr as streams.

O_NONBLOCK belongs to an open file description, which fd 0/1/2 share with
whoever else holds them (the parent shell, a pipeline's neighbours, a
``dup``): setting it on them could break those.  So these streams never
touch the original description:

- a pipe or FIFO is opened anew through ``/proc/self/fd/N`` and a terminal
  through its path: a description of our own, which the C core may make
  non-blocking (a ``PipeStream``, with the whole C data path);
- anything else (a regular file, which epoll cannot watch; ``/dev/null``;
  a socket, which cannot be reopened) gets a ``dup`` that blocking reads
  and writes use from a thread (a ``ThreadFdStream``).

Closing the stream closes only its own descriptor: fd 0/1/2 stay open, in
the mode they had, and ``print`` still works.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
from typing import Any, Optional, Union

from .._base._errors import ConflictDetector
from .._base._readers import DEFAULT_LIMIT, BufferedReceiveMixin, check_limit
from .._base._state import EOF_SENT, OPEN, StreamState, closed_during_call
from .._base._util import CHECKPOINT
from .._core import get_bridge
from ..abc import Stream
from ._pipes import PipeStream, pipe_stream
from ._stdio_threads import in_thread, read_until_stopped, write_until_stopped

__all__ = ["open_stdin", "open_stdout", "open_stderr", "ThreadFdStream"]

# How long aclose() waits for a write still running in its thread.
_CLOSE_TIMEOUT = 5.0
_READ_SIZE = 65536
_MAX_READ = 1 << 20


async def open_stdin(*, limit: int = DEFAULT_LIMIT) -> Union[PipeStream, ThreadFdStream]:
    """A receive stream over this process's fd 0 (see the module's notes:
    the original descriptor is left open and in its mode).  A checkpoint.
    What the stream reads ahead (up to 256 KiB) is no longer there for
    ``input()`` or a child inheriting fd 0.  ``limit`` is the stream's
    default limit for ``readuntil`` and ``readline`` (its ``limit``
    property).

    Raises:
        OSError: fd 0 is closed (EBADF), or out of file descriptors.
        TypeError, ValueError: ``limit`` is not an int >= 1.

    Cancellation:
        At its checkpoint, before anything is opened.
    """
    limit = check_limit(limit)
    stream = await _open_std(0, writing=False)
    stream.limit = limit
    return stream


async def open_stdout() -> Union[PipeStream, ThreadFdStream]:
    """A send stream over this process's fd 1.  Flush ``sys.stdout``
    first if ``print`` wrote to it.  ``send_eof`` (or ``aclose``) closes
    only this stream's descriptor: the reader sees EOF once fd 1 is closed
    too (at exit, say)."""
    return await _open_std(1, writing=True)


async def open_stderr() -> Union[PipeStream, ThreadFdStream]:
    """A send stream over this process's fd 2 (as ``open_stdout``)."""
    return await _open_std(2, writing=True)


async def _open_std(fd: int, writing: bool) -> Union[PipeStream, ThreadFdStream]:
    get_bridge()  # made (or failing) before any fd exists
    await CHECKPOINT
    mode = os.fstat(fd).st_mode  # OSError (EBADF) if it is closed
    flags = (os.O_WRONLY if writing else os.O_RDONLY) | os.O_CLOEXEC | os.O_NONBLOCK
    path = None
    if stat.S_ISFIFO(mode):
        path = f"/proc/self/fd/{fd}"
    elif stat.S_ISCHR(mode) and os.isatty(fd):
        path = os.ttyname(fd)
        flags |= os.O_NOCTTY
    if path is not None:
        try:
            own = os.open(path, flags)
        except OSError:
            pass  # no /proc, or a pipe with no reader left (ENXIO): a thread
        else:
            return pipe_stream(own)
    own = os.dup(fd)
    try:
        return ThreadFdStream(own, readable=not writing, writable=writing)
    except BaseException:
        os.close(own)
        raise


# -- the threaded stream ------------------------------------------------------


class ThreadFdStream(BufferedReceiveMixin, Stream):
    """A stream over a descriptor that epoll cannot watch or that must stay
    blocking (a duplicate of fd 0/1/2): blocking reads and writes in a
    thread.  One direction, as made by ``open_stdin``/``open_stdout``/
    ``open_stderr``; the other raises ``io.UnsupportedOperation``.

    A cancelled receive loses nothing (the read in its thread goes on, and
    the next receive returns its bytes); a cancelled ``send_all`` still
    writes all of its data, in order before any later send.
    """

    def __init__(self, fd: int, *, readable: bool, writable: bool) -> None:
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._readable = readable
        self._writable = writable
        self._state = StreamState()  # the rules: pystream/_base/_state.py
        self._send_conflict = ConflictDetector("another task is already sending on this stream")
        self._receive_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )
        self._pushback = bytearray()
        self._reading: Optional[asyncio.Future[Optional[bytes]]] = None  # a read in its thread
        # A pipe: closing its write end stops a waiting read or a socket's
        # waiting write.  Made here, so
        # that running out of fds fails the open (OSError, documented), not
        # a receive (which may raise only stream errors).
        self._stop = os.pipe2(os.O_CLOEXEC)
        self._is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
        self._surplus = b""  # what a read got beyond what its caller asked
        self._writing: Optional[asyncio.Future[None]] = None  # a write in its thread
        self._waiter: Optional[asyncio.Future[None]] = None  # what a call waits on

    def __repr__(self) -> str:
        mode = "r" * self._readable + "w" * self._writable
        state = "closed" if self._state.closed else f"fd={self._fd}"
        return f"<pystream.ThreadFdStream {mode} {state}>"

    @property
    def readable(self) -> bool:
        return self._readable

    @property
    def writable(self) -> bool:
        return self._writable

    def fileno(self) -> int:
        return -1 if self._state.closed else self._fd

    async def _until(self, job: asyncio.Future[Any]) -> None:
        """Wait for a thread's job; ClosedResourceError if the stream is
        closed meanwhile.  A cancellation leaves the job running."""
        if job.done():
            await CHECKPOINT
        else:
            waiter = self._waiter = self._loop.create_future()

            def wake(_: Any) -> None:
                if not waiter.done():
                    waiter.set_result(None)

            job.add_done_callback(wake)
            try:
                await waiter
            finally:
                job.remove_done_callback(wake)
                self._waiter = None
        if self._state.closed:
            raise closed_during_call()

    # -- receiving ------------------------------------------------------------
    def _check_receive_open(self) -> None:
        if self._state.receive is not OPEN:
            raise self._state.receive_error()
        if not self._readable:
            raise io.UnsupportedOperation("this stream is not readable")

    async def _receive_raw(self, max_bytes: int) -> bytes:
        self._check_receive_open()
        if self._surplus:
            await CHECKPOINT
            self._check_receive_open()
            kept, self._surplus = self._surplus[:max_bytes], self._surplus[max_bytes:]
            return kept
        reading = self._reading
        if reading is None:
            await CHECKPOINT  # cancelled here, nothing was read
            self._check_receive_open()
            reading = self._reading = in_thread(
                self._loop,
                read_until_stopped,
                self._fd,
                max(min(max_bytes, _MAX_READ), _READ_SIZE),  # os.read allocates it
                self._stop[0],
                self._is_socket,
            )
        await self._until(reading)
        self._reading = None
        try:
            # (None: send_eof closed a two-way stream's fd under the read.)
            data = reading.result() or b""
        except OSError as exc:
            raise self._state.receive_failed(exc) from None
        self._surplus = data[max_bytes:]
        return data[:max_bytes]

    # -- sending --------------------------------------------------------------
    def _check_send(self) -> None:
        if self._state.closed:
            raise self._state.send_error()
        if not self._writable:
            raise io.UnsupportedOperation("this stream is not writable")
        self._state.check_send()

    async def _previous_write(self) -> None:
        """Wait for a write a cancelled send_all left running; raise if it
        failed."""
        writing = self._writing
        if writing is None:
            return
        await self._until(writing)
        self._writing = None
        exc = writing.exception()
        if isinstance(exc, OSError):
            raise self._state.send_failed(exc)

    async def send_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        if isinstance(data, str):
            raise TypeError("send_all needs bytes-like data, not str")
        payload = bytes(memoryview(data).cast("B"))  # the caller may reuse its buffer
        with self._send_conflict:
            self._check_send()
            await CHECKPOINT
            self._check_send()
            await self._previous_write()
            if not payload:
                return
            self._writing = in_thread(
                self._loop, write_until_stopped, self._fd, payload, self._stop[0], self._is_socket
            )
            await self._previous_write()

    write = send_all

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_conflict:
            self._check_send()
            await CHECKPOINT
            await self._previous_write()

    async def send_eof(self) -> None:
        """No more sending: closes this stream's descriptor once what was
        sent is written (for a duplicate of fd 1, the reader sees EOF once
        fd 1 is closed too).  Idempotent."""
        with self._send_conflict:
            if self._state.send is EOF_SENT:
                await CHECKPOINT
                return
            self._check_send()
            await CHECKPOINT
            await self._previous_write()
            if self._state.send_eof():  # (sent meanwhile: nothing to do)
                self._close_fd()

    # -- closing --------------------------------------------------------------
    async def aclose(self) -> None:
        """Close: what send_all accepted is written first (waiting at most
        5 s for it); cancelled, it closes at once and re-raises."""
        if self._state.closed:
            await CHECKPOINT
            return
        try:
            writing = self._writing
            if writing is not None and not writing.done():
                # (A failed write is not this call's error: it is closing.)
                await asyncio.wait([writing], timeout=_CLOSE_TIMEOUT)
            else:
                await CHECKPOINT
        finally:
            self._close_now()

    def _send_guard(self) -> ConflictDetector:
        return self._send_conflict

    def _close_now(self) -> None:
        if not self._state.close():
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)  # wakes into ClosedResourceError
        self._close_fd()

    def _close_fd(self) -> None:
        """Close our descriptor, unless a thread still uses it: then it is
        pointed at /dev/null now (so it can never name another file), a
        read waiting for input is stopped, and both are closed when the
        thread is done with them."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        (stop_r, stop_w), self._stop = self._stop, (-1, -1)
        owned = [fd] if stop_r < 0 else [fd, stop_r]
        for job in (self._reading, self._writing):
            if job is not None:
                job.add_done_callback(_retrieve)  # its outcome is moot now
        busy = [j for j in (self._reading, self._writing) if j is not None and not j.done()]
        if busy:
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            os.dup2(null, fd, inheritable=False)
            os.close(null)
        if stop_w >= 0:
            os.close(stop_w)  # after the dup2: a read that starts anyway gets EOF
        if not busy:
            for owned_fd in owned:
                os.close(owned_fd)
            return
        remaining = len(busy)

        def done(_: Any) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                for owned_fd in owned:
                    os.close(owned_fd)

        for job in busy:
            job.add_done_callback(done)


def _retrieve(job: asyncio.Future[Any]) -> None:
    if not job.cancelled():
        job.exception()
