"""WebSocket over pystream, driven by the websockets library's sans-I/O
protocol objects (``websockets.server.ServerProtocol``,
``websockets.client.ClientProtocol``): websockets parses and builds the
frames and runs the handshakes; this module moves their bytes over a
pystream stream::

    ws = await connect("ws://127.0.0.1:8765/chat")      # a client
    await ws.send("hello"); print(await ws.recv())
    await ws.close()

    async def handler(stream):                          # a server
        ws = await accept(stream)
        async for message in ws:
            await ws.send(message)
    await pystream.serve_tcp(handler, 8765)

``recv`` returns whole messages (``str`` for text, ``bytes`` for binary),
joining fragments; pings are answered as they arrive; ``ping()`` waits for
the matching pong.  Once the connection is closed, or the peer vanished,
``recv`` and ``send`` raise websockets' own ``ConnectionClosedOK`` or
``ConnectionClosedError``.  Needs websockets (``pip install
pystream[websockets]``); one task may receive while another sends.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any, Optional, Union

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidState
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.protocol import CLOSED, OPEN, Protocol
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from .._base._errors import BrokenResourceError, ClosedResourceError
from .._streams._open import open_unix_stream
from .._streams._tcp_connect import open_tcp_stream
from .._wrappers._tls import TLSStream
from ..abc import Stream
from ._timeout import timeout

__all__ = ["WebSocket", "accept", "connect"]

Message = Union[str, bytes]

# How long close() waits for the peer's side of the closing handshake.
CLOSE_TIMEOUT = 10.0


class WebSocket:
    """One WebSocket connection over a pystream stream (made by
    ``connect`` or ``accept``).

    Attributes:
        stream: the pystream stream underneath.
        protocol: the websockets protocol object (for ``state``,
            ``close_code``, ``close_reason``, ...).
        handshake: the client's ``Request`` (on a server) or the server's
            ``Response`` (on a client).
    """

    def __init__(
        self, stream: Stream, protocol: Protocol, handshake: Union[Request, Response, None]
    ) -> None:
        self.stream = stream
        self.protocol = protocol
        self.handshake = handshake
        self._messages: deque[Message] = deque()
        self._fragments: list[bytes] = []
        self._fragment_opcode: Optional[Opcode] = None
        self._pings: dict[bytes, asyncio.Future[None]] = {}
        self._send_lock = asyncio.Lock()
        self._receive_lock = asyncio.Lock()
        self._eof = False

    # -- receiving -------------------------------------------------------
    async def recv(self) -> Message:
        """The next whole message: ``str`` (text) or ``bytes`` (binary).

        Raises:
            websockets.exceptions.ConnectionClosed: the connection closed
                (``ConnectionClosedOK`` after a normal closing handshake,
                ``ConnectionClosedError`` otherwise, a vanished peer too).

        Cancellation:
            Nothing is lost: bytes received stay in the protocol, messages
            in the queue.
        """
        async with self._receive_lock:
            while not self._messages:
                if not await self._receive_more():
                    raise self._closed_error()
            return self._messages.popleft()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code in (1000, 1001):
                    return
                if self.protocol.close_code in (1000, 1001):
                    return
                raise

    async def _receive_more(self) -> bool:
        """Feed the protocol what the stream has; handle the events; False
        once nothing more will come."""
        if self._eof:
            return False
        try:
            data = await self.stream.receive_some()
        except (BrokenResourceError, ClosedResourceError):
            data = b""  # the peer vanished, or the stream was closed: EOF
        if data:
            self.protocol.receive_data(data)
        else:
            self._eof = True
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            self._handle(event)
        await self._flush()
        if self.protocol.state is CLOSED:
            self._eof = True
            await self._release_pings()
        return not self._eof or bool(self._messages)

    def _handle(self, frame: Any) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PONG:
            waiter = self._pings.pop(bytes(frame.data), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if opcode is not Opcode.CONT:
                self._fragment_opcode = opcode
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments.clear()
                if self._fragment_opcode is Opcode.TEXT:
                    self._messages.append(data.decode())
                else:
                    self._messages.append(data)
        # PING: the protocol queued the pong.  CLOSE: it queued the reply.

    def _closed_error(self) -> ConnectionClosed:
        return self.protocol.close_exc

    # -- sending ---------------------------------------------------------
    async def send(self, message: Union[Message, Iterable[Message]]) -> None:
        """Send a message: ``str`` as text, bytes-like as binary, or an
        iterable of those (all of one kind) as one fragmented message.

        Raises:
            websockets.exceptions.ConnectionClosed: the connection is
                closing or closed.
            TypeError: not a str, bytes or iterable of those.
        """
        async with self._send_lock:
            try:
                if isinstance(message, str):
                    self.protocol.send_text(message.encode())
                elif isinstance(message, (bytes, bytearray, memoryview)):
                    self.protocol.send_binary(bytes(message))
                else:
                    self._send_fragments(message)
            except InvalidState as exc:
                raise self._closed_error() from exc
            await self._flush_locked()

    def _send_fragments(self, fragments: Iterable[Message]) -> None:
        items = list(fragments)
        if not items:
            raise TypeError("a fragmented message needs at least one fragment")
        text = isinstance(items[0], str)
        if any(isinstance(item, str) != text for item in items):
            raise TypeError("the fragments of one message must all be str or all bytes")
        parts = [item.encode() if isinstance(item, str) else bytes(item) for item in items]
        first, *rest = parts
        if text:
            self.protocol.send_text(first, fin=not rest)
        else:
            self.protocol.send_binary(first, fin=not rest)
        for i, part in enumerate(rest):
            self.protocol.send_continuation(part, fin=i == len(rest) - 1)

    async def ping(self, data: Optional[bytes] = None) -> None:
        """Send a ping and wait for its pong (another task must be reading:
        ``recv`` handles the pong).  ``data`` defaults to 4 random bytes.

        Raises:
            websockets.exceptions.ConnectionClosed: closed before the pong.
        """
        payload = os.urandom(4) if data is None else bytes(data)
        waiter = asyncio.get_running_loop().create_future()
        self._pings[payload] = waiter
        async with self._send_lock:
            try:
                self.protocol.send_ping(payload)
            except InvalidState as exc:
                self._pings.pop(payload, None)
                raise self._closed_error() from exc
            await self._flush_locked()
        await waiter

    async def _release_pings(self) -> None:
        for waiter in self._pings.values():
            if not waiter.done():
                waiter.set_exception(self._closed_error())
                waiter.exception()  # retrieved: nobody may be waiting
        self._pings.clear()

    async def _flush(self) -> None:
        async with self._send_lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        for data in self.protocol.data_to_send():
            try:
                if data:
                    await self.stream.send_all(data)
                else:
                    await self._send_eof()
            except (BrokenResourceError, ClosedResourceError):
                # The peer vanished: what recv reads next says how.
                return

    async def _send_eof(self) -> None:
        if isinstance(self.stream, TLSStream):
            # TLS 1.2 has no half-close: close the whole stream.
            await self.stream.aclose()
        else:
            await self.stream.send_eof()

    # -- closing ---------------------------------------------------------
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake: send a close frame, read until the peer's
        (messages still arriving are dropped), then close the stream.
        Waits at most ``CLOSE_TIMEOUT`` seconds for the peer.  Idempotent;
        a cancelled close still closes the stream."""
        try:
            if self.protocol.state is OPEN:
                async with self._send_lock:
                    self.protocol.send_close(code, reason)
                    await self._flush_locked()
            try:
                async with timeout(CLOSE_TIMEOUT):
                    async with self._receive_lock:
                        while await self._receive_more():
                            self._messages.clear()
            except TimeoutError:
                pass
        finally:
            await self.stream.aclose()

    async def __aenter__(self) -> WebSocket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _open(
    uri: Any, ssl_context: Optional[ssl.SSLContext], unix_path: Optional[str]
) -> Stream:
    stream: Stream
    if unix_path is not None:
        stream = await open_unix_stream(unix_path)
    else:
        stream = await open_tcp_stream(uri.host, uri.port)
    if uri.secure:
        context = ssl_context or ssl.create_default_context()
        tls = TLSStream(stream, context, server_hostname=uri.host)
        try:
            await tls.do_handshake()
        except BaseException:
            await tls.aclose()
            raise
        stream = tls
    return stream


