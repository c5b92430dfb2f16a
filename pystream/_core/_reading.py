"""The asyncio reading helpers on the C receive buffer: the separator
search, the counts and the copies happen in C, and data leaves the buffer
only when a call returns it (a cancelled call has taken nothing)."""

from __future__ import annotations

import asyncio
import operator
from typing import Any, Union

from .._binding import UV_EOF, ffi, lib
from .._readers import check_readuntil_args
from .._util import CHECKPOINT

__all__ = ["CReadingMixin"]


class CReadingMixin:
    """``receive_into``, ``readexactly``, ``readuntil`` and ``read`` for
    ``CoreStream``, over its ``_wait_readable`` and ``_take``."""

    __slots__ = ()
    _h: Any
    _bridge: Any
    _recv_conflict: Any

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
        with self._recv_conflict:
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

    async def readexactly(self, n: int) -> bytes:
        n = operator.index(n)
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        with self._recv_conflict:
            if n == 0:  # as asyncio's: nothing to wait for
                self._check_open()
                await CHECKPOINT
                return b""
            await self._wait_readable(n)
            ptr = self._h.ptr
            if lib.ps_stream_buffered(ptr) >= n:
                return self._take(n) if n else b""
            status = lib.ps_stream_read_status(ptr)
            if status != UV_EOF:
                raise self._broken_receive(status)
            partial = self._take(n)
            raise asyncio.IncompleteReadError(partial, n)

    async def readuntil(self, separator: bytes = b"\n", *, limit: int = 65536) -> bytes:
        sep, limit = check_readuntil_args(separator, limit)
        with self._recv_conflict:
            offset = 0
            want = len(sep)
            while True:
                await self._wait_readable(want)
                ptr = self._h.ptr
                found = lib.ps_stream_find(ptr, sep, len(sep), offset)
                if found >= 0:
                    if found > limit:
                        raise asyncio.LimitOverrunError(
                            "Separator is found, but chunk is longer than limit",
                            found,
                        )
                    return self._take(found + len(sep))
                buffered = lib.ps_stream_buffered(ptr)
                offset = max(0, buffered + 1 - len(sep))
                if offset > limit:
                    raise asyncio.LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit",
                        offset,
                    )
                status = lib.ps_stream_read_status(ptr)
                if status == UV_EOF:
                    partial = self._take(buffered) if buffered else b""
                    raise asyncio.IncompleteReadError(partial, None)
                if status < 0:
                    raise self._broken_receive(status)
                want = buffered + 1

    async def read(self, n: int = -1) -> bytes:
        n = operator.index(n)
        with self._recv_conflict:
            if n == 0:
                self._check_open()
                await CHECKPOINT
                return b""
            if n > 0:
                await self._wait_readable(1)
                return self._take(n)
            # Everything stays in the C buffer until EOF, then goes out in
            # one piece: cancelled on the way, the call has taken nothing.
            want = 1
            while True:
                await self._wait_readable(want)
                ptr = self._h.ptr
                status = lib.ps_stream_read_status(ptr)
                buffered = lib.ps_stream_buffered(ptr)
                if status == UV_EOF:
                    return self._take(buffered) if buffered else b""
                if status < 0:
                    raise self._broken_receive(status)
                want = buffered + 1
