"""Deliberately broken streams: the conformance suite and the state machine
must catch each one."""

from __future__ import annotations

import asyncio

from pystream._errors import ConflictDetector
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
    "no-busy": no_busy_maker(),
    "empty-before-eof": maker_of(EmptyBeforeEof),
    "aclose-cancel": maker_of(AcloseHangsWhenCancelled),
    "forceful-loses-data": maker_of(ForcefulCloseLosesData),
    "cancelled-receive-drops-data": maker_of(CancelledReceiveDropsData),
    "loses-last-byte": maker_of(LosesLastByteOfLargeSends),
}
