"""pystream streams under anyio's interface (pystream.interop)."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.text import TextStream

import pystream
from pystream.interop import as_anyio_stream

from helpers import PAIR_KINDS, make_pair


@pytest.mark.parametrize("kind", PAIR_KINDS)
async def test_anyio_helpers_run_over_a_pystream_stream(kind):
    a, b = await make_pair(kind)
    client, server = as_anyio_stream(a), as_anyio_stream(b)
    assert isinstance(client, anyio.abc.ByteStream)
    async with client, server:
        await client.send(b"first line\nsecond")
        await client.send_eof()
        buffered = BufferedByteReceiveStream(server)
        assert await buffered.receive_until(b"\n", 100) == b"first line"
        assert await buffered.receive_exactly(6) == b"second"
        with pytest.raises(anyio.EndOfStream):
            await buffered.receive()
        text = TextStream(server)
        await text.send("héllo")
        assert await TextStream(client).receive() == "héllo"


async def test_anyio_errors_are_anyio_errors():
    a, b = await pystream.open_stream_pair()
    client, server = as_anyio_stream(a), as_anyio_stream(b)
    await client.aclose()
    with pytest.raises(anyio.ClosedResourceError) as info:
        await client.send(b"x")
    assert isinstance(info.value.__cause__, pystream.ClosedResourceError)
    with pytest.raises(anyio.EndOfStream):
        await server.receive()
    with pytest.raises(anyio.BrokenResourceError):
        for _ in range(100):
            await server.send(b"y" * 65536)
    await server.aclose()


async def test_anyio_busy_is_anyio_busy():
    import asyncio

    a, b = await pystream.open_stream_pair()
    client = as_anyio_stream(a)
    async with client:
        receiving = asyncio.ensure_future(client.receive())
        await asyncio.sleep(0)
        with pytest.raises(anyio.BusyResourceError):
            await client.receive()
        await b.send_all(b"z")
        assert await receiving == b"z"
        await b.aclose()
