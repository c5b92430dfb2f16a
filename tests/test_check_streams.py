"""Every stream pystream ships passes the conformance suite."""

from __future__ import annotations

import asyncio

import pystream
from pystream.testing import (
    check_half_closeable_stream,
    lockstep_stream_pair,
    memory_stream_pair,
)

from helpers import clog, make_pair


async def memory_maker():
    return memory_stream_pair()


async def lockstep_maker():
    return lockstep_stream_pair()


async def test_memory_stream_pair():
    await check_half_closeable_stream(memory_maker, lockstep_maker)


async def test_lockstep_stream_pair():
    await check_half_closeable_stream(lockstep_maker, lockstep_maker)


def socket_makers(kind):
    async def maker():
        return await make_pair(kind)

    async def clogged():
        a, b = await make_pair(kind)
        # Both ways (the suite also runs the pair the other way round), until
        # neither takes more: TCP grows its buffers while data flows.
        while await clog(a, b) + await clog(b, a):
            pass
        return a, b

    return maker, clogged


async def test_socket_pair():
    await check_half_closeable_stream(*socket_makers("pair"))


async def test_tcp_stream():
    await check_half_closeable_stream(*socket_makers("tcp"))


async def test_unix_stream():
    await check_half_closeable_stream(*socket_makers("unix"))


async def test_memory_receive_woken_by_data_then_closed_does_not_hang():
    # Data wakes the blocked receive, and the stream closes before the
    # receive resumes: it must raise, not wait again for data that is gone.
    a, b = memory_stream_pair()
    receiving = asyncio.ensure_future(b.receive_some())
    await asyncio.sleep(0)
    a._out.data += b"x"  # what send_all does, without its checkpoint
    a._out.wake_reader()
    await b.aclose()
    done, _ = await asyncio.wait([receiving], timeout=2)
    assert done, "receive_some still waits after aclose"
    assert isinstance(receiving.exception(), pystream.ClosedResourceError)
    await a.aclose()
