"""The benchmark's TLS echo servers, each written the way its library's
documentation shows, with 64 KiB reads: pystream's ``TLSStream`` over its
``SocketStream`` (``TLSListener``), asyncio streams with ``ssl=``, trio's
``SSLStream`` (``serve_ssl_over_tcp``).  Each takes a certificate and its
key (PEM files), listens on 127.0.0.1 port 0, calls ``ready(port)`` and
echoes (the plain servers' echoes, ``_handlers``) until killed.  The load generator ends each connection with
close_notify, so a clean end reads as end of stream everywhere."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import ssl
import subprocess
from typing import Callable

from ._handlers import CHUNK, asyncio_streams_echo, stream_echo

__all__ = [
    "make_certificate",
    "run_trio_tls",
    "serve_asyncio_streams_tls",
    "serve_pystream_tls",
    "server_context",
]

Ready = Callable[[int], None]


def make_certificate(directory: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (P-256, valid a day), made
    with the openssl command in directory: (certificate file, key file).
    Raises RuntimeError if the command is missing or fails."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the TLS workloads need the openssl command (Debian: openssl)")
    cert = os.path.join(directory, "bench-cert.pem")
    key = os.path.join(directory, "bench-key.pem")
    # ec_paramgen_curve: ECDSA on P-256, the cheapest handshake signature.
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        + ["-nodes", "-days", "1", "-subj", "/CN=pystream-bench"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        capture_output=True,
        text=True,
    )
    if made.returncode:
        raise RuntimeError(f"openssl could not make a certificate: {made.stderr.strip()}")
    return cert, key


def server_context(cert: str, key: str) -> ssl.SSLContext:
    # A server context for sure (create_default_context makes a generic one
    # on PyPy).  Defaults otherwise: TLS 1.3, the cipher OpenSSL prefers.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def serve_pystream_tls(cert: str, key: str, ready: Ready) -> None:
    import pystream

    echo = stream_echo((pystream.BrokenResourceError,))
    context = server_context(cert, key)
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    ready(int(listeners[0].local_address[1]))
    await pystream.serve_listeners(
        echo, [pystream.TLSListener(listener, context) for listener in listeners]
    )


async def serve_asyncio_streams_tls(cert: str, key: str, ready: Ready) -> None:
    echo = asyncio_streams_echo((ConnectionError, ssl.SSLError))
    context = server_context(cert, key)
    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context, limit=CHUNK)
    ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def run_trio_tls(cert: str, key: str, ready: Ready) -> None:
    import trio

    echo = stream_echo((trio.BrokenResourceError,))

    async def main() -> None:
        context = server_context(cert, key)
        async with trio.open_nursery() as nursery:
            serve = functools.partial(trio.serve_ssl_over_tcp, host="127.0.0.1")
            listeners = await nursery.start(serve, echo, 0, context)
            ready(listeners[0].transport_listener.socket.getsockname()[1])

    trio.run(main)
