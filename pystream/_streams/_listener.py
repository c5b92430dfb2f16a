"""SocketListener: a listening TCP or Unix socket, on the core layer."""

from __future__ import annotations

import os
import socket
from typing import Optional

from .._base._readers import DEFAULT_LIMIT, check_limit
from .._core import KIND_PIPE, Bridge, CoreListener
from ._socket import SocketStream, kind_for

__all__ = ["SocketListener"]


class SocketListener(CoreListener[SocketStream]):
    """A listening TCP or Unix socket; ``accept`` returns ``SocketStream``.

    Made by ``open_tcp_listeners`` and ``open_unix_listener``.  Connections
    are accepted by the C core as they arrive and start buffering data at
    once.  A Unix listener removes its socket file when it closes (if the
    file is still its own).  The listener belongs to the event loop that
    made it: a call from another loop or thread raises ``RuntimeError``.
    Each accepted stream gets the listener's ``limit`` as its own.
    """

    __slots__ = ("_unlink", "_limit")

    def __init__(
        self, bridge: Bridge, sock: socket.socket, backlog: int, limit: int = DEFAULT_LIMIT
    ) -> None:
        """Listen on a bound socket, which the listener then owns (limit:
        checked by the opener, before any socket was made)."""
        self._limit = limit
        kind = kind_for(sock)
        unlink: Optional[tuple[str, int, int]] = None
        if kind == KIND_PIPE:
            path = sock.getsockname()
            if isinstance(path, str) and path:
                st = os.stat(path)
                unlink = (path, st.st_dev, st.st_ino)
        sock.setblocking(False)
        super().__init__(bridge, sock.detach(), kind, backlog, SocketStream)
        self._unlink = unlink  # (path, st_dev, st_ino) of our socket file

    @property
    def limit(self) -> int:
        """The default limit for ``readuntil`` and ``readline`` that each
        stream ``accept`` returns from now on gets (its ``limit``
        property): ``open_tcp_listeners``'s or ``open_unix_listener``'s
        ``limit=``, 65536 unless given.  Settable (an int >= 1)."""
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._limit = check_limit(value)

    async def accept(self) -> SocketStream:
        """Return the next connection, waiting for one if none is queued,
        with the listener's ``limit`` as its own.  A checkpoint.

        Raises (``BusyResourceError``, ``ClosedResourceError``,
        ``OSError``, ``RuntimeError``) and is cancelled as
        ``CoreListener.accept`` says: a cancelled call loses no
        connection."""
        stream = await super().accept()
        stream.limit = self._limit
        return stream

    def __repr__(self) -> str:
        state = "closed" if self._closed else repr(self.local_address)
        return f"<pystream.SocketListener {state}>"

    def _close_now(self) -> None:
        if self._closed:
            return
        super()._close_now()
        if self._unlink is not None:
            path, dev, ino = self._unlink
            try:
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    os.unlink(path)
            except OSError:
                pass
