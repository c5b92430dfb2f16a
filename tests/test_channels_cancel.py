"""A channel send whose value was delivered is not reported as lost when
its task is cancelled at that moment (to be merged into test_channels.py)."""

from __future__ import annotations

import asyncio
import sys

import pytest

import pystream


async def test_delivered_send_returns_despite_cancel_and_passes_it_on():
    """A send whose value a receiver took returns normally although its task
    was cancelled at that moment; the cancellation reaches its next await."""
    send, receive = pystream.open_memory_channel(0)
    events = []

    async def sender():
        await send.send("value")
        events.append("returned")
        if sys.version_info >= (3, 11):
            events.append(asyncio.current_task().cancelling())
        await asyncio.sleep(0)
        events.append("not cancelled")

    task = asyncio.ensure_future(sender())
    while not send._state.send_waiters:
        await asyncio.sleep(0)
    assert receive.receive_nowait() == "value"  # taken: the send is done
    task.cancel()  # before the sender's task runs again
    await asyncio.wait([task])
    assert task.cancelled()
    expected = ["returned", 1] if sys.version_info >= (3, 11) else ["returned"]
    assert events == expected
    await send.aclose()
    await receive.aclose()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
async def test_delivered_send_under_timeout_still_times_out():
    """The handed-on cancellation keeps asyncio.timeout's count right: the
    timeout expiring as the value is taken still ends in TimeoutError."""
    send, receive = pystream.open_memory_channel(0)
    events = []
    scopes = []

    async def sender():
        try:
            async with asyncio.timeout(None) as scope:
                scopes.append(scope)
                await send.send("value")
                events.append("returned")
                await asyncio.sleep(0)
        except TimeoutError:
            events.append("timeout")
        events.append(asyncio.current_task().cancelling())

    task = asyncio.ensure_future(sender())
    while not send._state.send_waiters:
        await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    scopes[0].reschedule(loop.time() - 1)  # expires before the sender runs
    assert receive.receive_nowait() == "value"
    await task
    assert events == ["returned", "timeout", 0]
    await send.aclose()
    await receive.aclose()
