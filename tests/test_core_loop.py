"""pystream._core._loop and _waiter: libuv driven from the asyncio loop."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

import pystream
from pystream import _core
from pystream._binding import lib

from helpers import LOOP_KINDS, new_loop, receive_exactly, run_in_loop


# The nested bridge's passes (on pystream's own loop, passes count the
# loop's iterations: tests/test_eventloop.py checks those).
@pytest.mark.loops("asyncio", "uvloop")
async def test_idle_streams_do_not_spin():
    a, b = await pystream.open_stream_pair()
    async with a, b:
        receiver = await waiting_receive(b)
        bridge = _core.get_bridge()
        before = bridge.passes
        await asyncio.sleep(0.2)
        assert bridge.passes - before <= 1, "an idle bridge must not run passes"
        await a.send_all(b"x")
        assert await receiver == b"x"


async def test_one_bridge_per_loop():
    assert _core.get_bridge() is _core.get_bridge()
    loop = asyncio.get_running_loop()

    def other_thread():
        async def main():
            bridge = _core.get_bridge()
            a, b = await pystream.open_stream_pair()
            async with a, b:
                await a.send_all(b"elsewhere")
                assert await receive_exactly(b, 9) == b"elsewhere"
            return bridge

        return run_in_loop("asyncio", main())

    other = await loop.run_in_executor(None, other_thread)
    assert other is not _core.get_bridge()
    assert other.closed


NOTHING_LEFT = {
    "loops": 0,
    "handles": 0,
    "streams": 0,
    "listeners": 0,
    "writes_pending": 0,
    "bytes_buffered": 0,
    "processes": 0,
    "polls": 0,
}


def test_asyncio_run_tears_the_bridge_down():
    for kind in LOOP_KINDS:

        async def main():
            a, b = await pystream.open_stream_pair()
            await a.send_all(b"left open")
            listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
            return a, b, listeners

        loop = new_loop(kind)
        try:
            kept = loop.run_until_complete(main())
            assert pystream._counters()["handles"] == 3
            loop.run_until_complete(loop.shutdown_asyncgens())
            if kind != "pystream":  # pystream's own loop: at loop.close()
                assert pystream._counters() == NOTHING_LEFT
        finally:
            loop.close()
        assert pystream._counters() == NOTHING_LEFT
        a, b, listeners = kept
        assert a.fileno() == -1
        del a, b, listeners, kept
        gc.collect()


def test_loop_closed_without_shutdown_is_swept_later():
    loop = asyncio.new_event_loop()

    async def open_pair():
        return await pystream.open_stream_pair()

    pair = loop.run_until_complete(open_pair())
    loop.close()  # no shutdown_asyncgens: the bridge stays behind for now
    assert pystream._counters()["loops"] == 1

    async def next_use():
        _core.get_bridge()
        assert pystream._counters()["loops"] == 1, "the old bridge is swept"
        for stream in pair:
            await stream.aclose()

    run_in_loop("asyncio", next_use())
    assert pystream._counters()["loops"] == 0


async def test_streams_from_many_tasks_share_passes():
    # Many streams ready at once are served by few passes, not one each.
    pairs = [await pystream.open_stream_pair() for _ in range(50)]
    bridge = _core.get_bridge()
    receivers = [asyncio.ensure_future(b.receive_some()) for _, b in pairs]
    await asyncio.sleep(0.01)
    before = bridge.passes
    await asyncio.gather(*(a.send_all(b"x") for a, _ in pairs))
    assert [await r for r in receivers] == [b"x"] * 50
    assert bridge.passes - before <= 5
    for a, b in pairs:
        await a.aclose()
        await b.aclose()


def test_threads_each_run_their_own_bridge():
    errors = []

    def worker():
        try:

            async def main():
                a, b = await pystream.open_stream_pair()
                async with a, b:
                    for i in range(200):
                        await a.send_all(b"%d" % i)
                        await b.receive_some()

            run_in_loop("asyncio", main())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert pystream._counters()["loops"] == 0


# -- receives resumed inside the pass (the Waiter; PyPy's default) ----------


def eager():
    """The running loop's bridge, its receives made to wait on Waiters
    whatever the interpreter's default."""
    bridge = _core.get_bridge()
    bridge.eager_wake = True  # handles made from now on keep a Waiter
    return bridge


