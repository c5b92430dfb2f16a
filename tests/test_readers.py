"""The asyncio reading helpers (readexactly, readuntil, readline, read) of
the streams that receive through Python (pystream/_base/_readers.py): memory,
stapled, asyncio-adapter and TLS streams."""

from __future__ import annotations

import asyncio

import pytest

import pystream
from pystream.testing import memory_stream_pair

from helpers import wait_until
from test_asyncio_stream import asyncio_pair
from test_tls import handshaken, memory_maker, tls_over

KINDS = ["memory", "stapled", "asyncio", "tls"]
# The kinds whose receive side can deliver a byte at a time
# (max_receive_chunk of the memory stream underneath).
CHUNKABLE = ["memory", "stapled", "tls"]


async def make(kind):
    """(sender, receiver, the memory stream the receiver reads from, or
    None)."""
    if kind == "memory":
        a, b = memory_stream_pair()
        return a, b, b
    if kind == "stapled":
        a_out, b_in = memory_stream_pair()
        b_out, a_in = memory_stream_pair()
        return (pystream.StapledStream(a_out, a_in), pystream.StapledStream(b_out, b_in), b_in)
    if kind == "asyncio":
        a, b = await asyncio_pair()
        return a, b, None
    a, b = await handshaken(tls_over(memory_maker))()
    return a, b, b.transport_stream


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture(params=CHUNKABLE)
def chunkable_kind(request):
    return request.param


async def trickle(sender, receiver, data: bytes) -> None:
    """Send data a byte at a time, each once the receiver (blocked in a
    reading helper) has taken the previous one into its buffer: every
    byte arrives in a receive of its own."""
    for i in range(len(data)):
        await sender.send_all(data[i : i + 1])
        await wait_until(lambda sent=data[: i + 1]: receiver._pushback == sent, f"byte {i}")


async def test_readuntil_limit_overrun_keeps_the_data(kind):
    a, b, _ = await make(kind)
    async with a, b:
        await a.send_all(b"x" * 300)
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await b.readuntil(b"\n", limit=100)
        assert info.value.consumed > 100
        await a.send_all(b"\nrest")
        await a.send_eof()
        assert await b.read() == b"x" * 300 + b"\nrest"  # nothing was lost


async def test_readuntil_separator_beyond_the_limit_overruns(kind):
    a, b, _ = await make(kind)
    async with a, b:
        await a.send_all(b"y" * 50 + b"\n")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await b.readuntil(b"\n", limit=10)
        assert info.value.consumed == 50  # where the separator is
        assert await b.readline() == b"y" * 50 + b"\n"


async def test_readline_overrun_keeps_the_line(kind):
    a, b, _ = await make(kind)
    async with a, b:
        line = b"z" * 70000 + b"\n"  # beyond readline's 64 KiB limit
        await a.send_all(line)
        with pytest.raises(asyncio.LimitOverrunError):
            await b.readline()
        assert await b.readuntil(b"\n", limit=100000) == line


async def test_readline_takes_a_limit_and_keeps_the_data_on_overrun(kind):
    a, b, _ = await make(kind)
    async with a, b:
        await a.send_all(b"0123456789\nshort\n")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await b.readline(limit=5)
        assert info.value.consumed > 5
        assert await b.readline(limit=10) == b"0123456789\n"  # exactly at the limit
        assert await b.readline(limit=5) == b"short\n"
        with pytest.raises(ValueError):
            await b.readline(limit=0)


async def test_readexactly_at_eof_raises_incomplete_read(kind):
    a, b, _ = await make(kind)
    async with a, b:
        await a.send_all(b"abc")
        await a.send_eof()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await b.readexactly(10)
        assert info.value.partial == b"abc"
        assert info.value.expected == 10
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await b.readexactly(1)
        assert info.value.partial == b""  # the partial data was returned
        assert info.value.expected == 1
        assert await b.readexactly(0) == b""


async def test_readuntil_at_eof_raises_incomplete_read(kind):
    a, b, _ = await make(kind)
    async with a, b:
        await a.send_all(b"no separator")
        await a.send_eof()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await b.readuntil(b"\r\n")
        assert info.value.partial == b"no separator"
        assert info.value.expected is None
        assert await b.read() == b""


async def test_readline_at_eof_returns_the_last_partial_line_then_empty(kind):
    a, b, _ = await make(kind)
    async with a, b:
        await a.send_all(b"first\nlast")
        await a.send_eof()
        assert await b.readline() == b"first\n"
        assert await b.readline() == b"last"
        assert await b.readline() == b""
        assert await b.readline() == b""


async def test_separator_split_across_one_byte_chunks(chunkable_kind):
    a, b, raw = await make(chunkable_kind)
    raw.max_receive_chunk = 1
    async with a, b:
        # Separate sends: over TLS, separate records, decrypted one by one.
        for piece in (b"abcE", b"NE", b"N", b"Dxyz\r", b"\nlast"):
            await a.send_all(piece)
        await a.send_eof()  # a missed separator fails at once
        assert await b.readuntil(b"END") == b"abcENEND"
        assert await b.readexactly(3) == b"xyz"
        assert await b.readline() == b"\r\n"
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await b.readuntil(b"--")
        assert info.value.partial == b"last"


async def test_limit_overrun_over_one_byte_chunks(chunkable_kind):
    a, b, raw = await make(chunkable_kind)
    raw.max_receive_chunk = 1
    async with a, b:
        for piece in (b"0123456789", b"abc-", b"-tail"):
            await a.send_all(piece)
        await a.send_eof()
        with pytest.raises(asyncio.LimitOverrunError):
            await b.readuntil(b"--", limit=8)
        assert await b.readuntil(b"--", limit=20) == b"0123456789abc--"
        assert await b.readexactly(4) == b"tail"


async def test_multibyte_separator_arriving_one_byte_at_a_time(kind):
    a, b, _ = await make(kind)
    async with a, b:
        reading = asyncio.ensure_future(b.readuntil(b"\r\n\r\n"))
        try:
            await trickle(a, b, b"head\r\n\r")
            assert not reading.done()
            await a.send_all(b"\nbody")
            await a.send_eof()
            assert await reading == b"head\r\n\r\n"
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        assert await b.read() == b"body"


async def test_receive_ready_is_true_for_what_a_helper_read_ahead(kind):
    a, b, _ = await make(kind)
    async with a:
        assert b.receive_ready() is False
        await a.send_all(b"line\nmore")
        assert await b.readline() == b"line\n"
        if kind != "memory":  # (the memory stream's buffer is the peer's)
            assert b.receive_ready() is True  # "more" waits in the pushback buffer
        assert await b.readexactly(4) == b"more"
        assert b.receive_ready() is False
        await b.aclose()
        assert b.receive_ready() is True
