"""Every stream pystream ships passes the conformance suite."""

from __future__ import annotations

import asyncio
import platform
import subprocess
import sys

import pytest

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


PYPY_HEAP_AFTER_CHECKS = """
import asyncio, gc
from pystream.testing import _check_streams, lockstep_stream_pair

async def maker():
    return lockstep_stream_pair()

def heap_mb():
    for _ in range(3):
        gc.collect()
    line = str(gc.get_stats()).splitlines()[1]  # "GC used: 12.3MB (peak: ...)"
    return float(line.split()[2].rstrip("MB"))

async def main():
    await _check_streams._check_clogged_send_blocks(maker)
    before = heap_mb()
    for _ in range(4):
        await _check_streams._check_clogged_send_blocks(maker)
    print(heap_mb() - before)

asyncio.run(main())
"""


@pytest.mark.skipif(
    platform.python_implementation() != "PyPy",
    reason="reads PyPy's own GC statistics (the leak was PyPy's)",
)
def test_clogged_checks_do_not_grow_the_heap_on_pypy():
    # Each clogged check sends 16 MiB; on PyPy the helper tasks' contexts
    # once kept all of it alive, check after check.
    ran = subprocess.run(
        [sys.executable, "-c", PYPY_HEAP_AFTER_CHECKS], capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    grown = float(ran.stdout)
    assert grown < 16, f"the heap grew {grown:.1f} MB over 4 clogged checks"
