"""SocketStream behaviour on socket pairs, TCP and Unix connections."""

from __future__ import annotations

import array
import asyncio
import gc
import hashlib
import os
import socket
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pystream
from pystream._binding import lib

from helpers import (
    PAIR_KINDS,
    clog,
    make_pair,
    receive_all,
    receive_exactly,
    run_in_loop,
    wait_until,
)

# More than loopback TCP or a Unix socket can hold, even after clog().
CLOGGED_SEND = 16 * 1024 * 1024

pytestmark = pytest.mark.parametrize("kind", PAIR_KINDS)


async def test_round_trip_and_eof(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_all(b"hello")
        assert await receive_exactly(b, 5) == b"hello"
        await b.send_all(b"world")
        assert await receive_exactly(a, 5) == b"world"
        await a.send_eof()
        assert await b.receive_some() == b""
        assert await b.receive_some() == b"", "EOF must repeat"
        # Half-closed: the other direction still works.
        await b.send_all(b"still open")
        assert await receive_exactly(a, 10) == b"still open"


async def test_max_bytes_is_respected(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_all(b"abcdef")
        await wait_until(lambda: lib.ps_stream_buffered(b._h.ptr) == 6, "data")
        assert await b.receive_some(2) == b"ab"
        assert await b.receive_some(1) == b"c"
        assert await b.receive_some(100) == b"def"


async def test_send_accepts_bytes_like(kind):
    a, b = await make_pair(kind)
    async with a, b:
        ints = array.array("i", [1, 2, 3])
        await a.send_all(b"by")
        await a.send_all(bytearray(b"ba"))
        await a.send_all(memoryview(b"xmvx")[1:3])
        await a.send_all(memoryview(ints))
        await a.send_all(memoryview(b"abcdef")[::2])  # not contiguous
        expected = b"bybamv" + ints.tobytes() + b"ace"
        assert await receive_exactly(b, len(expected)) == expected


async def test_bad_arguments(kind):
    a, b = await make_pair(kind)
    async with a, b:
        for bad in ("text", 12, None, [1, 2]):
            with pytest.raises(TypeError):
                await a.send_all(bad)
        for bad in (0, -1):
            with pytest.raises(ValueError):
                await b.receive_some(bad)
        for bad in (1.5, "3", b"3"):
            with pytest.raises(TypeError):
                await b.receive_some(bad)
        with pytest.raises(ValueError):
            await b.receive_into(bytearray())
        with pytest.raises(TypeError):
            await b.receive_into(b"read-only")
        with pytest.raises(ValueError):
            await b.readuntil(b"")
        with pytest.raises(ValueError):
            await b.readexactly(-1)
        # The stream is still fine after all that.
        await a.send_all(b"ok")
        assert await receive_exactly(b, 2) == b"ok"


async def test_empty_send_is_not_eof(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_all(b"")
        await a.send_all(bytearray())
        await a.send_all(b"x")
        assert await b.receive_some() == b"x"


async def _cancelled_at_first_yield(coro):
    """Run coro with a cancellation pending: it must raise CancelledError,
    which proves it yielded to the loop (a checkpoint)."""
    asyncio.current_task().cancel()
    try:
        result = await coro
    except asyncio.CancelledError:
        return "checkpoint"
    return ("no checkpoint", result)


async def is_checkpoint(coro) -> bool:
    """Whether coro yields to the loop, where a pending cancellation takes
    effect.  (One that does not never sees the cancellation; its task is
    cancelled when it ends instead.)"""
    task = asyncio.ensure_future(_cancelled_at_first_yield(coro))
    await asyncio.wait([task])
    return not task.cancelled() and task.result() == "checkpoint"


async def test_every_operation_is_a_checkpoint(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_all(b"0123456789\nabc")
        await wait_until(lambda: lib.ps_stream_buffered(b._h.ptr) == 14, "data")
        ops = {
            "send_all": lambda: a.send_all(b"x"),
            "send_all(b'')": lambda: a.send_all(b""),
            "wait_send_all_might_not_block": lambda: a.wait_send_all_might_not_block(),
            "receive_some": lambda: b.receive_some(),
            "receive_into": lambda: b.receive_into(bytearray(3)),
            "readexactly": lambda: b.readexactly(2),
            "readuntil": lambda: b.readuntil(b"\n"),
            "readline": lambda: b.readline(),
            "read(1)": lambda: b.read(1),
            "read(0)": lambda: b.read(0),
            # Last: it half-closes a's side, whether or not it is cancelled.
            "send_eof": lambda: a.send_eof(),
            "send_eof again": lambda: a.send_eof(),
        }
        for name, op in ops.items():
            assert await is_checkpoint(op()), f"{name} is not a checkpoint"
        # Cancelled receives lost nothing.
        assert await b.readuntil(b"\n") == b"0123456789\n"
        assert await b.receive_some() == b"abc"
    # Closing a closed stream too (a cancelled aclose of an open one: see
    # test_cancelled_aclose_still_closes).
    assert await is_checkpoint(a.aclose()), "aclose of a closed stream is not a checkpoint"


async def test_concurrent_use_is_busy(kind):
    a, b = await make_pair(kind)
    async with a, b:
        receiver = asyncio.ensure_future(b.receive_some())
        await asyncio.sleep(0)
        with pytest.raises(pystream.BusyResourceError):
            await b.receive_some()
        with pytest.raises(pystream.BusyResourceError):
            await b.readline()
        await a.send_all(b"x")
        assert await receiver == b"x"

        sent = await clog(a, b)
        sender = asyncio.ensure_future(a.send_all(b"y" * CLOGGED_SEND))
        await asyncio.sleep(0.01)
        assert not sender.done(), "send_all must block while the peer does not read"
        with pytest.raises(pystream.BusyResourceError):
            await a.send_all(b"z")
        with pytest.raises(pystream.BusyResourceError):
            await a.wait_send_all_might_not_block()
        with pytest.raises(pystream.BusyResourceError):
            await a.send_eof()
        await receive_exactly(b, sent + CLOGGED_SEND)
        await sender


async def test_use_after_close(kind):
    a, b = await make_pair(kind)
    await a.aclose()
    await a.aclose()  # idempotent
    for op in (
        lambda: a.send_all(b"x"),
        lambda: a.send_all(b""),
        lambda: a.receive_some(),
        lambda: a.receive_into(bytearray(1)),
        lambda: a.send_eof(),
        lambda: a.wait_send_all_might_not_block(),
        lambda: a.readline(),
        lambda: a.readexactly(1),
        lambda: a.read(),
    ):
        with pytest.raises(pystream.ClosedResourceError):
            await op()
    assert a.fileno() == -1
    with pytest.raises(pystream.ClosedResourceError):
        _ = a.local_address
    assert await b.receive_some() == b""
    await b.aclose()


async def test_send_after_send_eof_is_closed(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_eof()
        await a.send_eof()  # idempotent
        with pytest.raises(pystream.ClosedResourceError):
            await a.send_all(b"x")
        with pytest.raises(pystream.ClosedResourceError):
            await a.send_all(b"")


async def test_close_wakes_blocked_receive(kind):
    # Each receiving call, blocked (with what it found so far buffered),
    # wakes with ClosedResourceError when its own stream is closed.
    ops = [
        (lambda b: b.receive_some(), b""),
        (lambda b: b.receive_into(bytearray(10)), b""),
        (lambda b: b.readexactly(10), b"12345"),
        (lambda b: b.readline(), b"half a line"),
        (lambda b: b.readuntil(b"END"), b"EN"),
        (lambda b: b.read(), b"until EOF"),
    ]
    for op, buffered in ops:
        a, b = await make_pair(kind)
        async with a:
            await _blocked_receive_woken_by_close(a, b, op, buffered)


async def _blocked_receive_woken_by_close(a, b, op, buffered):
    await a.send_all(buffered)
    await wait_until(lambda: lib.ps_stream_buffered(b._h.ptr) == len(buffered), "data")
    receiver = asyncio.ensure_future(op(b))
    await asyncio.sleep(0.01)
    assert not receiver.done(), "nothing complete to return: it must block"
    await b.aclose()
    with pytest.raises(pystream.ClosedResourceError):
        await receiver


async def test_close_wakes_blocked_send(kind):
    a, b = await make_pair(kind)
    async with b:
        sent = await clog(a, b)
        sender = asyncio.ensure_future(a.send_all(b"x" * CLOGGED_SEND))
        await asyncio.sleep(0.01)
        assert not sender.done()
        await a.aclose()
        with pytest.raises(pystream.ClosedResourceError):
            await sender
        # The close did not wait for the peer; the peer still gets what
        # the kernel took, then EOF.
        received = await receive_all(b)
        assert sent <= len(received) < sent + CLOGGED_SEND


async def test_close_wakes_wait_send_all_might_not_block(kind):
    a, b = await make_pair(kind)
    async with b:
        await clog(a, b)
        waiter = asyncio.ensure_future(a.wait_send_all_might_not_block())
        await asyncio.sleep(0.01)
        assert not waiter.done(), "the socket is full: it must block"
        await a.aclose()
        with pytest.raises(pystream.ClosedResourceError):
            await waiter


async def test_wait_send_all_might_not_block_returns_when_peer_reads(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.wait_send_all_might_not_block()  # idle: at once
        sent = await clog(a, b)
        waiter = asyncio.ensure_future(a.wait_send_all_might_not_block())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        await receive_exactly(b, sent)
        await waiter


async def test_graceful_close_delivers_everything(kind):
    a, b = await make_pair(kind)
    data = os.urandom(3 * 1024 * 1024)

    async def sender():
        await a.send_all(data)
        await a.aclose()

    task = asyncio.ensure_future(sender())
    # The receiver starts late: the data waits in the kernel and libuv.
    await asyncio.sleep(0.01)
    received = await receive_all(b)
    await task
    await b.aclose()
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


async def test_cancelled_aclose_still_closes(kind):
    a, b = await make_pair(kind)
    assert await is_checkpoint(a.aclose())
    with pytest.raises(pystream.ClosedResourceError):
        await a.send_all(b"x")
    assert await b.receive_some() == b""
    await b.aclose()


async def test_cancelled_receive_leaves_stream_usable(kind):
    a, b = await make_pair(kind)
    async with a, b:
        task = asyncio.ensure_future(b.receive_some())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await a.send_all(b"after")
        assert await receive_exactly(b, 5) == b"after"


async def test_backpressure_bounds_memory(kind):
    a, b = await make_pair(kind)
    async with a, b:
        data = os.urandom(16 * 1024 * 1024)
        sender = asyncio.ensure_future(a.send_all(data))
        await wait_until(
            lambda: lib.ps_stream_buffered(b._h.ptr) >= 256 * 1024,
            "the receive buffer to fill",
        )
        for _ in range(20):
            await asyncio.sleep(0.001)
        assert not sender.done(), "send_all must block while the peer does not read"
        # The receiver stopped reading at its high-water mark; the sender
        # did not copy: its data waits in the caller's own buffer.
        assert lib.ps_stream_buffered(b._h.ptr) <= 256 * 1024 + 64 * 1024
        counts = pystream._counters(asyncio.get_running_loop())
        assert counts["writes_pending"] == 1
        received = await receive_exactly(b, len(data))
        await sender
        assert received == data


async def test_readexactly_readuntil_readline_read(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_all(b"line one\nline two\r\nrest")
        assert await b.readline() == b"line one\n"
        assert await b.readuntil(b"\r\n") == b"line two\r\n"
        assert await b.readexactly(2) == b"re"
        assert await b.readexactly(0) == b""
        await a.send_all(b"more")
        assert await b.read(3) in (b"st", b"stm")
        await a.send_eof()
        rest = await b.read()
        assert rest in (b"more", b"ore")
        assert await b.read() == b""
        assert await b.readline() == b""


async def test_readexactly_incomplete_at_eof(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_all(b"abc")
        await a.send_eof()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await b.readexactly(10)
        assert info.value.partial == b"abc"
        assert info.value.expected == 10


async def test_readuntil_incomplete_and_readline_partial_at_eof(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_all(b"no newline")
        await a.send_eof()
        assert await b.readline() == b"no newline"
    c, d = await make_pair(kind)
    async with c, d:
        await c.send_all(b"partial")
        await c.send_eof()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await d.readuntil(b"!")
        assert info.value.partial == b"partial"


async def test_limit_overrun_keeps_data(kind):
    a, b = await make_pair(kind)
    async with a, b:
        line = b"x" * 300 + b"\n"
        await a.send_all(line)
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await b.readuntil(b"\n", limit=100)
        assert info.value.consumed > 100
        assert await b.readuntil(b"\n", limit=1000) == line
        # A separator found beyond the limit also overruns.
        await a.send_all(b"y" * 50 + b"\n")
        await wait_until(lambda: lib.ps_stream_buffered(b._h.ptr) == 51, "data")
        with pytest.raises(asyncio.LimitOverrunError):
            await b.readuntil(b"\n", limit=10)
        assert await b.readline() == b"y" * 50 + b"\n"


async def test_readline_limit_overrun_keeps_data(kind):
    # readline's limit is readuntil's default, 64 KiB; unlike asyncio's
    # StreamReader.readline it raises and drops nothing.
    a, b = await make_pair(kind)
    async with a, b:
        # No separator in the first 64 KiB, nor anywhere yet.
        await a.send_all(b"x" * 100_000)
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await b.readline()
        assert info.value.consumed > 65536
        await a.send_all(b"\n")
        assert await b.readuntil(b"\n", limit=200_000) == b"x" * 100_000 + b"\n"
        # The separator is there, but beyond the limit.
        await a.send_all(b"y" * 70_000 + b"\n")
        await wait_until(lambda: lib.ps_stream_buffered(b._h.ptr) == 70_001, "data")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await b.readline()
        assert info.value.consumed == 70_000
        assert await b.readuntil(b"\n", limit=200_000) == b"y" * 70_000 + b"\n"


async def test_readuntil_long_line_beyond_high_water(kind):
    # The buffer stops reading at 256 KiB, but a wait for a separator asks
    # for more: a 1 MiB line must still arrive.
    a, b = await make_pair(kind)
    async with a, b:
        line = b"z" * (1 << 20) + b"\n"
        sender = asyncio.ensure_future(a.send_all(line))
        assert await b.readuntil(b"\n", limit=2 << 20) == line
        await sender
        big = os.urandom(1 << 20)
        sender = asyncio.ensure_future(a.send_all(big))
        assert await b.readexactly(len(big)) == big
        await sender


async def test_multibyte_separator_across_chunks(kind):
    a, b = await make_pair(kind)
    async with a, b:
        reader = asyncio.ensure_future(b.readuntil(b"END"))
        for piece in (b"abcE", b"N", b"Dxyz"):
            await a.send_all(piece)
            await asyncio.sleep(0.001)
        assert await reader == b"abcEND"
        assert await b.readexactly(3) == b"xyz"


async def test_receive_into_and_async_for(kind):
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_all(b"0123456789")
        await wait_until(lambda: lib.ps_stream_buffered(b._h.ptr) == 10, "data")
        buf = bytearray(4)
        assert await b.receive_into(buf) == 4
        assert buf == b"0123"
        view = memoryview(bytearray(10))
        n = await b.receive_into(view[2:])
        assert bytes(view[2 : 2 + n]) == b"456789"[:n]
        await a.send_eof()
        chunks = [chunk async for chunk in b]
        assert all(chunks)
        assert b"".join([b"456789"[:n]] + chunks) == b"456789"
        assert await b.receive_into(bytearray(5)) == 0


async def test_receive_into_a_non_contiguous_buffer_is_a_type_error(kind):
    # As socket.recv_into and readinto do with such a buffer.
    a, b = await make_pair(kind)
    async with a, b:
        await a.send_all(b"kept")
        strided = memoryview(bytearray(8))[::2]
        with socket.socket() as plain, pytest.raises(TypeError):
            plain.recv_into(strided)
        with pytest.raises(TypeError, match="contiguous"):
            await b.receive_into(strided)
        assert await receive_exactly(b, 4) == b"kept"


async def test_addresses_and_socket_options(kind):
    a, b = await make_pair(kind)
    async with a, b:
        assert a.fileno() >= 0 and a.fileno() != b.fileno()
        if kind == "tcp":
            assert a.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert b.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert a.remote_address == b.local_address
            assert a.local_address == b.remote_address
            host, port = a.local_address
            assert host == "127.0.0.1" and isinstance(port, int)
        else:
            assert isinstance(a.local_address, str)
            if kind == "unix":
                assert a.remote_address == b.local_address
                assert b.local_address.endswith("sock")
        a.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        assert a.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        a.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)
        assert a.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
        raw = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4)
        assert isinstance(raw, bytes) and len(raw) == 4
        with pytest.raises(OSError):
            a.setsockopt(socket.SOL_SOCKET, 99999, 1)


async def test_cancelled_aclose_forcefully_still_closes(kind):
    # What its docstring says: the close comes before its checkpoint.
    a, b = await make_pair(kind)
    async with a:
        closing = asyncio.ensure_future(pystream.aclose_forcefully(b))
        await asyncio.sleep(0)  # it closed, and waits at its checkpoint
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert b.fileno() == -1
        assert await a.receive_some() == b""


async def test_forceful_close(kind):
    a, b = await make_pair(kind)
    await b.send_all(b"unread")
    await wait_until(lambda: lib.ps_stream_buffered(a._h.ptr) == 6, "data")
    await pystream.aclose_forcefully(b)
    await pystream.aclose_forcefully(b)  # idempotent
    with pytest.raises(pystream.ClosedResourceError):
        await b.send_all(b"x")
    # What arrived before the close is still delivered, then a plain EOF:
    # forceful means "do not wait", not "reset" (SO_LINGER 0 resets).
    assert await a.receive_some() == b"unread"
    assert await a.receive_some() == b""
    assert await a.receive_some() == b""
    # b is gone: sending to it breaks (the kernel answers with a reset).
    with pytest.raises(pystream.BrokenResourceError) as info:
        for _ in range(100):
            await a.send_all(b"x" * 1000)
    assert isinstance(info.value.__cause__, (ConnectionResetError, BrokenPipeError))
    with pytest.raises(pystream.BrokenResourceError):
        await a.send_all(b"x")
    await a.aclose()


async def test_peer_close_breaks_sending(kind):
    a, b = await make_pair(kind)
    await b.aclose()
    with pytest.raises(pystream.BrokenResourceError) as info:
        for _ in range(1000):
            await a.send_all(b"x" * 1000)
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(pystream.BrokenResourceError):
        await a.send_all(b"more")
    await a.aclose()


async def test_used_from_another_loop_is_a_runtime_error(kind):
    a, b = await make_pair(kind)
    async with a, b:

        def elsewhere():
            return run_in_loop("asyncio", a.send_all(b"x"))

        with pytest.raises(RuntimeError, match="another event loop"):
            await asyncio.get_running_loop().run_in_executor(None, elsewhere)


async def test_unclosed_stream_warns_and_is_freed(kind):
    a, b = await make_pair(kind)
    handle = a._h
    with pytest.warns(ResourceWarning, match="unclosed"):
        del a
        for _ in range(3):  # PyPy may need more than one collection
            gc.collect()
            await asyncio.sleep(0)
    await wait_until(lambda: handle.ptr is None, "the C handle to close")
    assert await b.receive_some() == b""
    await b.aclose()


def test_loop_closed_with_streams_open(kind):
    kept = []

    async def leave_open():
        a, b = await make_pair(kind)
        kept.extend([a, b])
        await a.send_all(b"pending")

    run_in_loop("asyncio", leave_open())
    assert pystream._counters()["handles"] == 0

    async def use_after():
        a, b = kept
        with pytest.raises(pystream.ClosedResourceError):
            await a.send_all(b"x")
        with pytest.raises(pystream.ClosedResourceError):
            await b.receive_some()
        await a.aclose()
        await b.aclose()

    run_in_loop("asyncio", use_after())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # closed: no ResourceWarning now
        kept.clear()
        gc.collect()


@settings(max_examples=25, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=200_000),
    send_sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=8),
    receive_sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=8),
)
def test_chunking_does_not_change_the_bytes(kind, data, send_sizes, receive_sizes):
    async def exchange():
        a, b = await make_pair(kind)

        async def send():
            offset, i = 0, 0
            while offset < len(data):
                size = send_sizes[i % len(send_sizes)]
                await a.send_all(data[offset : offset + size])
                offset += size
                i += 1
            await a.aclose()

        async def receive():
            chunks, i = [], 0
            while True:
                chunk = await b.receive_some(receive_sizes[i % len(receive_sizes)])
                i += 1
                if not chunk:
                    return b"".join(chunks)
                assert len(chunk) <= receive_sizes[(i - 1) % len(receive_sizes)]
                chunks.append(chunk)

        _, received = await asyncio.gather(send(), receive())
        await b.aclose()
        return received

    assert run_in_loop("asyncio", exchange()) == data


async def test_readexactly_zero_returns_at_once(kind):
    """As asyncio's: nothing to wait for, even with nothing buffered (it is
    still a checkpoint, and still raises once the stream is closed)."""
    a, b = await make_pair(kind)
    async with a, b:
        assert await asyncio.wait_for(b.readexactly(0), 5) == b""
        assert await is_checkpoint(b.readexactly(0))
    with pytest.raises(pystream.ClosedResourceError):
        await b.readexactly(0)


async def test_receive_ready_answers_from_the_core_without_a_receive(kind):
    from helpers import wait_until

    a, b = await make_pair(kind)
    async with a:
        assert b.receive_ready() is False  # idle: nothing buffered, reading goes on
        await a.send_all(b"xy")
        # The core reads while nobody receives.
        await wait_until(b.receive_ready, "the bytes buffered")
        assert await b.receive_some(1) == b"x"
        assert b.receive_ready() is True
        assert await b.receive_some() == b"y"
        assert b.receive_ready() is False
        await a.send_eof()
        await wait_until(b.receive_ready, "the end of file recorded")
        assert await b.receive_some() == b""
        assert b.receive_ready() is True  # still: a receive returns b"" at once
        await b.aclose()
        assert b.receive_ready() is True  # closed: a receive raises at once
