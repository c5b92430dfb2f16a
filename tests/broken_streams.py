"""Deliberately broken streams: the conformance suite and the state machine
must catch each one."""

from __future__ import annotations

import asyncio

from pystream._base._errors import ConflictDetector
from pystream.testing import memory_stream_pair
from pystream.testing._memory import MemoryStream


def maker_of(cls):
    async def maker():
        a, b = memory_stream_pair()
        a.__class__ = cls
        b.__class__ = cls
        return a, b

    return maker


class NoCheckpointOnFastPath(MemoryStream):
    async def receive_some(self, max_bytes=None):
        if self._in.data:  # buffered: return at once, without yielding
            n = max_bytes or 65536
            chunk = bytes(self._in.data[:n])
            del self._in.data[:n]
            return chunk
        return await super().receive_some(max_bytes)


class YieldsOnlyWhenCancelled(MemoryStream):
    """A cancel point at every call, but a schedule point never on its fast
    path: a task sending in a loop starves every other task."""

    async def send_all(self, data):
        task = asyncio.current_task()
        if task._must_cancel:
            await asyncio.sleep(0)  # the pending cancellation is raised here
        with self._send_conflict:
            self._check_send()
            self._out.data += data
            self._out.wake_reader()


class LosesDataOnClose(MemoryStream):
    async def aclose(self):
        self._out.data.clear()  # drops what the peer has not read
        self._close_now()
        await asyncio.sleep(0)


class ForcefulCloseLosesData(MemoryStream):
    """aclose_forcefully as a reset: what send_all accepted is destroyed."""

    def _close_now(self):
        self._out.data.clear()
        MemoryStream._close_now(self)

    async def aclose(self):  # graceful: correct
        MemoryStream._close_now(self)
        await asyncio.sleep(0)


class NoBusyDetection(MemoryStream):
    def __setattr__(self, name, value):
        if name in ("_send_conflict", "_receive_conflict"):
            value = _NeverBusy("")
        super().__setattr__(name, value)


class _NeverBusy(ConflictDetector):
    def __enter__(self):
        pass


class EmptyBeforeEof(MemoryStream):
    async def _receive_raw(self, max_bytes):
        if not self._in.data and not self._in.eof:
            await asyncio.sleep(0)
            return b""  # wrong: b"" means EOF
        return await super()._receive_raw(max_bytes)


class CancelledReceiveDropsData(MemoryStream):
    """Takes the data, then yields: cancelled there, the data is gone."""

    async def _receive_raw(self, max_bytes):
        data = await super()._receive_raw(max_bytes)
        await asyncio.sleep(0)
        return data


class LosesLastByteOfLargeSends(MemoryStream):
    async def send_all(self, data):
        if len(data) >= 65536:
            data = bytes(data)[:-1]
        await super().send_all(data)


class AcloseHangsWhenCancelled(MemoryStream):
    async def aclose(self):
        await asyncio.sleep(0)  # cancelled here, it never closes
        self._close_now()


class AcloseClosesNothing(MemoryStream):
    """An aclose that returns at once, closing nothing: the kit used to
    call it "not a checkpoint", the symptom, not the fault."""

    async def aclose(self):
        pass


def no_busy_maker():
    async def maker():
        a, b = memory_stream_pair()
        for end in (a, b):
            end._send_conflict = _NeverBusy("")
            end._receive_conflict = _NeverBusy("")
        return a, b

    return maker


BROKEN = {
    "no-checkpoint": maker_of(NoCheckpointOnFastPath),
    "loses-data": maker_of(LosesDataOnClose),
    "never-yields": maker_of(YieldsOnlyWhenCancelled),
    "no-busy": no_busy_maker(),
    "empty-before-eof": maker_of(EmptyBeforeEof),
    "aclose-cancel": maker_of(AcloseHangsWhenCancelled),
    "aclose-closes-nothing": maker_of(AcloseClosesNothing),
    "forceful-loses-data": maker_of(ForcefulCloseLosesData),
    "cancelled-receive-drops-data": maker_of(CancelledReceiveDropsData),
    "loses-last-byte": maker_of(LosesLastByteOfLargeSends),
}


# Byte k of the stream is XORed with (k * 31 + 7) & 0xFF, which repeats
# every 256 bytes: the key of 256 + one period, to slice from any position.
_KEY = bytes((k * 31 + 7) & 0xFF for k in range(512))


def _xor(data: bytes, position: int) -> bytes:
    """A rolling key: byte k of the stream is XORed with a function of k
    (whole integers at once: the machine sends several MiB)."""
    n = len(data)
    if not n:
        return b""
    start = position % 256
    key = (_KEY[start : start + 256] * (n // 256 + 1))[:n]
    mixed = int.from_bytes(data, "little") ^ int.from_bytes(key, "little")
    return mixed.to_bytes(n, "little")


class KeyAdvancedBeforeSend:
    """A wrapper stream (a rolling-key XOR over a memory stream) that moves
    its key position before awaiting the inner send_all: a send cancelled
    at that await sends nothing, yet the key moved, so every later byte
    arrives garbled (the faults issue's new user found this one)."""

    def __init__(self, inner):
        self._inner = inner
        self._send_position = 0
        self._receive_position = 0

    async def send_all(self, data):
        data = bytes(data)
        position = self._send_position
        self._send_position += len(data)  # the bug: before the send is done
        await self._inner.send_all(_xor(data, position))

    async def wait_send_all_might_not_block(self):
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self):
        await self._inner.send_eof()

    async def receive_some(self, max_bytes=None):
        data = await self._inner.receive_some(max_bytes)
        plain = _xor(data, self._receive_position)
        self._receive_position += len(data)
        return plain

    async def aclose(self):
        await self._inner.aclose()

    def _close_now(self):
        self._inner._close_now()


async def key_advanced_maker():
    a, b = memory_stream_pair()
    return KeyAdvancedBeforeSend(a), KeyAdvancedBeforeSend(b)


BROKEN["key-advanced-before-send"] = key_advanced_maker
