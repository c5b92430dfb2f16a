"""The bridge between asyncio and the private libuv loop."""

from __future__ import annotations

import asyncio
import gc
import threading

import pystream
from pystream import _bridge

from helpers import LOOP_KINDS, new_loop, receive_exactly, run_in_loop


async def test_idle_streams_do_not_spin():
    a, b = await pystream.open_stream_pair()
    async with a, b:
        receiver = asyncio.ensure_future(b.receive_some())
        await asyncio.sleep(0.01)
        bridge = _bridge.get_bridge()
        before = bridge.passes
        await asyncio.sleep(0.2)
        assert bridge.passes - before <= 1, "an idle bridge must not run passes"
        await a.send_all(b"x")
        assert await receiver == b"x"


async def test_one_bridge_per_loop():
    assert _bridge.get_bridge() is _bridge.get_bridge()
    loop = asyncio.get_running_loop()

    def other_thread():
        async def main():
            bridge = _bridge.get_bridge()
            a, b = await pystream.open_stream_pair()
            async with a, b:
                await a.send_all(b"elsewhere")
                assert await receive_exactly(b, 9) == b"elsewhere"
            return bridge

        return run_in_loop("asyncio", main())

    other = await loop.run_in_executor(None, other_thread)
    assert other is not _bridge.get_bridge()
    assert other.closed


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
            assert pystream._counters() == {
                "loops": 0, "handles": 0, "streams": 0, "listeners": 0,
                "writes_pending": 0, "bytes_buffered": 0,
            }
        finally:
            loop.close()
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
        _bridge.get_bridge()
        assert pystream._counters()["loops"] == 1, "the old bridge is swept"
        for stream in pair:
            await stream.aclose()

    run_in_loop("asyncio", next_use())
    assert pystream._counters()["loops"] == 0


async def test_streams_from_many_tasks_share_passes():
    # Many streams ready at once are served by few passes, not one each.
    pairs = [await pystream.open_stream_pair() for _ in range(50)]
    bridge = _bridge.get_bridge()
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
