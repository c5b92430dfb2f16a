"""Bad input to public calls: a clear TypeError or ValueError, at once,
never an AttributeError from deep inside, a crash or a hang."""

from __future__ import annotations

import socket
import ssl

import pytest

import pystream

from helpers import make_pair


def _unconnected_udp():
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


CALLS = [
    (
        "happy_eyeballs_delay str",
        lambda: pystream.open_tcp_stream("127.0.0.1", 1, happy_eyeballs_delay="x"),
        TypeError,
        "happy_eyeballs_delay must be a number",
    ),
    (
        "happy_eyeballs_delay negative",
        lambda: pystream.open_tcp_stream("127.0.0.1", 1, happy_eyeballs_delay=-1),
        ValueError,
        "must not be negative",
    ),
    (
        "local_address int",
        lambda: pystream.open_tcp_stream("127.0.0.1", 1, local_address=123),
        TypeError,
        "expected",
    ),
    ("unix path int", lambda: pystream.open_unix_stream(123), TypeError, "os.PathLike"),
    ("unix path empty", lambda: pystream.open_unix_stream(""), ValueError, "Unix socket path"),
    (
        "backlog str",
        lambda: pystream.open_tcp_listeners(0, host="127.0.0.1", backlog="x"),
        TypeError,
        "backlog",
    ),
    (
        "backlog negative",
        lambda: pystream.open_tcp_listeners(0, host="127.0.0.1", backlog=-1),
        ValueError,
        "backlog",
    ),
    ("unix listener path int", lambda: pystream.open_unix_listener(5), TypeError, "os.PathLike"),
    (
        "serve no listeners",
        lambda: pystream.serve_listeners(print, []),
        ValueError,
        "at least one listener",
    ),
    (
        "serve handler None",
        lambda: pystream.serve_listeners(None, [object()]),
        TypeError,
        "handler must be callable",
    ),
    (
        "serve listener not a listener",
        lambda: pystream.serve_listeners(print, [object()]),
        TypeError,
        "accept",
    ),
    ("wrap_socket int", lambda: pystream.wrap_socket(5), TypeError, "socket.socket"),
    (
        "memory channel negative",
        lambda: pystream.open_memory_channel(-1),
        ValueError,
        "max_buffer_size",
    ),
    ("memory channel str", lambda: pystream.open_memory_channel("x"), TypeError, "max_buffer_size"),
    (
        "TLS over a non-stream",
        lambda: pystream.TLSStream(5, ssl.create_default_context()),
        TypeError,
        "transport_stream must have the methods",
    ),
    ("stapled non-streams", lambda: pystream.StapledStream(1, 2), TypeError, "send_stream"),
]


@pytest.mark.parametrize("name, call, exc_type, message", CALLS, ids=[c[0] for c in CALLS])
async def test_bad_argument_is_a_clear_error(name, call, exc_type, message):
    with pytest.raises(exc_type, match=message):
        result = call()
        if hasattr(result, "__await__"):
            await result


async def test_wrap_socket_rejects_an_unconnected_socket():
    with _unconnected_udp() as sock:
        with pytest.raises(ValueError, match="connected socket"):
            await pystream.wrap_socket(sock)


async def test_tls_needs_an_ssl_context():
    a, b = await pystream.open_stream_pair()
    async with a, b:
        with pytest.raises(TypeError, match="ssl.SSLContext"):
            pystream.TLSStream(a, None)


@pytest.mark.parametrize("kind", ["pair", "tcp"])
async def test_bad_arguments_to_stream_methods(kind):
    a, b = await make_pair(kind)
    async with a, b:
        for bad, exc_type in (
            (0, ValueError),
            (-1, ValueError),
            (1.5, TypeError),
            ("8", TypeError),
        ):
            with pytest.raises(exc_type):
                await a.receive_some(bad)
        for bad in (None, [1, 2], "text", 12):
            with pytest.raises(TypeError):
                await a.send_all(bad)
        with pytest.raises(TypeError):
            await a.receive_into(b"read-only")
        with pytest.raises(ValueError):
            await a.receive_into(bytearray())
        with pytest.raises(ValueError):
            await a.readuntil(b"")
        with pytest.raises(TypeError):
            await a.readuntil("\n")
        with pytest.raises(ValueError):
            await a.readuntil(b"\n", limit=0)
        with pytest.raises(ValueError):
            await a.readexactly(-1)
        with pytest.raises(TypeError):
            await a.readexactly("3")
        with pytest.raises(TypeError):
            await a.read(1.5)
        with pytest.raises(TypeError):
            a.setsockopt("level", 1, 1)
        with pytest.raises(ValueError):
            a.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, -5)
        # After all that, the stream works.
        await a.send_all(b"fine")
        assert await b.readexactly(4) == b"fine"
        # A huge max_bytes is legal (the new user met a bare
        # OverflowError from C): it returns what is there.
        await a.send_all(b"huge")
        assert await b.receive_some(2**100) == b"huge"
        with pytest.raises(TypeError, match="max_bytes"):
            await b.receive_some(1.5)
