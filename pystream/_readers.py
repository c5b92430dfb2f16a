"""The asyncio reading helpers for streams that receive through Python.

``BufferedReceiveMixin`` gives a stream ``receive_some``, ``receive_into``,
``readexactly``, ``readuntil`` and ``read`` on top of one primitive,
``_receive_raw``, plus a pushback buffer for what a helper read past what it
returned.  ``SocketStream`` does not use it: its buffer lives in C.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Optional

from ._errors import ConflictDetector
from ._util import CHECKPOINT

__all__ = [
    "BufferedReceiveMixin",
    "check_max_bytes",
    "MAX_RECEIVE_SIZE",
    "check_readuntil_args",
    "DEFAULT_RECEIVE_SIZE",
]

DEFAULT_RECEIVE_SIZE = 65536


# The most one receive asks of a buffer (what a C size fits, with room).
MAX_RECEIVE_SIZE = 1 << 62


def check_max_bytes(max_bytes: Optional[int]) -> int:
    """Validate receive_some's argument: None, or an integer >= 1 (one
    above MAX_RECEIVE_SIZE asks for no more than that: a receive returns
    what is there, which is never more)."""
    if max_bytes is None:
        return DEFAULT_RECEIVE_SIZE
    if type(max_bytes) is not int:
        try:
            max_bytes = operator.index(max_bytes)
        except TypeError:
            raise TypeError(
                f"max_bytes must be an integer or None, not {type(max_bytes).__name__}"
            ) from None
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
    return min(max_bytes, MAX_RECEIVE_SIZE)


def check_readuntil_args(separator: bytes, limit: int) -> tuple[bytes, int]:
    """Validate readuntil's arguments: a non-empty bytes-like separator and
    an integer limit >= 1."""
    if not isinstance(separator, (bytes, bytearray, memoryview)):
        raise TypeError("separator must be bytes-like")
    sep = bytes(separator)
    if not sep:
        raise ValueError("Separator should be at least one-byte string")
    limit = operator.index(limit)
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return sep, limit


class BufferedReceiveMixin:
    """Reading helpers over ``_receive_raw``.

    The class using it sets ``_receive_conflict`` (a ``ConflictDetector``)
    and ``_pushback`` (a ``bytearray``), and implements:

    - ``_check_receive_open()``: raise if receiving is no longer allowed;
    - ``async _receive_raw(max_bytes)``: one checkpoint, then 1..max_bytes
      bytes or ``b""`` at EOF, losing nothing if cancelled.
    """

    _receive_conflict: ConflictDetector
    _pushback: bytearray

    def _check_receive_open(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _receive_raw(self, max_bytes: int) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def _take(self, n: int) -> bytes:
        data = bytes(self._pushback[:n])
        del self._pushback[:n]
        return data

    async def _fill(self) -> bool:
        """Receive more into the pushback buffer; False at EOF."""
        chunk = await self._receive_raw(DEFAULT_RECEIVE_SIZE)
        self._pushback += chunk
        return bool(chunk)

    async def _buffered_checkpoint(self) -> None:
        self._check_receive_open()
        await CHECKPOINT
        self._check_receive_open()

    async def receive_some(self, max_bytes: Optional[int] = None) -> bytes:
        max_bytes = check_max_bytes(max_bytes)
        with self._receive_conflict:
            if self._pushback:
                await self._buffered_checkpoint()
                return self._take(max_bytes)
            return await self._receive_raw(max_bytes)

    async def readexactly(self, n: int) -> bytes:
        n = operator.index(n)
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        with self._receive_conflict:
            if len(self._pushback) >= n:
                await self._buffered_checkpoint()
            while len(self._pushback) < n:
                if not await self._fill():
                    raise asyncio.IncompleteReadError(self._take(n), n)
            return self._take(n)

    async def readuntil(self, separator: bytes = b"\n", *, limit: int = 65536) -> bytes:
        sep, limit = check_readuntil_args(separator, limit)
        with self._receive_conflict:
            offset = 0
            checkpointed = False
            while True:
                found = self._pushback.find(sep, offset)
                if found >= 0:
                    if found > limit:
                        raise asyncio.LimitOverrunError(
                            "Separator is found, but chunk is longer than limit",
                            found,
                        )
                    if not checkpointed:
                        await self._buffered_checkpoint()
                    return self._take(found + len(sep))
                offset = max(0, len(self._pushback) + 1 - len(sep))
                if offset > limit:
                    raise asyncio.LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit",
                        offset,
                    )
                checkpointed = True
                if not await self._fill():
                    partial = self._take(len(self._pushback))
                    raise asyncio.IncompleteReadError(partial, None)

    async def readline(self) -> bytes:
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    async def read(self, n: int = -1) -> bytes:
        n = operator.index(n)
        if n == 0:
            with self._receive_conflict:
                await self._buffered_checkpoint()
                return b""
        if n > 0:
            return await self.receive_some(n)
        with self._receive_conflict:
            if not self._pushback:
                await self._fill()
            else:
                await self._buffered_checkpoint()
            while await self._fill():
                pass
            return self._take(len(self._pushback))
