"""The asyncio reading helpers for streams that receive through Python.

``BufferedReceiveMixin`` gives a stream ``receive_some``, ``receive_into``,
``readexactly``, ``readuntil`` and ``read`` on top of one primitive,
``_receive_raw``, plus a pushback buffer for what a helper read past what it
returned.  ``SocketStream`` does not use it: its buffer lives in C.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Awaitable, Callable, Optional

from ._checkpoint import CHECKPOINT
from ._errors import ConflictDetector
from ._state import closed_error

__all__ = [
    "BufferedReceiveMixin",
    "PushbackReader",
    "ReadingHelpers",
    "check_max_bytes",
    "MAX_RECEIVE_SIZE",
    "check_readuntil_args",
    "DEFAULT_RECEIVE_SIZE",
    "DEFAULT_LIMIT",
    "check_limit",
]

DEFAULT_RECEIVE_SIZE = 65536

# readuntil's and readline's limit when neither the call nor the stream's
# opener gave one: asyncio's (open_connection's and start_server's limit).
DEFAULT_LIMIT = 65536


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


def check_limit(limit: int) -> int:
    """Validate a limit of readuntil and readline (a call's, or a stream's
    default given to an opener): an integer >= 1 (not a bool)."""
    if type(limit) is not int:
        if isinstance(limit, bool):
            raise TypeError("limit must be an integer, not bool")
        try:
            limit = operator.index(limit)
        except TypeError:
            raise TypeError(f"limit must be an integer, not {type(limit).__name__}") from None
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    return limit


def check_readuntil_args(separator: bytes, limit: int) -> tuple[bytes, int]:
    """Validate readuntil's arguments: a non-empty bytes-like separator and
    an integer limit >= 1."""
    if not isinstance(separator, (bytes, bytearray, memoryview)):
        raise TypeError("separator must be bytes-like")
    sep = bytes(separator)
    if not sep:
        raise ValueError("Separator should be at least one-byte string")
    return sep, check_limit(limit)


class ReadingHelpers:
    """asyncio's reading helpers (``readexactly``, ``readuntil``,
    ``readline``, ``read``), written once, over a receive buffer that the
    class provides: the C core's (``CoreStream``) or a pushback buffer
    filled by ``receive_some``'s path (``BufferedReceiveMixin``).

    The buffer's primitives (no call takes data out but ``_take``, so a
    cancelled helper has taken nothing):

    - ``async _wait_buffered(want) -> bool``: a checkpoint; True once
      ``want`` bytes are buffered, False if the stream ended (EOF) with
      fewer; raises the stream error if receiving failed, or closed;
    - ``_buffered() -> int``, ``_find(separator, offset) -> int`` (-1 if
      not there), ``_take(n) -> bytes`` (1 <= n <= buffered);
    - ``receive_ready() -> bool``: whether a receive would return (or
      raise) at once, without a system call.

    The stream's default limit of ``readuntil`` and ``readline`` is its
    ``limit`` property, stored in ``_limit`` (a slot of ``CoreStream``, a
    class default of ``BufferedReceiveMixin``); openers set it.
    """

    __slots__ = ()
    _receive_conflict: ConflictDetector
    _limit: int

    @property
    def limit(self) -> int:
        """The limit ``readuntil`` and ``readline`` use when the call gives
        none: 65536 (asyncio's), unless the stream's opener was given
        ``limit=``.  Settable (an integer >= 1: ``TypeError`` or
        ``ValueError`` otherwise); a call's own ``limit=`` overrides it."""
        try:
            return self._limit
        except AttributeError:  # (a CoreStream made by no opener)
            return DEFAULT_LIMIT

    @limit.setter
    def limit(self, value: int) -> None:
        # (ReadingHelpers has no slots: the class using it holds _limit.)
        self._limit = check_limit(value)  # type: ignore[misc]

    def receive_ready(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _wait_buffered(self, want: int) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _buffered(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _find(self, separator: bytes, offset: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _take(self, n: int) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    async def receive_some(self, max_bytes: Optional[int] = None) -> bytes:
        raise NotImplementedError  # pragma: no cover - the class has its own

    def _take_all(self) -> bytes:
        n = self._buffered()
        return self._take(n) if n else b""

    async def readexactly(self, n: int) -> bytes:
        n = operator.index(n)
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        with self._receive_conflict:
            if await self._wait_buffered(n):
                return self._take(n) if n else b""
            raise asyncio.IncompleteReadError(self._take_all(), n)

    async def readuntil(self, separator: bytes = b"\n", *, limit: Optional[int] = None) -> bytes:
        sep, limit = check_readuntil_args(separator, self.limit if limit is None else limit)
        with self._receive_conflict:
            offset = 0
            want = len(sep)
            while True:
                more = await self._wait_buffered(want)
                found = self._find(sep, offset)
                if found >= 0:
                    if found > limit:
                        raise asyncio.LimitOverrunError(
                            "Separator is found, but chunk is longer than limit", found
                        )
                    return self._take(found + len(sep))
                buffered = self._buffered()
                # The separator may start in the last len(sep) - 1 bytes.
                offset = max(0, buffered + 1 - len(sep))
                if offset > limit:
                    raise asyncio.LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit", offset
                    )
                if not more:
                    raise asyncio.IncompleteReadError(self._take_all(), None)
                want = buffered + 1

    async def readline(self, *, limit: Optional[int] = None) -> bytes:
        try:
            return await self.readuntil(b"\n", limit=limit)
        except asyncio.IncompleteReadError as exc:
            return exc.partial  # asyncio's: the last line without its newline

    async def read(self, n: int = -1) -> bytes:
        n = operator.index(n)
        if n > 0:
            return await self.receive_some(n)
        with self._receive_conflict:
            if n == 0:
                await self._wait_buffered(0)
                return b""
            # Everything stays buffered until EOF, then goes out in one
            # piece: cancelled on the way, the call has taken nothing.
            want = 1
            while await self._wait_buffered(want):
                want = self._buffered() + 1
            return self._take_all()


class BufferedReceiveMixin(ReadingHelpers):
    """``receive_some`` and the reading helpers over ``_receive_raw``,
    with a pushback buffer for what a helper received beyond what it
    returned.

    The class using it sets ``_receive_conflict`` (a ``ConflictDetector``)
    and ``_pushback`` (a ``bytearray``), and implements:

    - ``_check_receive_open()``: raise if receiving is no longer allowed;
    - ``async _receive_raw(max_bytes)``: one checkpoint, then 1..max_bytes
      bytes or ``b""`` at EOF, losing nothing if cancelled.
    """

    _pushback: bytearray
    _limit = DEFAULT_LIMIT  # (an opener's limit= goes in the instance)

    def _check_receive_open(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def receive_ready(self) -> bool:
        """True if a receive would return at once from what this stream
        holds itself (its pushback buffer), or raise at once (closed).
        What its transport holds is not looked at."""
        if self._pushback:
            return True
        try:
            self._check_receive_open()
        except Exception:
            return True
        return False

    async def _receive_raw(self, max_bytes: int) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def _take(self, n: int) -> bytes:
        data = bytes(self._pushback[:n])
        del self._pushback[:n]
        return data

    def _buffered(self) -> int:
        return len(self._pushback)

    def _find(self, separator: bytes, offset: int) -> int:
        return self._pushback.find(separator, offset)

    async def _wait_buffered(self, want: int) -> bool:
        if len(self._pushback) >= want:
            await self._buffered_checkpoint()
            return True
        while len(self._pushback) < want:
            chunk = await self._receive_raw(DEFAULT_RECEIVE_SIZE)
            if not chunk:
                return False
            self._pushback += chunk
        return True

    async def _buffered_checkpoint(self) -> None:
        self._check_receive_open()
        await CHECKPOINT
        self._check_receive_open()

    async def receive_some(self, max_bytes: Optional[int] = None) -> bytes:
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        elif type(max_bytes) is not int or not 1 <= max_bytes <= MAX_RECEIVE_SIZE:
            max_bytes = check_max_bytes(max_bytes)
        # (The conflict detector by hand: a hot path of TLS and the other
        # streams over Python buffers; two calls fewer than ``with``.)
        busy = self._receive_conflict
        if busy.held:
            raise busy.busy()
        busy.held = True
        try:
            if self._pushback:
                await self._buffered_checkpoint()
                return self._take(max_bytes)
            return await self._receive_raw(max_bytes)
        finally:
            busy.held = False


class PushbackReader(BufferedReceiveMixin):
    """The reading helpers of a user's ``pystream.abc.Stream`` subclass
    that has only ``receive_some`` (``Stream``'s defaults use one per
    stream): ``raw_receive`` is that stream's own ``receive_some``, and
    what the helpers read ahead waits in the pushback buffer, which the
    stream's ``receive_some`` (wrapped by ``Stream.__init_subclass__``)
    returns first."""

    def __init__(self, raw_receive: Callable[[int], Awaitable[bytes]]) -> None:
        self._raw_receive = raw_receive
        self._receive_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )
        self._pushback = bytearray()
        self.closed = False

    def _check_receive_open(self) -> None:
        if self.closed:
            raise closed_error()

    async def _receive_raw(self, max_bytes: int) -> bytes:
        return await self._raw_receive(max_bytes)

    def serves_first(self) -> bool:
        """Whether a receive must go through this reader: it holds bytes
        read ahead, or one of its helpers is running (and is busy)."""
        return bool(self._pushback) or self._receive_conflict.held

    def close(self) -> None:
        self.closed = True
        self._pushback.clear()
