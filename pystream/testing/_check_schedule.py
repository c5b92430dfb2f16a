"""The conformance suite's check of the schedule-point rule (API.md,
"Checkpoints"): with the loop's schedule interval at 0 every call yields
to the loop; at the default interval, a call made after the task ran
longer than the interval without yielding yields.  (The cancel-point half,
a pending cancellation raised with nothing done, is ``is_checkpoint``'s.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from .._base._checkpoint import get_schedule_interval, set_schedule_interval
from ._check_kit import Maker, Pair, expect, receive_exactly, spawn, within

__all__ = ["check_schedule_points", "yields"]


async def yields(
    warm_up: Callable[[], Awaitable[Any]],
    call: Callable[[], Awaitable[Any]],
    what: str,
    idle: float = 0.0,
) -> bool:
    """Whether call() let the loop run (a callback scheduled just before it
    ran by the time it returned), in a task that first awaited warm_up()
    (a call on the stream: the task resumed from a pystream yield or wait)
    and then ran idle seconds without yielding."""

    async def measure() -> bool:
        await warm_up()  # directly, as call: in this task
        _run_without_yielding(idle)
        ran: list[bool] = []
        asyncio.get_running_loop().call_soon(ran.append, True)
        await call()
        return bool(ran)

    result: bool = await within(measure(), what)
    return result


def _run_without_yielding(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def _sends_yield(s: Any, r: Any, why: str, idle: float) -> None:
    # A receiver waits meanwhile: a lockstep send_all returns only once
    # its bytes are taken (a send that waits has yielded, too).
    receiver = spawn(receive_exactly(r, 2, "receive what the checks send"))
    expect(
        await yields(lambda: s.send_all(b""), lambda: s.send_all(b"x"), "send_all", idle),
        f"{why}, send_all yields",
    )
    expect(
        await yields(
            lambda: s.send_all(b""),
            s.wait_send_all_might_not_block,
            "wait_send_all_might_not_block",
            idle,
        ),
        f"{why}, wait_send_all_might_not_block yields",
    )
    await within(s.send_all(b"y"), "send_all")
    await within(receiver, "receive what the checks send")


async def _receive_yields(s: Any, r: Any, why: str, idle: float) -> None:
    sender = spawn(s.send_all(b"yz"))
    expect(
        await yields(
            lambda: r.receive_some(1),
            lambda: r.receive_some(1),
            "receive_some",
            idle,
        ),
        f"{why}, receive_some yields (even with data buffered)",
    )
    await within(sender, "send_all returns once received")


async def check_schedule_points(maker: Maker) -> None:
    """Check both halves of the schedule-point rule on a fresh pair."""
    interval = get_schedule_interval()
    async with Pair(maker) as (s, r):
        set_schedule_interval(0)
        try:
            await _sends_yield(s, r, "with the schedule interval at 0", 0.0)
            await _receive_yields(s, r, "with the schedule interval at 0", 0.0)
        finally:
            set_schedule_interval(interval)
        if interval == 0:
            return
        why = "when its task ran longer than the schedule interval without yielding"
        await _sends_yield(s, r, why, 2 * interval)
        await _receive_yields(s, r, why, 2 * interval)
