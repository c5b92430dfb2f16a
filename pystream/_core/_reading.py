"""The C receive buffer under the asyncio reading helpers: the separator
search, the counts and the copies happen in C, and data leaves the buffer
only when a call returns it (a cancelled call has taken nothing)."""

from __future__ import annotations

from typing import Any, Union

from .._base._checkpoint import CHECKPOINT
from .._base._readers import ReadingHelpers
from .._base._state import OPEN, StreamState
from .._binding import UV_EOF, ffi, lib

__all__ = ["CReadingMixin"]


class CReadingMixin(ReadingHelpers):
    """``receive_into`` and the C receive buffer under the reading helpers
    (``readexactly``, ``readuntil``, ``readline``, ``read``: written once,
    in ``_readers``) for ``CoreStream``, over its ``_wait_readable`` and
    ``_take``."""

    __slots__ = ()
    _h: Any
    _bridge: Any
    _receive_conflict: Any
    _state: StreamState

    async def _wait_readable(self, want: int) -> None:
        raise NotImplementedError

    def _take(self, n: int) -> bytes:
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError

    def _broken_receive(self, code: int) -> Exception:
        raise NotImplementedError

    async def receive_into(self, buffer: Union[bytearray, memoryview]) -> int:
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError("receive_into needs a writable buffer")
        if not view.c_contiguous:
            # TypeError, as socket.recv_into and readinto raise.
            raise TypeError("receive_into needs a contiguous buffer")
        if view.nbytes == 0:
            raise ValueError("receive_into needs a non-empty buffer")
        with self._receive_conflict:
            await self._wait_readable(1)
            target = ffi.from_buffer(view, require_writable=True)
            try:
                got = lib.ps_stream_take_into(self._h.ptr, target, view.nbytes)
            finally:
                ffi.release(target)
            if got > 0:
                self._bridge.poke()
                return int(got)
            if got == UV_EOF:
                return 0
            raise self._broken_receive(got)

    def receive_ready(self) -> bool:
        """Whether a receive would return (or raise) at once: bytes are
        buffered, or the C core has recorded the end of the stream or a
        read error, or the stream is closed.  Two C calls, no system call.

        The core reads as soon as a stream is connected, whether or not a
        task receives, and stops only when its buffer is full (ready then)
        or reading ended (ready then): so an idle connection's peer closing
        it, or sending something, shows here once the event loop has run
        the libuv pass that read it.  False does not promise that a receive
        would wait: the kernel may hold what that pass has not read yet.
        """
        ptr = self._h.ptr
        if ptr is None or self._state.receive is not OPEN:
            return True
        return bool(lib.ps_stream_buffered(ptr) or lib.ps_stream_read_status(ptr))

    # -- the buffer under the reading helpers (_readers.ReadingHelpers) ----
    async def _wait_buffered(self, want: int) -> bool:
        if want <= 0:  # (the C call's 0 means "its usual amount")
            self._check_open()
            await CHECKPOINT
            return True
        await self._wait_readable(want)
        ptr = self._h.ptr
        if lib.ps_stream_buffered(ptr) >= want:
            return True
        status = lib.ps_stream_read_status(ptr)
        if status == UV_EOF:
            return False
        if status < 0:
            raise self._broken_receive(status)
        return True  # (reading goes on: _wait_readable returned early)

    def _buffered(self) -> int:
        return int(lib.ps_stream_buffered(self._h.ptr))

    def _find(self, separator: bytes, offset: int) -> int:
        return int(lib.ps_stream_find(self._h.ptr, separator, len(separator), offset))
