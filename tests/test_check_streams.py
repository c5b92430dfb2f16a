"""Every stream pystream ships passes the conformance suite."""

from __future__ import annotations

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
