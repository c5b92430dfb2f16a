"""httpcore and httpx on pystream.

``PystreamBackend()`` is an ``httpcore.AsyncNetworkBackend``: give it to a
pool (``httpcore.AsyncConnectionPool(network_backend=PystreamBackend())``)
and every connection the pool opens is a pystream ``SocketStream``, its TLS
a pystream ``TLSStream``.  ``httpx_transport(**options)`` builds httpx's own
``AsyncHTTPTransport`` (so ``verify``, ``cert``, ``http1``, ``http2``,
``limits``, ``retries``, ``proxy``, ... mean what they mean there) with
that backend under it::

    from pystream.interop.httpcore import httpx_transport
    client = httpx.AsyncClient(transport=httpx_transport())

Errors become httpcore's (httpx turns those into its own): an ``OSError``
or a failed TLS handshake while connecting is ``ConnectError``; a stream
error while reading is ``ReadError``, while writing ``WriteError``; a
timeout is ``ConnectTimeout``, ``ReadTimeout`` or ``WriteTimeout``, the
stream's error the ``__cause__`` of each.  Needs httpcore (and httpx for
``httpx_transport``); pystream does not depend on either:
``pip install pystream[httpx]``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any, Optional, Union

import httpcore

from .._base._errors import BrokenResourceError, BusyResourceError, ClosedResourceError
from .._streams._open import open_unix_stream
from .._streams._socket import SocketStream
from .._streams._tcp_connect import open_tcp_stream
from .._wrappers._tls import TLSStream
from ..abc import Stream
from ._timeout import timeout as _timeout

__all__ = ["PystreamBackend", "PystreamNetworkStream", "httpx_transport"]

SocketOption = Union[
    tuple[int, int, int], tuple[int, int, Union[bytes, bytearray]], tuple[int, int, None, int]
]

_STREAM_ERRORS = (BrokenResourceError, ClosedResourceError, BusyResourceError, OSError)


class PystreamNetworkStream(httpcore.AsyncNetworkStream):
    """One connection of an httpcore pool: a pystream ``SocketStream``, or a
    ``TLSStream`` over one after ``start_tls``."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._socket: Optional[socket.socket] = None

    async def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        """Up to ``max_bytes`` bytes, ``b""`` at the end of the stream.
        A cancelled read loses nothing (the bytes stay in the stream)."""
        try:
            if timeout is None:
                return await self._stream.receive_some(max_bytes)
            async with _timeout(timeout):
                return await self._stream.receive_some(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc) or "timed out reading") from exc
        except _STREAM_ERRORS as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        if not buffer:
            return
        try:
            if timeout is None:
                await self._stream.send_all(buffer)
                return
            async with _timeout(timeout):
                await self._stream.send_all(buffer)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "timed out writing") from exc
        except _STREAM_ERRORS as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> PystreamNetworkStream:
        """The handshake on this connection; the TLS stream replaces it
        (closing the returned stream closes this one's).  On failure the
        connection is closed."""
        tls = TLSStream(self._stream, ssl_context, server_hostname=server_hostname)
        try:
            async with _timeout(timeout):
                await tls.do_handshake()
        except BaseException as exc:
            await _close_at_once(tls)
            if isinstance(exc, TimeoutError):
                raise httpcore.ConnectTimeout("timed out in the TLS handshake") from exc
            if isinstance(exc, _STREAM_ERRORS):
                raise httpcore.ConnectError(str(exc.__cause__ or exc)) from exc
            raise
        secured = PystreamNetworkStream(tls)
        # A socket handed out before is the new stream's to close.
        secured._socket, self._socket = self._socket, None
        return secured

    def get_extra_info(self, info: str) -> Any:
        """``ssl_object``, ``client_addr``, ``server_addr``, ``socket`` (a
        ``socket.socket`` on a duplicate of the descriptor, closed with the
        stream) and ``is_readable``; None for anything else."""
        if info == "ssl_object":
            return self._stream.ssl_object if isinstance(self._stream, TLSStream) else None
        if info == "is_readable":
            return self._is_readable()
        sock = _innermost(self._stream)
        if sock is None:
            return None
        if info == "client_addr":
            return sock.local_address
        if info == "server_addr":
            return sock.remote_address
        if info == "socket":
            if self._socket is None and sock.fileno() >= 0:
                self._socket = socket.socket(fileno=_dup(sock.fileno()))
            return self._socket
        return None

    def _is_readable(self) -> bool:
        """Whether the peer sent something (data, the end of file, a reset)
        on what is meant to be an idle connection, or it is closed: httpcore
        then drops it rather than sending a request into a closing
        connection.

        No system call: each layer's ``receive_ready()`` answers from what
        it holds (a TLS layer: its decrypted bytes, its undecrypted records)
        and asks the layer below, down to the socket's C core, which reads
        whether or not anyone receives and stops only with bytes buffered
        or reading ended, so it has an answer for an idle connection too.
        No poll of the descriptor is needed as a fallback.  What it cannot
        know is what the kernel received since the event loop's last
        libuv pass (the next pass reads it); a poll would see that one
        loop iteration sooner, and neither sees a FIN still on the wire.
        """
        return self._stream.receive_ready()


