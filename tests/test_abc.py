"""pystream.abc: every Stream has a fallible send_eof (trio#823)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import pystream
from pystream.abc import HalfCloseableStream, Stream


def test_every_stream_has_send_eof():
    assert HalfCloseableStream is Stream
    assert "send_eof" in Stream.__dict__
    from pystream.testing import MemoryStream

    for cls in (
        pystream.SocketStream,
        pystream.TLSStream,
        pystream.StapledStream,
        pystream.AsyncioStream,
        MemoryStream,
    ):
        assert issubclass(cls, Stream)
        # Each of pystream's streams can half-close: none keeps the default.
        assert cls.send_eof is not Stream.send_eof, cls


async def test_default_send_eof_raises_not_implemented():
    class Minimal(Stream):
        async def send_all(self, data):
            pass

        async def wait_send_all_might_not_block(self):
            pass

        async def receive_some(self, max_bytes=None):
            return b""

        async def readexactly(self, n):
            return b""

        async def readuntil(self, separator=b"\n", *, limit=65536):
            return b""

        async def read(self, n=-1):
            return b""

        async def aclose(self):
            pass

    with pytest.raises(NotImplementedError):
        await Minimal().send_eof()


class OneChunk(Stream):
    """The least a Stream needs, receiving b"data" once, then EOF: the
    defaults of pystream.abc do the rest."""

    def __init__(self):
        self.data = b"data"

    async def send_all(self, data):
        pass

    async def wait_send_all_might_not_block(self):
        pass

    async def receive_some(self, max_bytes=None):
        data, self.data = self.data[:max_bytes], self.data[max_bytes:]
        return data

    async def readexactly(self, n):
        return b""

    async def readuntil(self, separator=b"\n", *, limit=65536):
        return b""

    async def read(self, n=-1):
        return b""

    async def aclose(self):
        pass


async def test_default_receive_into_rejects_what_socket_streams_reject():
    # The same errors as a SocketStream's receive_into (tests/test_socket.py)
    # and as socket.recv_into: TypeError for a read-only or non-contiguous
    # buffer, ValueError for an empty one; none takes any data.
    stream = OneChunk()
    with pytest.raises(TypeError, match="contiguous"):
        await stream.receive_into(memoryview(bytearray(8))[::2])
    with pytest.raises(TypeError, match="writable"):
        await stream.receive_into(b"read-only")
    with pytest.raises(ValueError):
        await stream.receive_into(bytearray())
    buffer = bytearray(8)
    assert await stream.receive_into(buffer) == 4
    assert buffer[:4] == b"data"
    assert "contiguous" in Stream.receive_into.__doc__


def test_aclose_forcefully_documents_raises_and_cancellation():
    # The sections every public call's docstring has (see pystream.abc).
    # (inspect.getdoc: Python 3.13 strips docstrings' indentation itself.)
    doc = inspect.getdoc(pystream.aclose_forcefully)
    assert "\nRaises:\n" in doc
    assert "\nCancellation:\n" in doc


class Xor(Stream):
    """A user's own stream with only the primitives (a fixed-key XOR over
    a memory stream): the reading helpers come from pystream.abc.Stream."""

    def __init__(self, inner):
        self.inner = inner

    async def send_all(self, data):
        await self.inner.send_all(bytes(b ^ 0x5A for b in bytes(data)))

    async def wait_send_all_might_not_block(self):
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self):
        await self.inner.send_eof()

    async def receive_some(self, max_bytes=None):
        return bytes(b ^ 0x5A for b in await self.inner.receive_some(max_bytes))

    async def aclose(self):
        await self.inner.aclose()


async def xor_pair():
    from pystream.testing import memory_stream_pair

    a, b = memory_stream_pair()
    return Xor(a), Xor(b)


async def test_a_subclass_with_only_the_primitives_gets_working_reading_helpers():
    a, b = await xor_pair()
    async with a, b:
        await a.send_all(b"first line\nsecond\nrest-of-it")
        assert await b.readline() == b"first line\n"
        # What readline read ahead comes back through receive_some first.
        assert await b.receive_some(3) == b"sec"
        assert await b.readuntil(b"\n") == b"ond\n"
        assert await b.readexactly(4) == b"rest"
        with pytest.raises(asyncio.LimitOverrunError):
            await b.readline(limit=2)
        await a.send_eof()
        assert await b.read() == b"-of-it"  # the overrun kept the data
        assert await b.receive_some() == b""
    with pytest.raises(pystream.ClosedResourceError):
        await b.receive_some()


async def test_a_subclass_with_only_the_primitives_passes_the_conformance_kit():
    from pystream.testing import check_half_closeable_stream

    await check_half_closeable_stream(xor_pair, None)
