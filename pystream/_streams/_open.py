"""Opening socket streams and listeners: Unix connections, TCP and Unix
listeners, socket pairs and adopted sockets (TCP connections, with their
address racing, are in ``_tcp_connect``)."""

from __future__ import annotations

import os
import socket
import stat
from typing import Any, Optional, Sequence, Union

from .._base._readers import DEFAULT_LIMIT, check_limit
from .._base._util import CHECKPOINT
from .._core import connect_pipe, get_bridge, oserror
from ._listener import SocketListener
from ._socket import SocketStream, stream_from_socket
from ._tcp_connect import _check_port, open_tcp_stream

__all__ = [
    "open_tcp_stream",
    "open_unix_stream",
    "open_tcp_listeners",
    "open_unix_listener",
    "open_stream_pair",
    "wrap_socket",
]

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# listen() takes at most the system's limit (net.core.somaxconn on Linux)
# and silently lowers anything larger, so this asks for "the most allowed".
_MAX_BACKLOG = 0xFFFF


def _check_backlog(backlog: Optional[int]) -> int:
    if backlog is None:
        return _MAX_BACKLOG
    if isinstance(backlog, bool) or not isinstance(backlog, int):
        raise TypeError("backlog must be an int or None")
    if backlog < 0:
        raise ValueError("backlog must not be negative")
    return min(backlog, _MAX_BACKLOG)


# -- Unix connections -----------------------------------------------------


async def open_unix_stream(path: PathLike, *, limit: int = DEFAULT_LIMIT) -> SocketStream:
    """Connect to the Unix socket at ``path`` (``str``, ``bytes`` or
    path-like; ``bytes`` starting with NUL: Linux's abstract namespace) and
    return a ``SocketStream``.

    ``limit`` is the stream's default limit for ``readuntil`` and
    ``readline`` (its ``limit`` property), as asyncio's
    ``open_unix_connection`` takes it.

    Raises:
        OSError: connecting failed: ``FileNotFoundError`` (no such socket),
            ``ConnectionRefusedError`` (nobody listening), ...
        TypeError: ``path`` is not a path, or ``limit`` not an int.
        ValueError: ``path`` is empty or has a NUL byte inside, or
            ``limit`` is less than 1.

    Cancellation:
        The socket is closed: nothing is left behind.
    """
    limit = check_limit(limit)
    name = os.fspath(path)
    bridge = get_bridge()
    if isinstance(name, bytes) and name[:1] == b"\0":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await bridge.loop.sock_connect(sock, name)
        except BaseException:
            sock.close()
            raise
        stream = stream_from_socket(sock)
        stream.limit = limit
        return stream
    raw = os.fsencode(name)
    if b"\0" in raw or not raw:
        raise ValueError(f"invalid Unix socket path {name!r}")
    status, stream = await connect_pipe(SocketStream, raw)
    if status < 0:
        exc = oserror(status)
        raise type(exc)(exc.errno, exc.strerror, name)
    stream.limit = limit
    return stream


# -- listeners ------------------------------------------------------------


def _bind_all(infos: Sequence[Any], port: int) -> list[socket.socket]:
    """Bind a socket per address.  With port 0 they all share the port the
    first one got, so one number reaches every family."""
    socks: list[socket.socket] = []
    try:
        for family, _, proto, _, sockaddr in infos:
            try:
                sock = socket.socket(family, socket.SOCK_STREAM, proto)
            except OSError:
                if len(infos) > 1:
                    continue  # e.g. IPv6 disabled: serve the other families
                raise
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                sockaddr = (sockaddr[0], socks[0].getsockname()[1], *sockaddr[2:])
            sock.bind(sockaddr)
        if not socks:
            raise OSError("no address family could be used")
        return socks
    except BaseException:
        for sock in socks:
            sock.close()
        raise


async def open_tcp_listeners(
    port: int,
    *,
    host: Optional[str] = None,
    backlog: Optional[int] = None,
    limit: int = DEFAULT_LIMIT,
) -> list[SocketListener]:
    """Listen on ``port``, on every address ``host`` resolves to
    (``host=None``: all IPv4 and IPv6 interfaces); return a list of
    ``SocketListener``, one per address.

    Port 0 picks a free port, the same one for every listener; read it
    from ``listeners[0].local_address[1]``.  ``backlog=None`` asks for the
    system's maximum.  Sockets get ``SO_REUSEADDR``, and IPv6 ones
    ``IPV6_V6ONLY``.  ``limit`` is the default limit for ``readuntil`` and
    ``readline`` of every stream the listeners accept (their ``limit``
    property), as asyncio's ``start_server`` takes it.

    Raises:
        OSError: binding failed (``EADDRINUSE``, ``EACCES``, ...), or
            ``socket.gaierror`` if ``host`` does not resolve.
        TypeError: ``port``, ``backlog`` or ``limit`` is not an int.
        OverflowError: ``port`` is outside 0-65535.
        ValueError: ``backlog`` is negative, or ``limit`` less than 1.

    Cancellation:
        Nothing is opened: the only wait is for the resolver, before any
        socket exists.
    """
    _check_port(port)
    backlog = _check_backlog(backlog)
    limit = check_limit(limit)
    bridge = get_bridge()
    infos = await bridge.loop.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    unique: list[Any] = []
    for info in infos:
        if info[4] not in [u[4] for u in unique]:
            unique.append(info)
    for attempt in range(10):
        try:
            socks = _bind_all(unique, port)
            break
        except OSError as exc:
            # Port 0: the first family's free port was taken in another.
            if port != 0 or len(unique) < 2 or attempt == 9:
                raise
            if exc.errno != 98:  # EADDRINUSE
                raise
    listeners: list[SocketListener] = []
    try:
        while socks:
            listeners.append(SocketListener(bridge, socks.pop(0), backlog, limit))
    except BaseException:
        for sock in socks:
            sock.close()
        for listener in listeners:
            listener._close_now()
        raise
    return listeners


