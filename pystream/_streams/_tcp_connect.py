"""``open_tcp_stream``: resolve, then race the addresses as RFC 8305
("happy eyeballs") says, and return the first connection."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Optional, Sequence, Union

from .._base._readers import DEFAULT_LIMIT, check_limit
from .._core import Bridge, connect_tcp, get_bridge, oserror
from ._socket import SocketStream

__all__ = ["open_tcp_stream"]


def _check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise OverflowError(f"port must be 0-65535, not {port}")
    return port


def _interleave(infos: Sequence[Any]) -> list[Any]:
    """RFC 8305 section 4: alternate address families, starting with the
    first one the resolver returned."""
    by_family: dict[int, list[Any]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    queues = list(by_family.values())
    ordered = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


async def _connect_one(info: Any, local_address: Optional[str]) -> SocketStream:
    family, _, proto, _, sockaddr = info
    fd = -1
    if local_address is not None:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
        try:
            sock.bind((local_address, 0))
        except BaseException:
            sock.close()
            raise
        fd = sock.detach()
    scope_id = sockaddr[3] if family == socket.AF_INET6 else 0
    status, stream = await connect_tcp(SocketStream, fd, sockaddr[0], sockaddr[1], scope_id)
    if status < 0:
        exc = oserror(status)
        raise type(exc)(exc.errno, f"connect to {sockaddr[:2]!r}: {exc.strerror}")
    return stream


async def open_tcp_stream(
    host: Union[str, bytes],
    port: int,
    *,
    happy_eyeballs_delay: Optional[float] = 0.25,
    local_address: Optional[str] = None,
    limit: int = DEFAULT_LIMIT,
) -> SocketStream:
    """Connect to ``host`` (a name or an address, ``str`` or ``bytes``)
    on ``port``; return a ``SocketStream`` with ``TCP_NODELAY`` on.

    Every address the resolver returns is tried, families interleaved, a new
    attempt starting when the last one failed or ``happy_eyeballs_delay``
    seconds passed without an answer (RFC 8305; None waits for each attempt
    to fail first).  The first to connect wins; the others are closed.
    ``local_address`` (an IP address) binds each attempt's socket to it
    first.  ``limit`` is the stream's default limit for ``readuntil`` and
    ``readline`` (its ``limit`` property), as asyncio's ``open_connection``
    takes it; a call's own ``limit=`` overrides it.

    Raises:
        OSError: no attempt connected: the one attempt's error
            (``ConnectionRefusedError``, ...), or one that lists each
            attempt's.  ``socket.gaierror`` if ``host`` does not resolve.
        TypeError: ``host`` is not ``str``/``bytes``, ``port`` not an int,
            ``happy_eyeballs_delay`` not a number or None, ``limit`` not
            an int.
        OverflowError: ``port`` is outside 0-65535.
        ValueError: ``happy_eyeballs_delay`` is negative, ``limit`` less
            than 1.

    Cancellation:
        Every attempt is cancelled and every socket it opened is closed:
        nothing is left behind.
    """
    if not isinstance(host, (str, bytes)):
        raise TypeError(f"host must be str or bytes, not {type(host).__name__}")
    _check_port(port)
    if happy_eyeballs_delay is not None and not isinstance(happy_eyeballs_delay, (int, float)):
        raise TypeError(
            f"happy_eyeballs_delay must be a number or None, "
            f"not {type(happy_eyeballs_delay).__name__}"
        )
    if happy_eyeballs_delay is not None and happy_eyeballs_delay < 0:
        raise ValueError("happy_eyeballs_delay must not be negative")
    limit = check_limit(limit)
    bridge = get_bridge()
    infos = await bridge.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    targets = _interleave(infos)
    if not targets:
        raise OSError(f"no addresses found for {host!r}")
    stream = await _race(bridge, targets, happy_eyeballs_delay, local_address)
    stream.limit = limit
    return stream


async def _race(
    bridge: Bridge,
    targets: list[Any],
    delay: Optional[float],
    local_address: Optional[str],
) -> SocketStream:
    # Every stream an attempt made is either returned or closed, on every
    # path: no await comes between picking the winner and returning it
    # except the wait for the cancelled attempts, which closes the winner
    # if it is interrupted.
    loop = bridge.loop
    remaining = list(targets)
    running: set[asyncio.Task[SocketStream]] = set()
    errors: list[OSError] = []
    winner: Optional[SocketStream] = None
    try:
        while winner is None:
            if remaining:
                running.add(loop.create_task(_connect_one(remaining.pop(0), local_address)))
            if not running:
                break
            done, running = await asyncio.wait(
                running,
                timeout=delay if remaining else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            winner = _settle(done, errors)
    finally:
        try:
            await _cancel_attempts(running)
        except BaseException:
            if winner is not None:
                winner._close_now()
            raise
    if winner is not None:
        return winner
    if len(errors) == 1:
        raise errors[0]
    numbers = {exc.errno for exc in errors}
    message = "all connection attempts failed: " + "; ".join(map(str, errors))
    if len(numbers) == 1 and None not in numbers:
        raise OSError(numbers.pop(), message)
    raise OSError(message)


def _settle(done: set[asyncio.Task[SocketStream]], errors: list[OSError]) -> Optional[SocketStream]:
    """The first stream among finished attempts, the others' closed (at
    once: an await here could be cancelled with streams in hand).  OSErrors
    go to errors; any other exception is raised, every stream closed."""
    streams: list[SocketStream] = []
    unexpected: Optional[BaseException] = None
    for task in done:
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is None:
            streams.append(task.result())
        elif isinstance(exc, OSError):
            errors.append(exc)
        elif unexpected is None:
            unexpected = exc
    if unexpected is not None:
        for stream in streams:
            stream._close_now()
        raise unexpected
    for stream in streams[1:]:
        stream._close_now()
    return streams[0] if streams else None


async def _cancel_attempts(running: set[asyncio.Task[SocketStream]]) -> None:
    """Cancel the attempts still running and wait for them to end, closing
    any stream one made.  Cancelled meanwhile, it still waits (a cancelled
    attempt ends at once), then raises the cancellation."""
    for task in running:
        task.cancel()
    cancelled = False
    pending = set(running)
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
    for task in running:
        if not task.cancelled() and task.exception() is None:
            task.result()._close_now()
    if cancelled:
        raise asyncio.CancelledError
