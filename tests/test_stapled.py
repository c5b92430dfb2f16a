"""StapledStream: two one-way streams as one keep the contract."""

from __future__ import annotations

import asyncio

import pytest

import pystream
import pystream._wrappers._tls
from pystream.testing import (
    check_half_closeable_stream,
    lockstep_stream_pair,
    memory_stream_pair,
)

from tls_helpers import client_context, server_context


async def test_stapled_stream():
    async def maker():
        a_out, b_in = memory_stream_pair()
        b_out, a_in = memory_stream_pair()
        return (pystream.StapledStream(a_out, a_in), pystream.StapledStream(b_out, b_in))

    async def clogged():
        a_out, b_in = lockstep_stream_pair()
        b_out, a_in = lockstep_stream_pair()
        return (pystream.StapledStream(a_out, a_in), pystream.StapledStream(b_out, b_in))

    await check_half_closeable_stream(maker, clogged)


class SlowToClose:
    """A one-way stream whose aclose waits until let_finish is set (the
    way a TLS stream waits for its close_notify to go out).  Cancelled,
    it closes forcefully."""

    def __init__(self, let_finish):
        self.let_finish = let_finish
        self.closing = asyncio.Event()
        self.closed = None
        self.fail_with = None

    async def send_all(self, data):
        pass

    async def receive_some(self, max_bytes=None):
        return b""

    async def aclose(self):
        self.closing.set()
        try:
            await self.let_finish.wait()
        except asyncio.CancelledError:
            self.closed = "forcefully"
            raise
        self.closed = "gracefully"
        if self.fail_with is not None:
            raise self.fail_with


def slow_pair():
    """Two SlowToClose streams, each letting the other finish once its own
    close has started: closed one after the other, they never finish."""
    first_started, second_started = asyncio.Event(), asyncio.Event()
    send, receive = SlowToClose(second_started), SlowToClose(first_started)
    send.closing, receive.closing = first_started, second_started
    return send, receive


async def test_stapled_aclose_closes_both_at_once():
    send, receive = slow_pair()
    stream = pystream.StapledStream(send, receive)
    # Sequential closes would wait for each other forever.
    await asyncio.wait_for(stream.aclose(), 5)
    assert (send.closed, receive.closed) == ("gracefully", "gracefully")


async def test_stapled_aclose_of_two_tls_streams_takes_one_timeout(monkeypatch):
    # Two TLS streams whose peers never read: each aclose gives its
    # close_notify the whole timeout.  Together they take one, not two.
    monkeypatch.setattr(pystream._wrappers._tls, "_CLOSE_NOTIFY_TIMEOUT", 1.0)
    clients, servers = [], []
    for _ in range(2):
        a, b = lockstep_stream_pair()
        server_ctx = server_context()
        server_ctx.num_tickets = 0
        clients.append(pystream.TLSStream(a, client_context(), server_hostname="localhost"))
        servers.append(pystream.TLSStream(b, server_ctx, server_side=True))
        await asyncio.gather(clients[-1].do_handshake(), servers[-1].do_handshake())
    stream = pystream.StapledStream(clients[0], clients[1])
    loop = asyncio.get_running_loop()
    start = loop.time()
    await stream.aclose()
    took = loop.time() - start
    for server in servers:
        await server.aclose()
    assert took < 1.9, f"aclose took {took:.2f} s: the two closes ran one after the other"


async def test_stapled_aclose_cancelled_closes_both_and_raises():
    never = asyncio.Event()
    send, receive = SlowToClose(never), SlowToClose(never)
    closing = asyncio.ensure_future(pystream.StapledStream(send, receive).aclose())
    await asyncio.wait_for(asyncio.gather(send.closing.wait(), receive.closing.wait()), 5)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert (send.closed, receive.closed) == ("forcefully", "forcefully")


async def test_stapled_aclose_failing_still_closes_both_and_raises():
    send, receive = slow_pair()
    send.fail_with = OSError("send side failed")
    receive.fail_with = OSError("receive side failed")
    with pytest.raises(OSError, match="send side failed"):
        await asyncio.wait_for(pystream.StapledStream(send, receive).aclose(), 5)
    assert (send.closed, receive.closed) == ("gracefully", "gracefully")
    send, receive = slow_pair()
    receive.fail_with = OSError("receive side failed")
    with pytest.raises(OSError, match="receive side failed"):
        await asyncio.wait_for(pystream.StapledStream(send, receive).aclose(), 5)
    assert (send.closed, receive.closed) == ("gracefully", "gracefully")


async def test_stapled_receive_ready_asks_its_receive_stream():
    from helpers import make_pair, wait_until

    a, b = await make_pair("pair")
    out, _ = memory_stream_pair()
    stapled = pystream.StapledStream(out, b)
    assert stapled.receive_ready() is False
    await a.send_all(b"xy")
    await wait_until(stapled.receive_ready, "the receive stream's bytes")
    assert await stapled.readexactly(1) == b"x"
    assert stapled.receive_ready() is True
    await a.aclose()
    await stapled.aclose()
