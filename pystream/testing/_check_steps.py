"""Steps that several conformance checks take (``_check_streams`` one way,
``_check_two_way`` both ways and half-close), each written once: inside a
``Pair``, so what they spawn is cleaned up with it."""

from __future__ import annotations

import asyncio
import random
from typing import Any, Awaitable, Union

from .._base._errors import ClosedResourceError
from ._check_kit import (
    CLOGGED_SEND,
    drain_until,
    expect,
    raises,
    receive_exactly,
    spawn,
    within,
    yield_many,
)

__all__ = [
    "cancel_blocked",
    "clog",
    "random_bytes",
    "send_received",
    "sends_raise_closed",
    "started",
    "unclog",
]


async def started(awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
    """Spawn awaitable and let it run until it blocks (or ends)."""
    task = spawn(awaitable)
    await yield_many()
    return task


async def clog(s: Any) -> asyncio.Future[Any]:
    """On a clogged pair: a send_all too big to be taken before the peer
    reads, started and left blocked."""
    return await started(s.send_all(b"x" * CLOGGED_SEND))


async def unclog(r: Any, sender: asyncio.Future[Any]) -> None:
    """Read until clog's send_all returns."""
    await drain_until(r, sender, "send_all returns once the peer reads")


async def cancel_blocked(task: asyncio.Future[Any], behaviour: str) -> None:
    """Cancel a call blocked in task: it must end cancelled."""
    task.cancel()
    await asyncio.wait([task])
    expect(task.cancelled(), behaviour)


async def send_received(
    s: Any,
    r: Any,
    data: Union[bytes, bytearray, memoryview],
    what: str,
    behaviour: str,
    returns: str = "send_all returns",
) -> None:
    """s sends data (in a task), r receives exactly those bytes (what names
    the receive, behaviour the comparison), and the send_all returns."""
    sender = spawn(s.send_all(data))
    got = await receive_exactly(r, len(data), what)
    expect(got == bytes(data), behaviour)
    await within(sender, returns)


async def sends_raise_closed(s: Any, when: str) -> None:
    """send_all, with data and empty, raises ClosedResourceError ``when``
    (after aclose, after send_eof)."""
    await raises(
        ClosedResourceError, s.send_all(b"x"), f"send_all {when} raises ClosedResourceError"
    )
    await raises(
        ClosedResourceError, s.send_all(b""), f"send_all(b'') {when} raises ClosedResourceError"
    )


def random_bytes(rng: random.Random, size: int) -> bytes:
    """size bytes from rng, one getrandbits(8) a byte (the bytes a seed gives
    stay as the checks have always had them)."""
    return bytes(rng.getrandbits(8) for _ in range(size))
