"""Using pystream streams where other libraries' stream interfaces are
expected.

**Trio-style code** needs nothing: pystream's ``Stream`` has Trio's names and
contract (``send_all``, ``wait_send_all_might_not_block``, ``send_eof``,
``receive_some``, ``aclose``, ``async with``, ``async for``), so functions
written against ``trio.abc.Stream``'s methods accept a pystream stream as it
is, on asyncio.  Trio's exceptions are not pystream's, though: code that
catches ``trio.BrokenResourceError`` must catch pystream's instead.

**anyio** has its own interface (``anyio.abc.ByteStream``: ``send``,
``receive`` raising ``EndOfStream``, ``send_eof``, ``aclose``) and its own
exceptions.  ``as_anyio_stream(stream)`` wraps a pystream stream in an
``anyio.abc.ByteStream``, translating both, so anyio's helpers
(``BufferedByteReceiveStream``, ``TextStream``, ...) and anyio-based
libraries run over pystream (on anyio's asyncio backend).
``from_anyio_stream(stream)`` goes the other way: any anyio byte stream as a
pystream ``Stream``, so pystream's helpers, and ``pystream.testing``'s kit
and state machine, run on anyio streams.  Both need anyio installed;
pystream does not depend on it (``pip install pystream[anyio]``).

**httpx and httpcore**: ``pystream.interop.httpcore`` (``PystreamBackend``,
``httpx_transport``).
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Mapping, Optional

from .._base._errors import BrokenResourceError, BusyResourceError, ClosedResourceError
from .._streams._socket import SocketStream
from .._wrappers._tls import TLSStream
from ..abc import Stream
from ._from_anyio import AnyioStream, from_anyio_stream

__all__ = ["AnyioStream", "as_anyio_stream", "from_anyio_stream"]

_anyio_class: Optional[type] = None


def as_anyio_stream(stream: Stream) -> Any:
    """Wrap ``stream`` (any pystream ``Stream``) in an
    ``anyio.abc.ByteStream``.

    ``receive(max_bytes=65536)`` is ``receive_some``, raising
    ``anyio.EndOfStream`` at the end of file; ``send`` is ``send_all``;
    ``send_eof`` and ``aclose`` are the stream's.  pystream's
    ``ClosedResourceError``, ``BrokenResourceError`` and
    ``BusyResourceError`` become anyio's, with pystream's as
    ``__cause__``; every other error, and what a cancellation does, are
    the stream's.

    Its typed attributes (``extra()``): for a pystream socket underneath
    (under any ``TLSStream``s), anyio's ``SocketAttribute`` ``family``,
    ``local_address``, ``remote_address`` and, for TCP, ``local_port`` and
    ``remote_port`` (not ``raw_socket``: the C core owns the descriptor);
    for a ``TLSStream`` (the outermost), ``TLSAttribute`` ``ssl_object``,
    ``server_side``, ``tls_version``, ``cipher``, ``shared_ciphers``,
    ``alpn_protocol``, ``peer_certificate``, ``peer_certificate_binary``
    and ``standard_compatible`` (True: a pystream ``TLSStream`` reports an
    end without close_notify as broken).

    Raises:
        ImportError: anyio is not installed.
    """
    global _anyio_class
    if _anyio_class is None:
        _anyio_class = _make_anyio_class()
    return _anyio_class(stream)


def _make_anyio_class() -> type:
    import anyio
    import anyio.abc

    translated = (
        (ClosedResourceError, anyio.ClosedResourceError),
        (BrokenResourceError, anyio.BrokenResourceError),
        (BusyResourceError, anyio.BusyResourceError),
    )

    def translate(exc: BaseException) -> BaseException:
        for ours, theirs in translated:
            if isinstance(exc, ours):
                return theirs(*exc.args)
        return exc

    class AnyioByteStream(anyio.abc.ByteStream):
        """pystream's stream with anyio's ``ByteStream`` interface."""

        def __init__(self, stream: Stream) -> None:
            self.stream = stream

        async def receive(self, max_bytes: int = 65536) -> bytes:
            try:
                data = await self.stream.receive_some(max_bytes)
            except (ClosedResourceError, BrokenResourceError, BusyResourceError) as exc:
                raise translate(exc) from exc
            if not data:
                raise anyio.EndOfStream
            return data

        async def send(self, item: bytes) -> None:
            try:
                await self.stream.send_all(item)
            except (ClosedResourceError, BrokenResourceError, BusyResourceError) as exc:
                raise translate(exc) from exc

        async def send_eof(self) -> None:
            send_eof = getattr(self.stream, "send_eof", None)
            if send_eof is None:
                raise NotImplementedError(f"{type(self.stream).__name__} has no send_eof")
            try:
                await send_eof()
            except (ClosedResourceError, BrokenResourceError, BusyResourceError) as exc:
                raise translate(exc) from exc

        async def aclose(self) -> None:
            await self.stream.aclose()

        @property
        def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
            return _typed_attributes(self.stream)

    return AnyioByteStream


def _typed_attributes(stream: Stream) -> dict[Any, Callable[[], Any]]:
    """anyio's socket and TLS attributes of a pystream stream."""
    from anyio.abc import SocketAttribute
    from anyio.streams.tls import TLSAttribute

    attributes: dict[Any, Callable[[], Any]] = {}
    if isinstance(stream, TLSStream):
        ssl_object = stream.ssl_object
        attributes.update(
            {
                TLSAttribute.ssl_object: lambda: ssl_object,
                TLSAttribute.server_side: lambda: ssl_object.server_side,
                TLSAttribute.tls_version: ssl_object.version,
                TLSAttribute.cipher: ssl_object.cipher,
                TLSAttribute.shared_ciphers: lambda: (
                    ssl_object.shared_ciphers() if ssl_object.server_side else None
                ),
                TLSAttribute.alpn_protocol: ssl_object.selected_alpn_protocol,
                TLSAttribute.peer_certificate: lambda: ssl_object.getpeercert(False),
                TLSAttribute.peer_certificate_binary: lambda: ssl_object.getpeercert(True),
                TLSAttribute.standard_compatible: lambda: True,
            }
        )
    while isinstance(stream, TLSStream):
        stream = stream.transport_stream
    if isinstance(stream, SocketStream):
        sock = stream
        try:
            domain = sock.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
        except ClosedResourceError:
            return attributes  # (anyio's closed sockets have none either)
        family = socket.AddressFamily(int(domain))
        attributes.update(
            {
                SocketAttribute.family: lambda: family,
                SocketAttribute.local_address: lambda: sock.local_address,
                SocketAttribute.remote_address: lambda: sock.remote_address,
            }
        )
        if family in (socket.AF_INET, socket.AF_INET6):
            attributes[SocketAttribute.local_port] = lambda: sock.local_address[1]
            attributes[SocketAttribute.remote_port] = lambda: sock.remote_address[1]
    return attributes
