"""WebSocket on pystream (pystream.interop.websockets) against the
websockets library's own asyncio client and server, both ways: text and
binary, fragmented and large messages, ping/pong, the closing handshake,
a peer that vanishes."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

import pystream
from pystream.interop import websockets as pws

LARGE = 4 * 1024 * 1024 + 7


class PystreamServer:
    """A pystream WebSocket server on loopback; each connection runs
    ``handler(ws)``; what it returns or raises is kept in ``outcomes``."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.outcomes: list[object] = []

    async def __aenter__(self) -> PystreamServer:
        (self.listener,) = await pystream.open_tcp_listeners(0, host="127.0.0.1")
        self.url = f"ws://127.0.0.1:{self.listener.local_address[1]}/path"
        self.task = asyncio.ensure_future(self._serve())
        self.done = asyncio.Event()
        return self

    async def _serve(self) -> None:
        stream = await self.listener.accept()
        try:
            ws = await pws.accept(stream, max_size=None)
            try:
                self.outcomes.append(await self.handler(ws))
            except Exception as exc:
                self.outcomes.append(exc)
            finally:
                await ws.close()
        finally:
            self.done.set()

    async def __aexit__(self, *exc_info) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), 20)
        finally:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            await self.listener.aclose()


async def echo(ws: pws.WebSocket) -> str:
    async for message in ws:
        await ws.send(message)
    return f"closed {ws.protocol.close_code}"


async def test_pystream_server_with_the_websockets_client():
    async with PystreamServer(echo) as server:
        async with ws_connect(server.url, max_size=None, compression=None) as client:
            await client.send("héllo")
            assert await client.recv() == "héllo"
            await client.send(b"\x00\x01binary")
            assert await client.recv() == b"\x00\x01binary"
            # A message in three fragments comes back whole.
            await client.send(["frag", "men", "ted"])
            assert await client.recv() == "fragmented"
            big = bytes(range(256)) * (LARGE // 256) + b"tail"
            await client.send(big)
            assert await client.recv() == big
            # The server answers pings while it waits for messages.
            pong = await client.ping(b"are you there")
            await asyncio.wait_for(pong, 10)
        assert client.close_code == 1000
    assert server.outcomes == ["closed 1000"]


async def test_pystream_client_with_the_websockets_server():
    received: list[object] = []

    async def handler(connection) -> None:
        async for message in connection:
            received.append(message)
            if message == "fragments please":
                await connection.send(["one ", "two ", "three"])
            else:
                await connection.send(message)
        received.append(("closed", connection.close_code))

    async with ws_serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await pws.connect(f"ws://127.0.0.1:{port}/", max_size=None)
        assert ws.handshake.status_code == 101
        await ws.send("text")
        assert await ws.recv() == "text"
        await ws.send("fragments please")
        assert await ws.recv() == "one two three"
        big = b"x" * LARGE
        await ws.send([big[:1000], big[1000:]])  # our own fragments
        assert await ws.recv() == big
        # ping() needs a reader: recv in another task handles the pong.
        reader = asyncio.ensure_future(ws.recv())
        await asyncio.wait_for(ws.ping(b"ours"), 10)
        await ws.send("last")
        assert await reader == "last"
        await ws.close()
        assert ws.protocol.close_code == 1000
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        with pytest.raises(ConnectionClosedOK):
            await ws.send("after close")
        server.close()
    assert received[:2] == ["text", "fragments please"]
    assert received[-1] == ("closed", 1000)


async def test_wss_both_ways():
    from tls_helpers import client_context, server_context

    async def echo_once(connection) -> None:
        await connection.send(await connection.recv())

    # Our client, their TLS server.
    async with ws_serve(echo_once, "127.0.0.1", 0, ssl=server_context()) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await pws.connect(f"wss://localhost:{port}/", ssl_context=client_context())
        assert isinstance(ws.stream, pystream.TLSStream)
        await ws.send("over tls")
        assert await ws.recv() == "over tls"
        await ws.close()
        assert ws.protocol.close_code == 1000
        server.close()
    # Their client, our TLS server.
    (listener,) = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    tls_listener = pystream.TLSListener(listener, server_context())

    async def serve_one() -> None:
        ws = await pws.accept(await tls_listener.accept())
        async with ws:
            await ws.send(await ws.recv())

    serving = asyncio.ensure_future(serve_one())
    try:
        url = f"wss://localhost:{listener.local_address[1]}/"
        async with ws_connect(url, ssl=client_context()) as client:
            await client.send(b"secret")
            assert await client.recv() == b"secret"
        await asyncio.wait_for(serving, 10)
    finally:
        serving.cancel()
        await tls_listener.aclose()


async def test_the_server_closes_first():
    async def close_at_once(ws: pws.WebSocket) -> str:
        assert await ws.recv() == "hi"
        await ws.close(1001, "going away")
        return "done"

    async with PystreamServer(close_at_once) as server:
        async with ws_connect(server.url) as client:
            await client.send("hi")
            with pytest.raises(ConnectionClosedOK):
                await client.recv()
            assert client.close_code == 1001
            assert client.close_reason == "going away"
    assert server.outcomes == ["done"]


async def test_a_vanished_client_is_a_connection_closed_error():
    async def wait_for_messages(ws: pws.WebSocket) -> object:
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            return ("vanished", exc.rcvd)
        return "got a message"

    async with PystreamServer(wait_for_messages) as server:
        async with ws_connect(server.url) as client:
            client.transport.abort()  # no close frame, a reset
    assert server.outcomes == [("vanished", None)]


async def test_a_vanished_server_is_a_connection_closed_error():
    async def vanish(connection) -> None:
        await connection.recv()
        connection.transport.abort()

    async with ws_serve(vanish, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await pws.connect(f"ws://127.0.0.1:{port}/")
        await ws.send("hello?")
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        await ws.close()
        server.close()


async def test_a_refused_handshake_closes_the_stream():
    async def refuse(connection, request):
        return connection.respond(403, "no\n")

    async with ws_serve(lambda c: c.recv(), "127.0.0.1", 0, process_request=refuse) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(InvalidStatus) as info:
            await pws.connect(f"ws://127.0.0.1:{port}/")
        assert info.value.response.status_code == 403
        server.close()
