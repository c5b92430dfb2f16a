"""The per-stream default ``limit`` of readuntil and readline, given to the
openers and listeners as asyncio's ``open_connection(limit=)`` and
``start_server(limit=)`` take it (pystream/_base/_readers.py's ``limit``
property, set by pystream/_streams/)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest
from test_abc import xor_pair

import pystream

from test_tls import handshaken, socket_pair_maker, tls_over

BAD_LIMITS = [
    (0, ValueError),
    (-1, ValueError),
    ("64", TypeError),
    (None, TypeError),
    (True, TypeError),
    (1.5, TypeError),
]


async def opened(kind, directory, **limit):
    """(sender, receiver, closers) with the receiver made by the opener of
    ``kind``, given ``limit`` if any (Unix sockets: in ``directory``)."""
    if kind == "pair":
        a, b = await pystream.open_stream_pair(**limit)
        return a, b, [a, b]
    if kind == "pipe":
        r, w = await pystream.open_pipe(**limit)
        return w, r, [w, r]
    if kind == "wrap_socket":
        x, y = socket.socketpair()
        a = await pystream.wrap_socket(x)
        b = await pystream.wrap_socket(y, **limit)
        return a, b, [a, b]
    if kind == "wrap_fd":
        r, w = os.pipe()
        receiver = await pystream.wrap_fd(r, **limit)
        sender = await pystream.wrap_fd(w)
        return sender, receiver, [sender, receiver]
    if kind == "tcp":
        listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].local_address[1]
        client = await pystream.open_tcp_stream("127.0.0.1", port, **limit)
        server = await listeners[0].accept()
        return server, client, [client, server, *listeners]
    if kind == "tcp_listener":
        listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1", **limit)
        port = listeners[0].local_address[1]
        client = await pystream.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
        return client, server, [client, server, *listeners]
    path = str(directory / "sock")
    listener = await pystream.open_unix_listener(path, **(limit if kind == "unix_listener" else {}))
    client = await pystream.open_unix_stream(path, **(limit if kind == "unix" else {}))
    server = await listener.accept()
    closers = [client, server, listener]
    return (server, client, closers) if kind == "unix" else (client, server, closers)


OPENERS = ["pair", "pipe", "wrap_socket", "wrap_fd", "tcp", "tcp_listener", "unix", "unix_listener"]


async def close_all(resources) -> None:
    for resource in resources:
        await resource.aclose()


@pytest.mark.parametrize("kind", OPENERS)
async def test_the_openers_limit_is_readline_and_readuntils_default(kind, tmp_path):
    sender, receiver, closers = await opened(kind, tmp_path, limit=5)
    try:
        assert receiver.limit == 5
        await sender.send_all(b"0123456789\nabc\nxyz")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await receiver.readline()
        assert info.value.consumed > 5
        with pytest.raises(asyncio.LimitOverrunError):
            await receiver.readuntil(b"\n")
        # The data stayed; a call's own limit overrides the stream's.
        assert await receiver.readline(limit=10) == b"0123456789\n"
        assert await receiver.readuntil(b"\n") == b"abc\n"
        await sender.send_eof()
        assert await receiver.readline() == b"xyz"  # asyncio's partial line at EOF
        assert await receiver.readline() == b""
    finally:
        await close_all(closers)


@pytest.mark.parametrize("kind", OPENERS)
async def test_without_a_limit_it_is_asyncios_65536(kind, tmp_path):
    sender, receiver, closers = await opened(kind, tmp_path)
    try:
        assert receiver.limit == 65536
        at_the_limit = b"a" * 65536 + b"\n"
        beyond = b"b" * 65537 + b"\n"
        send = asyncio.ensure_future(sender.send_all(at_the_limit + beyond))
        assert await receiver.readline() == at_the_limit
        with pytest.raises(asyncio.LimitOverrunError):
            await receiver.readline()
        assert await receiver.readline(limit=65537) == beyond
        await send
    finally:
        await close_all(closers)


async def test_accepted_streams_take_the_listeners_limit_as_it_is_then():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1", limit=7)
    listener = listeners[0]
    port = listener.local_address[1]
    streams = []
    try:
        assert listener.limit == 7
        streams.append(await pystream.open_tcp_stream("127.0.0.1", port))
        streams.append(await listener.accept())
        listener.limit = 9
        streams.append(await pystream.open_tcp_stream("127.0.0.1", port))
        streams.append(await listener.accept())
        assert [s.limit for s in streams] == [65536, 7, 65536, 9]
        with pytest.raises(ValueError, match="limit"):
            listener.limit = 0
    finally:
        await close_all(streams + listeners)


async def test_serve_tcp_passes_the_limit_on_and_checks_it():
    async def handler(stream):  # pragma: no cover - never connected
        pass

    for bad, error in BAD_LIMITS:
        with pytest.raises(error, match="limit"):
            await pystream.serve_tcp(handler, 0, host="127.0.0.1", limit=bad)


async def test_process_pipes_and_stdio_take_the_limit():
    code = "import sys; sys.stdout.write(sys.stdin.readline() * 2)"
    async with await pystream.open_process(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        limit=4,
    ) as proc:
        assert proc.stdout.limit == proc.stderr.limit == proc.stdio.limit == 4
        await proc.stdio.send_all(b"0123456789\n")
        with pytest.raises(asyncio.LimitOverrunError):
            await proc.stdio.readline()
        assert await proc.stdio.readline(limit=10) == b"0123456789\n"
        # (the stapled stream read both lines ahead: the second is there too)
        assert await proc.stdio.readline(limit=10) == b"0123456789\n"
        assert await proc.wait() == 0


async def test_every_opener_checks_the_limit_before_opening_anything(tmp_path):
    path = str(tmp_path / "sock")
    for bad, error in BAD_LIMITS:
        openers = [
            pystream.open_tcp_stream("127.0.0.1", 1, limit=bad),
            pystream.open_unix_stream(path, limit=bad),
            pystream.open_tcp_listeners(0, host="127.0.0.1", limit=bad),
            pystream.open_unix_listener(path, limit=bad),
            pystream.open_stream_pair(limit=bad),
            pystream.open_pipe(limit=bad),
            pystream.open_process(["true"], limit=bad),
            pystream.open_stdin(limit=bad),
        ]
        for opener in openers:
            with pytest.raises(error, match="limit"):
                await opener
        x, y = socket.socketpair()
        r, w = os.pipe()
        try:
            with pytest.raises(error, match="limit"):
                await pystream.wrap_socket(x, limit=bad)
            with pytest.raises(error, match="limit"):
                await pystream.wrap_fd(r, limit=bad)
            assert x.fileno() >= 0, "the socket is still the caller's"
            os.fstat(r)  # the fd is still the caller's (and open)
        finally:
            for sock in (x, y):
                sock.close()
            os.close(r)
            os.close(w)
    assert not os.path.exists(path), "nothing was bound"


async def test_the_limit_property_checks_what_it_is_set_to():
    a, b = await pystream.open_stream_pair()
    async with a, b:
        for bad, error in BAD_LIMITS:
            with pytest.raises(error, match="limit"):
                b.limit = bad
        assert b.limit == 65536
        b.limit = 3
        await a.send_all(b"abcd\n")
        with pytest.raises(asyncio.LimitOverrunError):
            await b.readline()
        assert await b.readline(limit=4) == b"abcd\n"


async def test_a_tls_stream_takes_a_limit_through_the_property():
    client, server = await handshaken(tls_over(socket_pair_maker))()
    async with client, server:
        assert client.limit == 65536
        client.limit = 4
        await server.send_all(b"0123456789\nab\n")
        with pytest.raises(asyncio.LimitOverrunError):
            await client.readuntil(b"\n")
        assert await client.readline(limit=10) == b"0123456789\n"
        assert await client.readline() == b"ab\n"
        with pytest.raises(TypeError, match="limit"):
            client.limit = "4"


async def test_a_subclass_with_only_the_primitives_has_a_limit_too():
    a, b = await xor_pair()
    async with a, b:
        assert b.limit == 65536
        b.limit = 4
        await a.send_all(b"0123456789\nab\n")
        with pytest.raises(asyncio.LimitOverrunError):
            await b.readline()
        assert await b.readline(limit=10) == b"0123456789\n"
        assert await b.readline() == b"ab\n"
        with pytest.raises(ValueError, match="limit"):
            b.limit = 0


async def test_a_tls_listener_passes_the_transports_limit_on():
    from tls_helpers import client_context, server_context

    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1", limit=5)
    tls_listener = pystream.TLSListener(listeners[0], server_context())
    port = listeners[0].local_address[1]
    client = await pystream.open_tcp_stream("127.0.0.1", port)
    server = await tls_listener.accept()
    tls_client = pystream.TLSStream(client, client_context(), server_hostname="localhost")
    try:
        assert server.limit == 5
        await asyncio.gather(tls_client.send_all(b"0123456789\n"), server.do_handshake())
        with pytest.raises(asyncio.LimitOverrunError):
            await server.readline()
        assert await server.readline(limit=20) == b"0123456789\n"
    finally:
        await close_all([tls_client, server, *listeners])
