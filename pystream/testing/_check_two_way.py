"""The conformance suite for two-way streams (``check_two_way_stream``) and
half-close (``check_half_closeable_stream``): the one-way checks both ways,
then both directions at once, and ``send_eof``."""

from __future__ import annotations

import asyncio
import random
from typing import Optional

from .._base._errors import BusyResourceError, ClosedResourceError
from ..abc import HalfCloseableStream
from ._check_kit import (
    Maker,
    Pair,
    expect,
    flipped,
    raises,
    random_transfer,
    spawn,
    within,
)
from ._check_steps import clog, random_bytes, send_received, sends_raise_closed, started, unclog
from ._check_streams import check_one_way_stream

__all__ = ["check_two_way_stream", "check_half_closeable_stream"]


# -- two-way and half-close ---------------------------------------------------


async def _check_both_ways_at_once(maker: Maker) -> None:
    rng = random.Random(3)
    one = random_bytes(rng, 1 << 20)
    two = random_bytes(rng, 1 << 20)
    async with Pair(maker) as (a, b):
        await within(
            asyncio.gather(
                random_transfer(
                    a, b, one, random.Random(4), "1 MiB from the first to the second end"
                ),
                random_transfer(
                    b, a, two, random.Random(5), "1 MiB from the second to the first end"
                ),
            ),
            "1 MiB each way at once",
        )


async def _check_send_and_receive_together(maker: Maker) -> None:
    async with Pair(maker) as (a, b):
        receiver = await started(a.receive_some())
        await send_received(
            a,
            b,
            b"out",
            "sending while a receive waits on the same end",
            "send_all and receive_some on one end do not conflict",
        )
        back = spawn(b.send_all(b"in"))
        expect(
            await within(receiver, "the waiting receive gets data") in (b"in", b"i"),
            "the waiting receive gets the data",
        )
        await within(back, "send_all returns")


async def check_two_way_stream(maker: Maker, clogged_maker: Optional[Maker]) -> None:
    """Check a two-way stream: ``maker()`` returns two connected ends.
    Runs ``check_one_way_stream`` in both directions, then checks sending
    both ways at once and sending while a receive waits on the same end.

    Raises:
        AssertionError: as for ``check_one_way_stream``.
    """
    await check_one_way_stream(maker, clogged_maker)
    await check_one_way_stream(
        flipped(maker), None if clogged_maker is None else flipped(clogged_maker)
    )
    await _check_both_ways_at_once(maker)
    await _check_send_and_receive_together(maker)


async def _check_send_eof(maker: Maker) -> None:
    async with Pair(maker) as (a, b):
        expect(
            isinstance(a, HalfCloseableStream) or hasattr(a, "send_eof"),
            "a half-closeable stream has send_eof",
        )
        await send_received(
            a,
            b,
            b"last words",
            "data sent before send_eof",
            "data sent before send_eof arrives before EOF",
        )
        await within(a.send_eof(), "send_eof returns")
        expect(
            await within(b.receive_some(), "receive after send_eof") == b"",
            "after send_eof the peer reads b''",
        )
        await within(a.send_eof(), "send_eof again (it is idempotent)")
        await sends_raise_closed(a, "after send_eof")
        await send_received(
            b, a, b"reply", "receiving after our send_eof", "after send_eof, receiving still works"
        )
        await within(b.send_eof(), "send_eof the other way")
        expect(
            await within(a.receive_some(), "receive after the peer's send_eof") == b"",
            "half-close works in the other direction too",
        )
        await within(a.aclose(), "aclose after send_eof")
        await raises(
            ClosedResourceError, a.send_eof(), "send_eof after aclose raises ClosedResourceError"
        )


async def _check_clogged_send_eof_busy(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        sender = await clog(s)
        await raises(
            BusyResourceError,
            s.send_eof(),
            "send_eof during a blocked send_all raises BusyResourceError",
        )
        await unclog(r, sender)


async def check_half_closeable_stream(maker: Maker, clogged_maker: Optional[Maker]) -> None:
    """Check a two-way stream with ``send_eof``: everything
    ``check_two_way_stream`` checks, then half-close both ways (data before
    the EOF arrives, ``send_eof`` is idempotent, ``send_all`` after it
    raises ``ClosedResourceError``, receiving goes on) and, with a clogged
    pair, that ``send_eof`` during a blocked ``send_all`` is busy.

    Raises:
        AssertionError: as for ``check_one_way_stream``.
    """
    await check_two_way_stream(maker, clogged_maker)
    await _check_send_eof(maker)
    await _check_send_eof(flipped(maker))
    if clogged_maker is not None:
        await _check_clogged_send_eof_busy(clogged_maker)
