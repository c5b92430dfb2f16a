"""The checkpoint rule (pystream/_base/_checkpoint.py): a cancel point always, a
schedule point unless the task resumed under the interval ago."""

from __future__ import annotations

import asyncio
import time

import pytest

import pystream
import pystream.testing
from pystream._base._checkpoint import CHECKPOINT, DEFAULT_SCHEDULE_INTERVAL


def spin(seconds: float) -> None:
    """Run without yielding to the loop for seconds."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def yields(awaitable) -> bool:
    """Whether awaiting it let the loop run (a callback scheduled first ran)."""
    ran = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    await awaitable
    return bool(ran)


async def test_strict_at_interval_zero_every_await_yields_once():
    pystream.set_schedule_interval(0)
    order = []

    async def other():
        for i in range(3):
            order.append(("other", i))
            await asyncio.sleep(0)

    async def checkpointing():
        for i in range(3):
            order.append(("checkpoint", i))
            await CHECKPOINT

    await asyncio.gather(checkpointing(), other())
    # Each await let the other task run once: the two interleave.
    assert order == [
        ("checkpoint", 0),
        ("other", 0),
        ("checkpoint", 1),
        ("other", 1),
        ("checkpoint", 2),
        ("other", 2),
    ]


async def test_a_checkpoint_skips_the_yield_right_after_a_resume():
    assert pystream.get_schedule_interval() == DEFAULT_SCHEDULE_INTERVAL == 0.001
    # A longer interval here, so that a busy machine pausing this process
    # between two awaits does not look like the task running too long.
    pystream.set_schedule_interval(0.5)
    assert await yields(CHECKPOINT)  # nothing seen yet: it yields (and records)
    assert not await yields(CHECKPOINT)  # resumed just now: no yield
    spin(0.6)  # past the interval without yielding
    assert await yields(CHECKPOINT)
    assert not await yields(CHECKPOINT)


async def test_a_non_pystream_await_does_not_count_as_a_resume():
    await CHECKPOINT  # pystream saw this resume
    spin(0.0007)
    await asyncio.sleep(0)  # a resume pystream did not see
    spin(0.0007)  # 1.4 ms after the first, 0.7 ms after the second
    assert await yields(CHECKPOINT)


async def test_another_tasks_resume_makes_this_one_yield():
    await CHECKPOINT  # our record

    async def other():
        await CHECKPOINT  # its record replaces ours

    await asyncio.ensure_future(other())
    assert await yields(CHECKPOINT)


async def test_a_pending_cancellation_is_raised_even_inside_the_interval():
    reached = []

    async def body():
        await CHECKPOINT  # resumed just now: the next one could skip
        asyncio.current_task().cancel()
        try:
            await CHECKPOINT
            reached.append("after")
        except asyncio.CancelledError:
            reached.append("cancelled at the checkpoint")
            raise

    task = asyncio.ensure_future(body())
    await asyncio.wait([task])
    assert task.cancelled() and reached == ["cancelled at the checkpoint"]


async def test_a_cancellation_thrown_in_at_the_yield_is_raised_there():
    reached = []

    async def body():
        try:
            await CHECKPOINT
            reached.append("after the await")
        except asyncio.CancelledError:
            reached.append("cancelled at the await")
            raise

    pystream.set_schedule_interval(0)
    task = asyncio.ensure_future(body())
    await asyncio.sleep(0)  # the task now waits at its checkpoint
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled() and reached == ["cancelled at the await"]


async def test_a_loop_of_calls_that_never_block_yields_once_per_interval():
    # A memory stream with room never blocks: its sends yield only by the
    # rule.  Each call spends 0.1 ms of the monotonic clock, so at most
    # about 10 calls fit in the 1 ms interval between yields, however
    # loaded the machine (a pause only makes the clock jump further).
    s, r = pystream.testing.memory_stream_pair()
    ticks = 0
    stop = False

    async def ticker():
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    longest_without_yield = run = 0
    yields = 0
    for _ in range(2000):
        before = ticks
        await s.send_all(b"x")
        if ticks == before:
            run += 1
            longest_without_yield = max(longest_without_yield, run)
        else:
            run = 0
            yields += 1
        spin(0.0001)
    stop = True
    await ticking
    assert longest_without_yield <= 11  # a yield at least once per interval
    assert yields < 2000 // 2  # and far fewer than the strict rule's one per call
    await s.aclose()
    await r.aclose()


async def test_set_schedule_interval_checks_its_argument_and_is_per_loop():
    for bad in ("1", None, True):
        with pytest.raises(TypeError):
            pystream.set_schedule_interval(bad)  # type: ignore[arg-type]
    for bad in (-1, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            pystream.set_schedule_interval(bad)
    pystream.set_schedule_interval(0.01)
    assert pystream.get_schedule_interval() == 0.01
    other = asyncio.new_event_loop()
    try:
        assert pystream.get_schedule_interval(loop=other) == DEFAULT_SCHEDULE_INTERVAL
        pystream.set_schedule_interval(0, loop=other)
        assert pystream.get_schedule_interval(loop=other) == 0
    finally:
        other.close()
    assert pystream.get_schedule_interval() == 0.01


def test_set_schedule_interval_outside_a_loop_needs_one():
    with pytest.raises(RuntimeError):
        pystream.set_schedule_interval(0)
