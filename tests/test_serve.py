"""Servers: serve_listeners and serve_tcp, under load and cancellation."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import resource
import socket
import struct

import pytest

import pystream

from helpers import exit_report, receive_exactly


async def echo(stream):
    async for chunk in stream:
        await stream.send_all(chunk)


async def start_server(handler):
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    server = asyncio.ensure_future(pystream.serve_listeners(handler, listeners))
    return server, port


async def stop(server):
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server


async def test_echo_server_round_trip():
    server, port = await start_server(echo)
    async with await pystream.open_tcp_stream("127.0.0.1", port) as client:
        await client.send_all(b"ping")
        assert await receive_exactly(client, 4) == b"ping"
    await stop(server)


async def test_stream_is_closed_when_the_handler_returns():
    async def greet(stream):
        await stream.send_all(b"hi")

    server, port = await start_server(greet)
    async with await pystream.open_tcp_stream("127.0.0.1", port) as client:
        assert await receive_exactly(client, 2) == b"hi"
        assert await client.receive_some() == b""
    await stop(server)


async def test_handler_exception_is_logged_and_server_goes_on(caplog):
    async def faulty(stream):
        data = await stream.receive_some()
        if data == b"boom":
            raise ValueError("handler failed")
        await stream.send_all(data)

    server, port = await start_server(faulty)
    with caplog.at_level(logging.ERROR, logger="pystream"):
        async with await pystream.open_tcp_stream("127.0.0.1", port) as client:
            await client.send_all(b"boom")
            assert await client.receive_some() == b""
    assert any("handler failed" in str(r.exc_info[1]) for r in caplog.records)
    async with await pystream.open_tcp_stream("127.0.0.1", port) as client:
        await client.send_all(b"fine")
        assert await receive_exactly(client, 4) == b"fine"
    await stop(server)


async def test_cancelling_the_server_cancels_handlers_and_closes_streams():
    started = asyncio.Event()
    cancelled = []

    async def waits_forever(stream):
        started.set()
        try:
            await stream.receive_some()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    server = asyncio.ensure_future(pystream.serve_listeners(waits_forever, listeners))
    client = await pystream.open_tcp_stream("127.0.0.1", port)
    await started.wait()
    await stop(server)
    assert cancelled == [True]
    assert listeners[0].fileno() == -1, "the listeners are closed"
    async with client:
        try:
            assert await client.receive_some() == b""
        except pystream.BrokenResourceError:
            pass  # closed forcefully: a reset is allowed
    with pytest.raises(ConnectionRefusedError):
        await pystream.open_tcp_stream("127.0.0.1", port)


async def test_serve_tcp():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    await listeners[0].aclose()
    server = asyncio.ensure_future(pystream.serve_tcp(echo, port, host="127.0.0.1"))
    for _ in range(100):
        try:
            client = await pystream.open_tcp_stream("127.0.0.1", port)
            break
        except ConnectionRefusedError:
            await asyncio.sleep(0.01)
    async with client:
        await client.send_all(b"serve_tcp")
        assert await receive_exactly(client, 9) == b"serve_tcp"
    await stop(server)


async def test_two_thousand_concurrent_connections():
    # Both ends in this process: 4,000 descriptors and then some.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    server, port = await start_server(echo)

    async def client(i):
        async with await pystream.open_tcp_stream("127.0.0.1", port) as stream:
            for round_ in range(3):
                message = b"%04d:%d;" % (i, round_)
                await stream.send_all(message)
                assert await receive_exactly(stream, len(message)) == message

    await asyncio.gather(*(client(i) for i in range(2000)))
    await stop(server)


@pytest.mark.loops("asyncio")  # once is enough for 1 GiB; uvloop runs 64 MiB
async def test_one_gibibyte_echo():
    await _echo_volume(1 << 30)


async def test_sixty_four_mebibyte_echo():
    await _echo_volume(64 << 20)


async def _echo_volume(total):
    server, port = await start_server(echo)
    block = bytes(range(256)) * 256  # 64 KiB
    sent_hash = hashlib.sha256()
    received_hash = hashlib.sha256()
    async with await pystream.open_tcp_stream("127.0.0.1", port) as stream:

        async def send():
            for i in range(total // len(block)):
                chunk = block[i % 256 :] + block[: i % 256]
                sent_hash.update(chunk)
                await stream.send_all(chunk)
            await stream.send_eof()

        async def receive():
            buffer = bytearray(256 * 1024)
            view = memoryview(buffer)
            count = 0
            while True:
                n = await stream.receive_into(buffer)
                if not n:
                    return count
                received_hash.update(view[:n])
                count += n

        _, count = await asyncio.gather(send(), receive())
    assert count == total
    assert received_hash.digest() == sent_hash.digest()
    await stop(server)


SERVER_WITH_FEW_FDS = r"""
import asyncio, os, resource, sys
import pystream

async def echo(stream):
    async for chunk in stream:
        await stream.send_all(chunk)

async def main():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    used = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 10, used + 10))
    print(listeners[0].local_address[1], flush=True)
    await pystream.serve_listeners(echo, listeners)

asyncio.run(main())
"""


async def test_server_survives_running_out_of_file_descriptors():
    import subprocess
    import sys

    loop = asyncio.get_running_loop()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_WITH_FEW_FDS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        port = int(await loop.run_in_executor(None, server.stdout.readline))
        # Far more connections than the server has descriptors for: some
        # are served, the rest are shed (closed or reset), none hang: a
        # client still waiting for an answer after 10 s fails the test.
        clients = []
        for _ in range(40):
            clients.append(await pystream.open_tcp_stream("127.0.0.1", port))
        served = 0
        for i, client in enumerate(clients):
            try:
                await client.send_all(b"x")
                reply = await asyncio.wait_for(client.receive_some(), 10)
            except pystream.BrokenResourceError:
                reply = b""
            except asyncio.TimeoutError:
                raise AssertionError(f"connection {i} neither served nor shed after 10 s") from None
            assert reply in (b"x", b""), reply
            served += reply == b"x"
        assert 0 < served < 40
        for client in clients:
            await client.aclose()
        # With descriptors free again, the server serves new connections.
        for _ in range(50):
            async with await pystream.open_tcp_stream("127.0.0.1", port) as c:
                try:
                    await c.send_all(b"again")
                    reply = await asyncio.wait_for(receive_exactly(c, 5), 10)
                except (pystream.BrokenResourceError, AssertionError):
                    await asyncio.sleep(0.05)
                    continue
                assert reply == b"again"
                break
        else:
            raise AssertionError("the server stopped serving after EMFILE")
        if server.poll() is not None:
            from types import SimpleNamespace

            died = SimpleNamespace(returncode=server.returncode, stderr=server.stderr.read())
            raise AssertionError("the server died: " + exit_report(died))
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
        server.stderr.close()


async def test_a_peer_going_away_is_logged_at_debug_not_as_an_error(caplog):
    # A client that resets mid-response is routine for a server: the
    # handler's BrokenResourceError is no ERROR traceback (issue 23).
    broke = asyncio.Event()

    async def streams_forever(stream):
        try:
            while True:
                await stream.send_all(b"x" * 65536)
        finally:
            broke.set()

    server, port = await start_server(streams_forever)
    with caplog.at_level(logging.DEBUG, logger="pystream"):
        client = await pystream.open_tcp_stream("127.0.0.1", port)
        await client.receive_some()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await client.aclose()  # a reset
        await asyncio.wait_for(broke.wait(), 10)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("broke" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    await stop(server)