def _innermost(stream: Stream) -> Optional[SocketStream]:
    while isinstance(stream, TLSStream):
        stream = stream.transport_stream
    return stream if isinstance(stream, SocketStream) else None


def _dup(fd: int) -> int:
    import os

    return os.dup(fd)


async def _close_at_once(stream: Stream) -> None:
    # A failed or abandoned connection: close without waiting for the peer.
    # Shielded from a cancellation that is already arriving, so what was
    # opened is closed on every path.
    closing = asyncio.ensure_future(stream.aclose())
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        await closing
        raise
    except Exception:
        pass


class PystreamBackend(httpcore.AsyncNetworkBackend):
    """An ``httpcore.AsyncNetworkBackend`` on pystream (asyncio)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Optional[Iterable[SocketOption]] = None,
    ) -> PystreamNetworkStream:
        """A TCP connection (``TCP_NODELAY`` on), happy eyeballs across the
        addresses ``host`` resolves to; ``socket_options`` are set on it
        once connected, as httpcore's own backends do."""
        try:
            async with _timeout(timeout):
                stream = await open_tcp_stream(host, port, local_address=local_address)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return await _with_options(stream, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: Optional[float] = None,
        socket_options: Optional[Iterable[SocketOption]] = None,
    ) -> PystreamNetworkStream:
        try:
            async with _timeout(timeout):
                stream = await open_unix_stream(path)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {path}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return await _with_options(stream, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _with_options(
    stream: SocketStream, socket_options: Optional[Iterable[SocketOption]]
) -> PystreamNetworkStream:
    try:
        for option in socket_options or ():
            level, name, value = option[0], option[1], option[2]
            if value is None:
                # (level, name, None, optlen): Python's form for an option
                # given as a length; pystream's setsockopt takes bytes:
                # that many zero bytes.
                value = bytes(option[3]) if len(option) > 3 else b""
            stream.setsockopt(level, name, value if isinstance(value, int) else bytes(value))
    except BaseException as exc:
        await _close_at_once(stream)
        if isinstance(exc, OSError):
            raise httpcore.ConnectError(str(exc)) from exc
        raise
    return PystreamNetworkStream(stream)


def httpx_transport(**options: Any) -> Any:
    """An ``httpx.AsyncHTTPTransport`` taking the same keyword arguments
    (``verify``, ``cert``, ``http1``, ``http2``, ``limits``, ``retries``,
    ``proxy``, ``uds``, ``local_address``, ``socket_options``, ...), whose
    connections are pystream streams.

    Raises:
        ImportError: httpx is not installed.
        TypeError: an option httpx's transport does not take.
    """
    import httpx

    transport = httpx.AsyncHTTPTransport(**options)
    pool = transport._pool
    if not hasattr(pool, "_network_backend"):  # pragma: no cover - an httpcore change
        raise RuntimeError("this httpcore's connection pool has no network backend to replace")
    pool._network_backend = PystreamBackend()
    return transport