async def connect(
    url: str,
    *,
    stream: Optional[Stream] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    unix_path: Optional[str] = None,
    **protocol_options: Any,
) -> WebSocket:
    """Open a WebSocket client connection to ``url`` (``ws://`` or
    ``wss://``), over a new TCP (TLS for ``wss``) connection, a Unix
    socket at ``unix_path``, or the given pystream ``stream``.
    ``protocol_options`` go to ``ClientProtocol`` (``subprotocols``,
    ``max_size``, ...).

    Raises:
        websockets.exceptions.InvalidHandshake: the server refused (its
            subclasses say how); the stream is closed.
        OSError, pystream.BrokenResourceError: connecting failed.
    """
    uri = parse_uri(url)
    if stream is None:
        stream = await _open(uri, ssl_context, unix_path)
    try:
        protocol = ClientProtocol(uri, **protocol_options)
        protocol.send_request(protocol.connect())
        ws = WebSocket(stream, protocol, None)
        await ws._flush()
        response: Optional[Response] = None
        while response is None:
            data = await stream.receive_some()
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            for event in protocol.events_received():
                if isinstance(event, Response):
                    response = event
                else:  # frames sent right after the handshake
                    ws._handle(event)
            if response is None and not data:
                raise protocol.handshake_exc or ConnectionError("the server closed the connection")
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        ws.handshake = response
        await ws._flush()
        return ws
    except BaseException:
        await stream.aclose()
        raise


async def accept(stream: Stream, **protocol_options: Any) -> WebSocket:
    """The server side of the opening handshake on ``stream`` (an accepted
    connection, TLS or not): read the client's request, answer it (101, or
    the error websockets chose, closing the stream) and return the
    ``WebSocket``.  ``protocol_options`` go to ``ServerProtocol``
    (``subprotocols``, ``origins``, ``max_size``, ...).

    Raises:
        websockets.exceptions.InvalidHandshake: the request was not a
            valid WebSocket upgrade (the stream is closed).
    """
    try:
        protocol = ServerProtocol(**protocol_options)
        request: Optional[Request] = None
        frames: list[Any] = []
        while request is None:
            data = await stream.receive_some()
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            for event in protocol.events_received():
                if isinstance(event, Request):
                    request = event
                else:
                    frames.append(event)
            if request is None and not data:
                raise protocol.handshake_exc or ConnectionError("the client closed the connection")
        response = protocol.accept(request)
        protocol.send_response(response)
        ws = WebSocket(stream, protocol, request)
        await ws._flush()
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        # Frames the client sent right behind its request.
        protocol.receive_data(b"")
        for event in frames + list(protocol.events_received()):
            ws._handle(event)
        return ws
    except BaseException:
        await stream.aclose()
        raise
