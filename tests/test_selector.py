"""pystream's own loop's selector (pystream/_core/_selector.py) at its
edges: more fds ready than libuv takes in one epoll_wait, and, in the fault
build (PYSTREAM_FAULTS=1, as scripts/coverage's sanitized run builds it),
the poll handles' failures as asyncio meets them."""

from __future__ import annotations

import asyncio
import errno
import resource
import selectors
import socket

import pytest

import pystream
from pystream._core import _fault as fault

pytestmark = pytest.mark.loops("pystream")

needs_faults = pytest.mark.skipif(
    not fault.AVAILABLE, reason="needs the fault build (PYSTREAM_FAULTS=1)"
)

MANY = 1100  # more than the 1024 events libuv's epoll_wait takes at once


async def test_each_ready_fd_is_reported_once_per_iteration():
    # libuv waits again in the same iteration when epoll_wait filled its
    # array, and calls a poll back again: still one report per fd, as a
    # selector gives, so every writer runs once per iteration.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * MANY + 200:
        if hard != resource.RLIM_INFINITY and hard < 2 * MANY + 200:
            pytest.skip("too few file descriptors allowed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2 * MANY + 200, hard))
    loop = asyncio.get_running_loop()
    pairs = [socket.socketpair() for _ in range(MANY)]
    calls = dict.fromkeys((a.fileno() for a, _ in pairs), 0)

    def writable(fd: int) -> None:
        calls[fd] += 1

    try:
        for a, _ in pairs:
            loop.add_writer(a.fileno(), writable, a.fileno())
        for _ in range(3):
            await asyncio.sleep(0)
        seen = sorted(set(calls.values()))
        for a, _ in pairs:
            loop.remove_writer(a.fileno())
    finally:
        for pair in pairs:
            for s in pair:
                s.close()
    assert len(seen) == 1 and seen[0] >= 1, f"calls per writer: {seen}"


@needs_faults
async def test_watching_less_survives_a_failed_start():
    # remove_writer runs from done callbacks, where an error would only
    # reach the exception handler: the selector replaces the poll instead.
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)
        readable = loop.create_future()
        loop.add_reader(a, lambda: readable.done() or readable.set_result(None))
        loop.add_writer(a, lambda: None)
        fault.reset()
        fault.arm("POLL_UV_POLL_START", 1)
        loop.remove_writer(a)
        assert fault.fired("POLL_UV_POLL_START") == 1
        key = loop._selector.get_key(a)  # type: ignore[attr-defined]
        assert key.events == selectors.EVENT_READ
        b.send(b"x")
        await asyncio.wait_for(readable, 10)
        loop.remove_reader(a)
    fault.reset()


@needs_faults
async def test_widening_fails_with_the_error():
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        loop.add_reader(a, lambda: None)
        fault.reset()
        fault.arm("POLL_UV_POLL_START", 1)
        with pytest.raises(FileExistsError):
            loop.add_writer(a, lambda: None)
        key = loop._selector.get_key(a)  # type: ignore[attr-defined]
        assert key.events == selectors.EVENT_READ
        loop.remove_reader(a)
    fault.reset()


@needs_faults
async def test_a_transport_whose_fd_cannot_be_watched_fails():
    # Its first add_reader runs from call_soon: the transport fails with
    # the error, and its protocol hears of it, instead of waiting forever.
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    with b:
        lost = loop.create_future()

        class Protocol(asyncio.Protocol):
            def connection_lost(self, exc: BaseException | None) -> None:
                lost.set_result(exc)

        fault.reset()
        fault.arm("POLL_CALLOC", 1)
        transport, _ = await loop.create_connection(Protocol, sock=a)
        exc = await asyncio.wait_for(lost, 10)
        assert fault.fired("POLL_CALLOC") == 1
        assert isinstance(exc, OSError) and exc.errno == errno.ENOMEM, exc
        assert transport.is_closing()
    fault.reset()


@needs_faults
def test_a_loop_whose_self_pipe_cannot_be_watched_leaves_nothing():
    before = pystream._counters()
    fault.reset()
    fault.arm("POLL_CALLOC", 1)
    with pytest.raises(OSError) as info:
        pystream.new_event_loop()
    fault.reset()
    assert info.value.errno == errno.ENOMEM
    assert pystream._counters() == before
