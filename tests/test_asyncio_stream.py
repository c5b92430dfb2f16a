"""AsyncioStream: the Stream API over an asyncio reader/writer pair."""

from __future__ import annotations

import asyncio

import pytest

import pystream


async def test_asyncio_stream_over_ssl_send_eof_is_not_implemented():
    """An SSL transport cannot write EOF: say so, instead of doing nothing
    while the peer waits for an EOF that never comes."""
    from tls_helpers import client_context, server_context

    accepted = asyncio.get_running_loop().create_future()

    async def on_connect(reader, writer):
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=server_context())
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context(), server_hostname="localhost")
    server.close()
    client = pystream.AsyncioStream(reader, writer)
    peer = pystream.AsyncioStream(*await accepted)
    async with client, peer:
        with pytest.raises(NotImplementedError):
            await client.send_eof()
        await client.send_all(b"still open")  # a refused send_eof closes nothing
        assert await peer.readexactly(10) == b"still open"