async def waiting_receive(stream):
    """A task receiving on stream, already waiting."""
    receiver = asyncio.ensure_future(stream.receive_some())
    await asyncio.sleep(0.01)
    return receiver


async def test_waiter_resumes_receivers_inside_the_pass():
    loop = asyncio.get_running_loop()
    bridge = eager()
    pairs = [await pystream.open_stream_pair() for _ in range(20)]
    try:
        received = [asyncio.ensure_future(b.receive_some()) for _, b in pairs]
        await asyncio.sleep(0.01)  # all waiting
        # In one plain callback (as the loop runs them), so that no other
        # pass can come between: the data goes into the kernel, then one
        # pass reads it all and finishes every receiver inside.
        done_inside = loop.create_future()

        def send_and_run_a_pass():
            for i, (a, _) in enumerate(pairs):
                lib.ps_stream_try_write(a._h.ptr, b"%02d" % i, 2)
            before = [r.done() for r in received]
            bridge.run_pass()
            done_inside.set_result((before, [r.done() for r in received]))

        loop.call_soon(send_and_run_a_pass)
        assert await done_inside == ([False] * 20, [True] * 20)
        assert [r.result() for r in received] == [b"%02d" % i for i in range(20)]
    finally:
        for a, b in pairs:
            await a.aclose()
            await b.aclose()


async def test_waiter_cancelled_receive_loses_nothing():
    eager()
    a, b = await pystream.open_stream_pair()
    async with a, b:
        receiver = await waiting_receive(b)
        assert isinstance(b._h.recv_waiter, _core.Waiter)
        receiver.cancel()
        await asyncio.wait([receiver])
        assert receiver.cancelled()
        await a.send_all(b"kept")
        assert await b.receive_some() == b"kept"


async def test_waiter_is_rearmed_for_each_wait_even_after_a_cancel():
    eager()
    a, b = await pystream.open_stream_pair()
    async with a, b:
        waiter = b._h.spare_waiter
        assert isinstance(waiter, _core.Waiter)
        for i in range(3):
            receiver = await waiting_receive(b)
            assert b._h.recv_waiter is waiter and not waiter.done()
            await a.send_all(b"%d" % i)
            assert await receiver == b"%d" % i
        cancelled = await waiting_receive(b)
        cancelled.cancel()
        await asyncio.wait([cancelled])
        assert cancelled.cancelled() and waiter.cancelled()
        receiver = await waiting_receive(b)  # the same Waiter, pending again
        assert b._h.recv_waiter is waiter and not waiter.done()
        await a.send_all(b"after")
        assert await receiver == b"after"


async def test_waiter_runs_every_callback_in_order_inside_the_pass():
    loop = asyncio.get_running_loop()
    bridge = eager()
    a, b = await pystream.open_stream_pair()
    async with a, b:
        receiver = await waiting_receive(b)
        calls = []
        b._h.recv_waiter.add_done_callback(lambda w: calls.append("second"))
        b._h.recv_waiter.add_done_callback(lambda w: calls.append("third"))
        done_inside = loop.create_future()

        def send_and_run_a_pass():  # as in the test above
            lib.ps_stream_try_write(a._h.ptr, b"x", 1)
            before = (receiver.done(), list(calls))
            bridge.run_pass()
            done_inside.set_result((before, (receiver.done(), list(calls))))

        loop.call_soon(send_and_run_a_pass)
        assert await done_inside == ((False, []), (True, ["second", "third"]))
        assert receiver.result() == b"x"


