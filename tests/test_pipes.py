"""PipeStream, open_pipe and wrap_fd: OS pipes and FIFOs as streams."""

from __future__ import annotations

import asyncio
import io
import os
import socket

import pytest

import pystream
from pystream.testing import check_half_closeable_stream, check_one_way_stream

from helpers import clog


async def pipe_maker():
    r, w = await pystream.open_pipe()
    return w, r


async def clogged_pipe_maker():
    w, r = await pipe_maker()
    await clog(w, r)
    return w, r


async def test_pipe_passes_the_one_way_checks():
    await check_one_way_stream(pipe_maker, clogged_pipe_maker)


async def two_pipes():
    """Two pipes stapled into a two-way pair."""
    r1, w1 = await pystream.open_pipe()
    r2, w2 = await pystream.open_pipe()
    return pystream.StapledStream(w1, r2), pystream.StapledStream(w2, r1)


async def clogged_two_pipes():
    a, b = await two_pipes()
    await clog(a.send_stream, b.receive_stream)
    await clog(b.send_stream, a.receive_stream)
    return a, b


async def test_stapled_pipes_pass_the_half_close_checks():
    await check_half_closeable_stream(two_pipes, clogged_two_pipes)


async def test_send_eof_delivers_everything_then_eof():
    r, w = await pystream.open_pipe()
    data = os.urandom(3 << 20)  # more than the pipe holds: send_all blocks

    async def reader():
        got = bytearray()
        while chunk := await r.receive_some():
            got += chunk
        return bytes(got)

    reading = asyncio.ensure_future(reader())
    await w.send_all(data)
    await w.send_eof()
    await w.send_eof()  # idempotent
    assert await reading == data
    with pytest.raises(pystream.ClosedResourceError):
        await w.send_all(b"x")
    assert w.fileno() == -1  # a pipe has no half-close: the end is closed
    await w.aclose()
    await r.aclose()


async def test_the_other_direction_is_unsupported():
    r, w = await pystream.open_pipe()
    async with r, w:
        assert (r.readable, r.writable, w.readable, w.writable) == (True, False, False, True)
        with pytest.raises(io.UnsupportedOperation):
            await r.send_all(b"x")
        with pytest.raises(io.UnsupportedOperation):
            await r.send_eof()
        with pytest.raises(io.UnsupportedOperation):
            await r.wait_send_all_might_not_block()
        with pytest.raises(io.UnsupportedOperation):
            await w.receive_some(1)
        with pytest.raises(io.UnsupportedOperation):
            await w.receive_into(bytearray(1))
        with pytest.raises(io.UnsupportedOperation):
            await w.readline()
        # And both ends still work.
        await w.send_all(b"line\n")
        assert await r.readline() == b"line\n"


async def test_reader_gone_breaks_the_writer():
    r, w = await pystream.open_pipe()
    await r.aclose()
    with pytest.raises(pystream.BrokenResourceError) as info:
        for _ in range(100):
            await w.send_all(b"x" * 65536)
    assert isinstance(info.value.__cause__, BrokenPipeError)
    await w.aclose()


async def test_readuntil_limit_keeps_the_data():
    r, w = await pystream.open_pipe()
    async with r, w:
        await w.send_all(b"a" * 100 + b"\n")
        with pytest.raises(asyncio.LimitOverrunError):
            await r.readuntil(b"\n", limit=10)
        assert await r.readuntil(b"\n", limit=1000) == b"a" * 100 + b"\n"


async def test_wrap_fd_over_a_fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    write_fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    r = await pystream.wrap_fd(read_fd)
    w = await pystream.wrap_fd(write_fd)
    assert isinstance(r, pystream.PipeStream) and r.readable and not r.writable
    await w.send_all(b"through the fifo")
    await w.aclose()
    assert await r.read() == b"through the fifo"
    await r.aclose()


async def test_wrap_fd_over_a_socket():
    a, b = socket.socketpair()
    stream = await pystream.wrap_fd(a.detach())
    assert isinstance(stream, pystream.SocketStream)
    b.sendall(b"hi")
    assert await stream.receive_some() == b"hi"
    await stream.aclose()
    b.close()


async def test_wrap_fd_bad_input(tmp_path):
    with pytest.raises(TypeError):
        await pystream.wrap_fd("0")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await pystream.wrap_fd(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await pystream.wrap_fd(-1)
    with pytest.raises(OSError):
        await pystream.wrap_fd(1 << 20)  # not open: EBADF
    path = tmp_path / "file"
    path.write_bytes(b"x")
    with open(path, "rb") as f:
        with pytest.raises(ValueError, match="regular file"):
            await pystream.wrap_fd(f.fileno())
        assert f.read() == b"x"  # still the caller's, still usable
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(ValueError, match="SOCK_STREAM"):
            await pystream.wrap_fd(s.fileno())
        assert s.fileno() >= 0  # not taken


async def test_a_cancelled_receive_loses_nothing():
    r, w = await pystream.open_pipe()
    async with r, w:
        receiving = asyncio.ensure_future(r.readexactly(10))
        await asyncio.sleep(0)
        await w.send_all(b"12345")
        await asyncio.sleep(0.01)
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        await w.send_all(b"67890")
        assert await r.readexactly(10) == b"1234567890"


async def test_a_fifo_open_both_ways_has_no_half_close(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    stream = await pystream.wrap_fd(os.open(path, os.O_RDWR | os.O_CLOEXEC))
    async with stream:
        assert stream.readable and stream.writable
        with pytest.raises(NotImplementedError):
            await stream.send_eof()
        await stream.send_all(b"still both ways")
        assert await stream.receive_some() == b"still both ways"


async def test_opening_is_a_checkpoint_that_leaves_nothing_when_cancelled():
    from pystream.testing._check_kit import is_checkpoint

    assert await is_checkpoint(pystream.open_pipe)
    r, w = os.pipe()
    try:
        assert await is_checkpoint(lambda: pystream.wrap_fd(r))
        os.fstat(r)  # still open: still the caller's
    finally:
        os.close(r)
        os.close(w)
    assert await is_checkpoint(pystream.open_stdin)
    assert await is_checkpoint(lambda: pystream.open_process(["true"]))
    # (The per-test check finds no fd, handle or child left behind.)
