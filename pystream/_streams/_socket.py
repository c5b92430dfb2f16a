"""SocketStream: a connected TCP or Unix socket, on the core layer."""

from __future__ import annotations

import socket
from typing import Union

from .._core import KIND_PIPE, KIND_TCP, Address, CoreStream, get_bridge, open_fd

__all__ = ["SocketStream", "kind_for", "stream_from_socket"]


def kind_for(sock: socket.socket) -> int:
    """The C stream kind for a socket, or ValueError."""
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"pystream needs a SOCK_STREAM socket, not {sock!r}")
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        return KIND_TCP
    if sock.family == socket.AF_UNIX:
        return KIND_PIPE
    raise ValueError(f"unsupported socket family {sock.family!r}")


class SocketStream(CoreStream):
    """A connected TCP or Unix socket; both directions on one object.

    Made by ``open_tcp_stream``, ``open_unix_stream``, ``SocketListener.accept``,
    ``open_stream_pair`` and ``wrap_socket``, not directly.  Received bytes
    wait in a buffer owned by the C core; reading from the socket pauses
    while it holds 256 KiB and no call asks for more.

    ``aclose()`` never waits for the peer: what ``send_all`` handed to the
    kernel is delivered, then a FIN.  ``aclose_forcefully`` does the same
    (it does not wait either); for a reset, set ``SO_LINGER`` to 0 first.

    A cancelled ``send_all`` sent all of its data or none, a cancelled
    receive loses nothing, and a cancelled ``aclose`` still closes.  The
    stream belongs to the event loop that made it: a call from another
    loop or thread raises ``RuntimeError``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else f"fd={self.fileno()}"
        kind = "tcp" if self._kind == KIND_TCP else "unix"
        return f"<pystream.SocketStream {kind} {state}>"

    def setsockopt(self, level: int, option: int, value: Union[int, bytes]) -> None:
        """Set a socket option, as ``socket.socket.setsockopt`` does:
        ``value`` is an int or a bytes-like object.

        Raises:
            pystream.ClosedResourceError: the stream was closed.
            OSError: the OS refused the option or its value.
            TypeError: ``value`` is neither an int nor bytes-like.
        """
        self._c_setsockopt(level, option, value)

    def getsockopt(self, level: int, option: int, buflen: int = 0) -> Union[int, bytes]:
        """Read a socket option, as ``socket.socket.getsockopt`` does: an
        int, or with ``buflen > 0`` up to ``buflen`` bytes.

        Raises:
            pystream.ClosedResourceError: the stream was closed.
            OSError: the OS refused (an unknown option, say).
            ValueError: ``buflen`` is negative.
        """
        if buflen < 0:
            raise ValueError("getsockopt: buflen must not be negative")
        return self._c_getsockopt(level, option, buflen)

    @property
    def local_address(self) -> Address:
        """This end's address, as ``socket.getsockname()`` gives it:
        ``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for
        IPv6, a path for a Unix socket (``""`` when unnamed, ``bytes``
        starting with NUL in the abstract namespace).
        ``ClosedResourceError`` once closed."""
        return self._c_address(peer=False)

    @property
    def remote_address(self) -> Address:
        """The peer's address, as ``socket.getpeername()`` gives it (forms
        as for ``local_address``).  ``ClosedResourceError`` once closed;
        ``OSError`` if the OS cannot say (``ENOTCONN``: no longer
        connected)."""
        return self._c_address(peer=True)


def stream_from_socket(sock: socket.socket) -> SocketStream:
    """Adopt a connected socket (which is detached from sock)."""
    kind = kind_for(sock)
    get_bridge()  # made (or failing) before the socket is given away
    sock.setblocking(False)
    return open_fd(SocketStream, sock.detach(), kind)