async def test_waiter_wakes_with_the_error_when_closed_meanwhile():
    eager()
    a, b = await pystream.open_stream_pair()
    async with a:
        receiver = await waiting_receive(b)
        await b.aclose()
        with pytest.raises(pystream.ClosedResourceError):
            await receiver


async def test_waiter_pass_run_inside_a_task_schedules_instead():
    # A task cannot run another task's step inside its own: a pass run from
    # a task (only tests do that) resumes receivers through call_soon.
    bridge = eager()
    a, b = await pystream.open_stream_pair()
    async with a, b:
        receiver = await waiting_receive(b)
        waiter = b._h.recv_waiter
        # Into the kernel at once, without an await: no pass has seen it.
        assert lib.ps_stream_try_write(a._h.ptr, b"x", 1) == 1
        assert not waiter.done()
        bridge.run_pass()  # from this task
        assert waiter.done(), "the pass read the data and resolved the waiter"
        assert not receiver.done(), "the receiver was resumed inside this task"
        assert await receiver == b"x"


async def test_waiter_follows_the_future_protocol():
    loop = asyncio.get_running_loop()
    waiter = _core.Waiter(loop)
    assert waiter.get_loop() is loop and not waiter.done()
    for call in (waiter.result, waiter.exception):
        try:
            call()
        except asyncio.InvalidStateError:
            pass
        else:
            raise AssertionError("result() and exception() of a pending waiter must fail")
    calls = []
    waiter.add_done_callback(print)
    waiter.add_done_callback(calls.append)
    waiter.add_done_callback(lambda w: calls.append("last"))
    waiter.add_done_callback(print)
    assert waiter.remove_done_callback(print) == 2  # the first and the last
    waiter.set_result(None)
    await asyncio.sleep(0)
    assert calls == [waiter, "last"]
    assert waiter.result() is None and waiter.exception() is None
    del calls[1:]
    waiter.add_done_callback(calls.append)  # after the fact: still called
    await asyncio.sleep(0)
    assert calls == [waiter, waiter]
    assert not waiter.cancel()

    failed = _core.Waiter(loop)
    failed.set_exception(KeyError("k"))
    assert isinstance(failed.exception(), KeyError)

    cancelled = _core.Waiter(loop)
    task = asyncio.ensure_future(cancelled)  # a Task awaits it like a Future
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled() and cancelled.cancelled()
    try:
        cancelled.exception()
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("exception() of a cancelled waiter raises CancelledError")


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_waiter_keyboard_interrupt_in_one_task_leaves_the_others_scheduled(kind):
    loop = new_loop(kind)
    try:

        async def setup():
            eager()
            return [await pystream.open_stream_pair() for _ in range(3)]

        pairs = loop.run_until_complete(setup())

        async def interrupted(stream):
            await stream.receive_some()
            raise KeyboardInterrupt

        first = loop.create_task(interrupted(pairs[0][1]))
        others = [loop.create_task(b.receive_some()) for _, b in pairs[1:]]
        loop.run_until_complete(asyncio.sleep(0.01))  # all three waiting

        async def send_all_three():
            for a, _ in pairs:
                await a.send_all(b"go")
            await asyncio.sleep(10)  # the interrupt comes long before

        sender = loop.create_task(send_all_three())
        try:
            loop.run_until_complete(sender)
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("the KeyboardInterrupt should reach run_until_complete")
        assert isinstance(first.exception(), KeyboardInterrupt)
        # The loop was stopped by the interrupt; the others still resume.
        done = loop.run_until_complete(asyncio.wait_for(asyncio.gather(*others), 5))
        assert done == [b"go", b"go"]
        sender.cancel()  # still in its sleep

        async def close_all():
            for a, b in pairs:
                await a.aclose()
                await b.aclose()

        loop.run_until_complete(close_all())
        # As run_in_loop requires of every test: no task left running.
        left = [t for t in asyncio.all_tasks(loop) if not t.done()]
        assert not left, f"tasks left running: {left}"
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
