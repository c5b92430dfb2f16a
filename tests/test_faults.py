"""Faults: cancellation at every await point, resets, bad arguments in the
middle of traffic.  Every test here also gets the conftest's checks: no C
handle, libuv loop or file descriptor left, nothing reported to the loop's
exception handler, no ResourceWarning."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

import pystream

from helpers import LOOP_KINDS, make_pair, receive_exactly, run_in_loop

KINDS = ["tcp", "unix"]
MAX_STEPS = 200  # loop iterations; every operation below finishes in fewer


async def cancelled_after(steps: int, coro):
    """Run coro as a task, cancel it after `steps` loop iterations.  Return
    ("done", result) if it finished first, else ("cancelled", None)."""
    task = asyncio.ensure_future(coro)
    for _ in range(steps):
        if task.done():
            break
        await asyncio.sleep(0)
    if task.done():
        return "done", task.result()
    task.cancel()
    try:
        return "done", await task  # it may finish despite the cancel
    except asyncio.CancelledError:
        return "cancelled", None


async def read_to_eof(stream) -> bytes:
    chunks = []
    while True:
        chunk = await stream.receive_some()
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


@pytest.mark.parametrize("kind", KINDS)
async def test_cancelled_send_all_is_all_or_nothing(kind):
    # Cancelled at any point, a socket send_all has sent all of its data or
    # none of it (what libuv queued still goes), in order, and the stream
    # stays usable.
    payload = bytes(range(256)) * 4096  # 1 MiB: more than the kernel takes at once
    for steps in range(MAX_STEPS):
        a, b = await make_pair(kind)
        async with a, b:
            reader = asyncio.ensure_future(read_to_eof(b))
            outcome, _ = await cancelled_after(steps, a.send_all(payload))
            await a.send_all(b"!")
            await a.send_eof()
            received = await reader
            assert received in (b"!", payload + b"!"), (steps, outcome, len(received))
            if outcome == "done":
                assert received == payload + b"!"
                return
    raise AssertionError("send_all never finished")


@pytest.mark.parametrize("kind", KINDS)
async def test_cancelled_receive_at_every_step_loses_nothing(kind):
    a, b = await make_pair(kind)
    async with a, b:
        received = bytearray()
        sender = asyncio.ensure_future(
            a.send_all(b"".join(struct.pack(">I", i) for i in range(50_000)))
        )
        steps = 0
        while len(received) < 200_000:
            outcome, chunk = await cancelled_after(steps % 7, b.receive_some(4096))
            if outcome == "done":
                received += chunk
            steps += 1
        await sender
        assert bytes(received) == b"".join(struct.pack(">I", i) for i in range(50_000))


@pytest.mark.parametrize("kind", KINDS)
async def test_cancelled_aclose_at_every_step_still_closes(kind):
    # From 1: a task cancelled before its first step never calls aclose.
    for steps in range(1, MAX_STEPS):
        a, b = await make_pair(kind)
        await a.send_all(b"data")
        outcome, _ = await cancelled_after(steps, a.aclose())
        with pytest.raises(pystream.ClosedResourceError):
            await a.send_all(b"x")
        got = b""
        try:
            while True:
                chunk = await b.receive_some()
                if not chunk:
                    break
                got += chunk
        except pystream.BrokenResourceError:
            assert outcome == "cancelled"  # a forceful close may reset
        assert got in (b"", b"data") if outcome == "cancelled" else got == b"data"
        await b.aclose()
        if outcome == "done":
            return
    raise AssertionError("aclose never finished")


async def test_cancelled_connect_at_every_step_leaves_nothing():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    async with listeners[0]:
        for steps in range(MAX_STEPS):
            outcome, stream = await cancelled_after(
                steps, pystream.open_tcp_stream("127.0.0.1", port)
            )
            if outcome == "done":
                await stream.send_all(b"hi")
                await stream.send_eof()
                # Attempts cancelled after the kernel connected them are
                # queued too, closed (reset) by now: skip them.
                while True:
                    server = await listeners[0].accept()
                    async with server:
                        try:
                            if await read_to_eof(server) == b"hi":
                                break
                        except pystream.BrokenResourceError:
                            pass
                await stream.aclose()
                return
    raise AssertionError("open_tcp_stream never finished")


async def test_cancelled_accept_at_every_step_loses_no_connection():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    port = listener.local_address[1]
    async with listener:
        clients = []
        try:
            for steps in range(20):
                client = await pystream.open_tcp_stream("127.0.0.1", port)
                clients.append(client)
                await client.send_all(bytes([steps]))
                outcome, server = await cancelled_after(steps % 5, listener.accept())
                if outcome == "cancelled":
                    server = await listener.accept()  # still queued
                assert await server.receive_some(1) == bytes([steps])
                await server.aclose()
        finally:
            for client in clients:
                await client.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_argument_among_ten_thousand_sends(kind):
    a, b = await make_pair(kind)
    async with a, b:
        reader = asyncio.ensure_future(receive_exactly(b, 10_000 * 4))
        for i in range(10_000):
            if i == 5_000:
                with pytest.raises(TypeError):
                    await a.send_all("not bytes")
                with pytest.raises(TypeError):
                    await a.send_all(12345)
            await a.send_all(struct.pack(">I", i))
        data = await reader
        assert data == b"".join(struct.pack(">I", i) for i in range(10_000))


@pytest.mark.parametrize("kind", ["tcp"])
async def test_peer_reset_during_blocked_send_and_receive(kind):
    a, b = await make_pair(kind)
    async with a, b:
        receiving = asyncio.ensure_future(a.receive_some())
        sending = asyncio.ensure_future(a.send_all(b"x" * (64 * 1024 * 1024)))
        await asyncio.sleep(0.05)
        assert not sending.done() and not receiving.done()
        # A reset on purpose: SO_LINGER 0, then close.
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await pystream.aclose_forcefully(b)
        for task in (receiving, sending):
            with pytest.raises(pystream.BrokenResourceError) as info:
                await task
            assert isinstance(info.value.__cause__, (ConnectionResetError, BrokenPipeError))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["aclose_forcefully", "cancelled aclose"])
async def test_forceful_close_delivers_what_send_all_accepted(kind, how):
    """Forceful means "do not wait", not "discard": 256 KiB that send_all
    handed to the kernel all arrive, then EOF (no reset)."""
    a, b = await make_pair(kind)
    data = bytes(range(256)) * 1024
    async with b:
        sending = asyncio.ensure_future(a.send_all(data))
        got = await receive_exactly(b, 1)  # the peer reads a little, then stalls
        await sending  # accepted: the kernel holds the rest
        if how == "aclose_forcefully":
            await pystream.aclose_forcefully(a)
        else:
            closing = asyncio.ensure_future(a.aclose())
            await asyncio.sleep(0)  # aclose started: cancelled inside it
            closing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await closing
            with pytest.raises(pystream.ClosedResourceError):
                await a.send_all(b"")
        got += await read_to_eof(b)
        assert got == data


async def test_linger_zero_then_close_resets_the_peer():
    """The documented way to abort on purpose."""
    a, b = await make_pair("tcp")
    async with b:
        await a.send_all(b"x")
        a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await pystream.aclose_forcefully(a)
        assert await receive_exactly(b, 1) == b"x"
        with pytest.raises(pystream.BrokenResourceError) as info:
            await b.receive_some()
        assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_peer_closes_with_our_data_unread():
    a, b = await make_pair("tcp")
    async with a:
        await a.send_all(b"unread")
        await asyncio.sleep(0.01)
        await b.aclose()  # closing with unread data: the kernel resets
        with pytest.raises(pystream.BrokenResourceError):
            for _ in range(100):
                await a.send_all(b"more" * 1024)
                await asyncio.sleep(0.001)


async def test_half_close_then_the_other_direction_completes():
    a, b = await make_pair("tcp")
    async with a, b:
        await a.send_all(b"request")
        await a.send_eof()
        assert await b.read() == b"request"
        payload = bytes(range(256)) * (32 * 1024)  # 8 MiB back
        sending = asyncio.ensure_future(b.send_all(payload))
        assert await receive_exactly(a, len(payload)) == payload
        await sending
        await b.send_eof()
        assert await a.receive_some() == b""


async def test_plain_socket_peer_reset_is_a_broken_resource():
    # A plain socket peer that resets mid-stream (not pystream's own close).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        stream = await pystream.open_tcp_stream("127.0.0.1", port)
        peer, _ = listener.accept()  # already in the backlog: no wait
    with peer:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.sendall(b"last")
    async with stream:
        with pytest.raises(pystream.BrokenResourceError) as info:
            while True:
                chunk = await stream.receive_some()
                assert chunk, "a reset is not an EOF"
        assert isinstance(info.value.__cause__, ConnectionResetError)


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_short_soak(kind):
    # The on-demand soak (python -m pystream.testing.soak), short: every
    # scenario runs, every byte checks out, nothing is left open.
    from pystream.testing.soak import soak

    report = run_in_loop(kind, soak(seconds=3, connections=60, seed=1))
    print(report.format())
    assert not report.unexpected, report.unexpected
    assert set(report.done) == {"echo", "half-close", "reset", "cancel", "slow-reader"}
    assert report.bytes_echoed > 0
    assert report.ok, report.format()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_single_64_mib_send_all(kind):
    # One call, 64 MiB: libuv holds a pointer into the caller's buffer (no
    # copy) until the peer has taken it all.
    import hashlib

    payload = bytes(range(256)) * (256 * 1024)
    a, b = await make_pair(kind)
    async with a, b:
        sending = asyncio.ensure_future(a.send_all(payload))
        digest = hashlib.sha256()
        total = 0
        while total < len(payload):
            chunk = await b.receive_some()
            assert chunk
            digest.update(chunk)
            total += len(chunk)
        await sending
        assert total == len(payload)
        assert digest.digest() == hashlib.sha256(payload).digest()
