"""AsyncioStream: the Stream API over an asyncio reader/writer pair."""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest

import pystream
from pystream.testing import check_half_closeable_stream


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
        "127.0.0.1", port, ssl=client_context(), server_hostname="localhost"
    )
    server.close()
    client = pystream.AsyncioStream(reader, writer)
    peer = pystream.AsyncioStream(*await accepted)
    async with client, peer:
        with pytest.raises(NotImplementedError):
            await client.send_eof()
        await client.send_all(b"still open")  # a refused send_eof closes nothing
        assert await peer.readexactly(10) == b"still open"


async def asyncio_pair(unix=False):
    accepted = asyncio.get_running_loop().create_future()

    async def on_connect(reader, writer):
        accepted.set_result((reader, writer))

    if unix:
        path = os.path.join(tempfile.mkdtemp(), "asyncio.sock")
        server = await asyncio.start_unix_server(on_connect, path)
        reader, writer = await asyncio.open_unix_connection(path)
    else:
        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    server_reader, server_writer = await accepted
    # Stop listening.  Not wait_closed(): since Python 3.12.1 it also waits
    # for the accepted connection to end.
    server.close()
    return (
        pystream.AsyncioStream(reader, writer),
        pystream.AsyncioStream(server_reader, server_writer),
    )


async def clogged_asyncio_pair():
    # Unix sockets: their buffers do not grow while data flows, as TCP's do.
    a, b = await asyncio_pair(unix=True)
    for x in (a, b):
        # Write until the kernel buffers and the peer's StreamReader (which
        # stops reading at its limit) are full and the writer's protocol is
        # paused for good (asyncio's flow control, which drain waits on).
        transport = x.writer.transport
        protocol = transport.get_protocol()
        while True:
            while not protocol._paused:
                transport.write(b"\0" * (1 << 20))
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.05)
            if protocol._paused:
                break
    return a, b


async def test_asyncio_stream():
    await check_half_closeable_stream(asyncio_pair, clogged_asyncio_pair)
