"""Object channels: open_memory_channel."""

from __future__ import annotations

import asyncio
import math
import sys

import pytest

import pystream


async def test_buffered_send_and_receive_in_order():
    send, receive = pystream.open_memory_channel(3)
    for i in range(3):
        await send.send(i)
    with pytest.raises(pystream.WouldBlock):
        send.send_nowait(3)
    assert [await receive.receive() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(pystream.WouldBlock):
        receive.receive_nowait()
    await send.aclose()
    await receive.aclose()


async def test_send_waits_for_room_and_rendezvous():
    send, receive = pystream.open_memory_channel(0)
    sender = asyncio.ensure_future(send.send("hello"))
    await asyncio.sleep(0.01)
    assert not sender.done(), "with no buffer, send waits for a receiver"
    assert await receive.receive() == "hello"
    await sender
    receiver = asyncio.ensure_future(receive.receive())
    for _ in range(3):  # past its checkpoint, into the wait
        await asyncio.sleep(0)
    send.send_nowait("direct")  # a waiting receiver takes it at once
    assert await receiver == "direct"
    await send.aclose()
    await receive.aclose()


async def test_end_of_channel_when_every_sender_closed():
    send, receive = pystream.open_memory_channel(math.inf)
    clone = send.clone()
    await send.send(1)
    await send.aclose()
    await clone.send(2)
    waiting = asyncio.ensure_future(receive.receive())
    assert await waiting == 1
    await clone.aclose()
    assert [value async for value in receive] == [2]
    with pytest.raises(pystream.EndOfChannel):
        await receive.receive()
    with pytest.raises(pystream.ClosedResourceError):
        await send.send(3)
    with pytest.raises(pystream.ClosedResourceError):
        send.clone()
    await receive.aclose()


async def test_blocked_receiver_wakes_with_end_of_channel():
    send, receive = pystream.open_memory_channel(1)
    receiver = asyncio.ensure_future(receive.receive())
    await asyncio.sleep(0)
    await send.aclose()
    with pytest.raises(pystream.EndOfChannel):
        await receiver
    await receive.aclose()


async def test_broken_when_every_receiver_closed():
    send, receive = pystream.open_memory_channel(0)
    sender = asyncio.ensure_future(send.send("x"))
    await asyncio.sleep(0)
    other = receive.clone()
    await receive.aclose()
    assert not sender.done(), "one receiver is still open"
    await other.aclose()
    with pytest.raises(pystream.BrokenResourceError):
        await sender
    with pytest.raises(pystream.BrokenResourceError):
        await send.send("y")
    with pytest.raises(pystream.ClosedResourceError):
        await receive.receive()
    await send.aclose()


async def test_cancelled_receive_loses_nothing():
    send, receive = pystream.open_memory_channel(10)
    for _ in range(20):
        receiver = asyncio.ensure_future(receive.receive())
        await asyncio.sleep(0)
        receiver.cancel()
        send.send_nowait("value")
        await asyncio.wait([receiver])
        if not receiver.cancelled():
            assert receiver.result() == "value"
        else:
            assert receive.receive_nowait() == "value"
    await send.aclose()
    await receive.aclose()


async def test_cancelled_send_is_not_delivered():
    send, receive = pystream.open_memory_channel(0)
    sender = asyncio.ensure_future(send.send("never"))
    await asyncio.sleep(0)
    sender.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sender
    with pytest.raises(pystream.WouldBlock):
        receive.receive_nowait()
    await send.aclose()
    await receive.aclose()


async def test_operations_are_checkpoints():
    send, receive = pystream.open_memory_channel(1)

    async def cancelled_first(coro):
        asyncio.current_task().cancel()
        await coro
        return "returned"

    task = asyncio.ensure_future(cancelled_first(send.send(1)))
    await asyncio.wait([task])
    assert task.cancelled()
    with pytest.raises(pystream.WouldBlock):
        receive.receive_nowait()  # the cancelled send delivered nothing
    send.send_nowait(2)
    task = asyncio.ensure_future(cancelled_first(receive.receive()))
    await asyncio.wait([task])
    assert task.cancelled()
    assert receive.receive_nowait() == 2  # the cancelled receive took nothing
    await send.aclose()
    await receive.aclose()


def test_bad_buffer_sizes():
    for bad in (-1, 1.5, "3", None, True):
        with pytest.raises((TypeError, ValueError)):
            pystream.open_memory_channel(bad)


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


async def blocked(coro):
    """coro, started in a task and left blocked."""
    task = asyncio.ensure_future(coro)
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done(), "it did not block"
    return task


@pytest.mark.parametrize("how", ["close", "aclose"])
async def test_closing_an_end_wakes_its_blocked_send(how):
    # As in Trio: a send blocked on an end wakes with ClosedResourceError
    # when that end is closed, and its value is withdrawn.  Another clone
    # keeps the channel open.
    send, receive = pystream.open_memory_channel(0)
    other = send.clone()
    sender = await blocked(send.send("withdrawn"))
    if how == "close":
        send.close()
    else:
        await send.aclose()
    with pytest.raises(pystream.ClosedResourceError):
        await asyncio.wait_for(sender, 5)
    with pytest.raises(pystream.WouldBlock):
        receive.receive_nowait()  # not EndOfChannel: other is open
    assert not send._state.send_waiters
    await other.aclose()
    with pytest.raises(pystream.EndOfChannel):
        receive.receive_nowait()
    await receive.aclose()


@pytest.mark.parametrize("how", ["close", "aclose"])
async def test_closing_an_end_wakes_its_blocked_receive(how):
    send, receive = pystream.open_memory_channel(0)
    other = receive.clone()
    receiver = await blocked(receive.receive())
    if how == "close":
        receive.close()
    else:
        await receive.aclose()
    with pytest.raises(pystream.ClosedResourceError):
        await asyncio.wait_for(receiver, 5)
    assert not send._state.receive_waiters
    # The other clone still receives: the channel is not broken.
    other_receiver = await blocked(other.receive())
    send.send_nowait("for the other")
    assert await other_receiver == "for the other"
    await send.aclose()
    await other.aclose()


async def test_closing_an_end_leaves_a_delivered_send_returning_normally():
    # The value was taken before the end was closed: the send succeeded.
    send, receive = pystream.open_memory_channel(0)
    sender = await blocked(send.send("taken"))
    assert receive.receive_nowait() == "taken"
    send.close()  # before the sender's task runs again
    assert await sender is None
    with pytest.raises(pystream.EndOfChannel):
        receive.receive_nowait()
    await receive.aclose()


async def test_closing_a_receive_end_keeps_a_value_handed_to_it():
    send, receive = pystream.open_memory_channel(0)
    other = receive.clone()
    receiver = await blocked(receive.receive())
    send.send_nowait("handed over")
    receive.close()  # before the receiver's task runs again
    assert await receiver == "handed over"
    await send.aclose()
    await other.aclose()


async def test_closing_one_end_leaves_the_other_clones_blocked_calls():
    send, receive = pystream.open_memory_channel(0)
    other = send.clone()
    sender = await blocked(other.send("still waiting"))
    await send.aclose()
    assert not sender.done()
    assert receive.receive_nowait() == "still waiting"
    assert await sender is None
    await other.aclose()
    await receive.aclose()