async def open_unix_listener(
    path: PathLike, *, backlog: Optional[int] = None, limit: int = DEFAULT_LIMIT
) -> SocketListener:
    """Listen on the Unix socket ``path`` (``bytes`` starting with NUL: the
    abstract namespace); return a ``SocketListener``.

    A socket file already at ``path`` is replaced (as asyncio does);
    closing the listener removes the file it made.  ``backlog=None`` asks
    for the system's maximum.  ``limit``: the accepted streams' default
    limit for ``readuntil`` and ``readline``, as in ``open_tcp_listeners``.
    A checkpoint, before anything is done.

    Raises:
        OSError: binding failed (``EADDRINUSE`` if a file that is not a
            socket is at ``path``, ``EACCES``, a path too long, ...).
        TypeError: ``path`` is not a path, or ``backlog`` or ``limit`` not
            an int.
        ValueError: ``backlog`` is negative, or ``limit`` less than 1.

    Cancellation:
        Nothing is opened, and no file is replaced: the checkpoint comes
        before the socket is made.
    """
    backlog = _check_backlog(backlog)
    limit = check_limit(limit)
    name = os.fspath(path)
    bridge = get_bridge()
    await CHECKPOINT
    if not (isinstance(name, bytes) and name[:1] == b"\0"):
        try:
            if stat.S_ISSOCK(os.stat(name).st_mode):
                os.unlink(name)
        except FileNotFoundError:
            pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(name)
    except OSError as exc:
        sock.close()
        if exc.filename is None and exc.errno is not None:  # bind names no path
            raise type(exc)(exc.errno, exc.strerror, name) from None
        raise
    except BaseException:
        sock.close()
        raise
    return SocketListener(bridge, sock, backlog, limit)


# -- adopting sockets -----------------------------------------------------


async def open_stream_pair(*, limit: int = DEFAULT_LIMIT) -> tuple[SocketStream, SocketStream]:
    """Two connected ``SocketStream`` objects over a Unix socket pair;
    ``limit`` is the default limit of both for ``readuntil`` and
    ``readline`` (their ``limit`` property).

    Raises:
        OSError: out of file descriptors, say.
        TypeError, ValueError: ``limit`` is not an int >= 1.

    Cancellation:
        Cancelled at its one checkpoint, after the streams were made, it
        closes both: nothing is left behind.
    """
    limit = check_limit(limit)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        first = stream_from_socket(a)
    except BaseException:
        a.close()
        b.close()
        raise
    try:
        second = stream_from_socket(b)
    except BaseException:
        b.close()
        first._close_now()
        raise
    try:
        await CHECKPOINT
    except BaseException:
        first._close_now()
        second._close_now()
        raise
    first.limit = second.limit = limit
    return first, second


async def wrap_socket(sock: socket.socket, *, limit: int = DEFAULT_LIMIT) -> SocketStream:
    """Adopt ``sock``, a connected TCP or Unix stream socket, as a
    ``SocketStream`` whose default limit for ``readuntil`` and ``readline``
    is ``limit``.

    The stream owns the descriptor from then on: ``sock`` is detached (its
    ``fileno()`` becomes -1) and made non-blocking.

    Raises:
        TypeError: ``sock`` is not a ``socket.socket``, or ``limit`` not an
            int.
        ValueError: ``sock`` is not connected, not ``SOCK_STREAM``, or of
            another family than IPv4, IPv6 and Unix; ``limit`` is less
            than 1.

    Cancellation:
        Cancelled at its one checkpoint, after the socket was adopted, it
        closes the new stream, and with it the descriptor; ``sock`` is
        detached all the same.
    """
    if not isinstance(sock, socket.socket):
        raise TypeError(f"wrap_socket needs a socket.socket, not {type(sock).__name__}")
    limit = check_limit(limit)
    try:
        sock.getpeername()
    except OSError as exc:
        raise ValueError(f"wrap_socket needs a connected socket: {exc}") from None
    stream = stream_from_socket(sock)
    stream.limit = limit
    try:
        await CHECKPOINT
    except BaseException:
        stream._close_now()
        raise
    return stream
