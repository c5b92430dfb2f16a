"""TLSListener: a listener whose streams are server-side ``TLSStream``s."""

from __future__ import annotations

import ssl
from typing import Any

from ..abc import Listener, close_now
from ._tls import TLSStream, check_ssl_context

__all__ = ["TLSListener"]


class TLSListener(Listener[TLSStream]):
    """Wraps each stream ``transport_listener`` accepts in a server-side
    ``TLSStream`` (handshake on first use), so ``serve_listeners`` serves
    TLS.

    Raises:
        TypeError: ``ssl_context`` is not an ``ssl.SSLContext``.

    Attributes:
        transport_listener: the listener whose streams are wrapped.
    """

    def __init__(self, transport_listener: Listener[Any], ssl_context: ssl.SSLContext) -> None:
        check_ssl_context(ssl_context)
        self.transport_listener = transport_listener
        self._ssl_context = ssl_context

    async def accept(self) -> TLSStream:
        """Accept a connection from ``transport_listener`` and return it as
        a server-side ``TLSStream``.  The handshake happens on the stream's
        first use, so a failing client does not make ``accept`` fail.  The
        stream's ``limit`` is the accepted transport stream's.

        It raises what ``transport_listener.accept`` raises, and a
        cancellation does what it does there.  If wrapping the accepted
        stream fails, that stream is closed and the error raised.
        """
        stream = await self.transport_listener.accept()
        try:
            tls = TLSStream(stream, self._ssl_context, server_side=True)
            # The transport's default limit of readline/readuntil (its
            # opener's limit=) holds for the plaintext too.
            limit = getattr(stream, "limit", None)
            if isinstance(limit, int):
                tls.limit = limit
            return tls
        except BaseException:
            close_now(stream)
            raise

    async def aclose(self) -> None:
        """Close ``transport_listener`` (streams already accepted stay
        open)."""
        await self.transport_listener.aclose()
