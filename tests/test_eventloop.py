"""pystream's own event loop (pystream.new_event_loop, run, EventLoopPolicy):
pystream's objects and asyncio's transports together on one libuv loop.

The rest of the suite also runs on this loop (tests/helpers.py's
LOOP_KINDS), and scripts/test-asyncio-suite runs CPython's own asyncio
tests on it; these tests check what is particular to it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
import time

import pytest

import pystream
from pystream import _core
from pystream._eventloop import _run_before_311

from helpers import LOOP_KINDS, receive_exactly
from tls_helpers import client_context, server_context

own_loop = pytest.mark.loops("pystream")


@own_loop
async def test_the_bridge_is_the_selectors_and_watches_no_backend_fd():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, _core.EventLoop)
    a, b = await pystream.open_stream_pair()
    async with a, b:
        bridge = _core.get_bridge()
        assert bridge is loop._selector.bridge
        # Only asyncio's own self-pipe is registered: no backend-fd reader.
        assert len(loop._selector.get_map()) == 1
        await a.send_all(b"x")
        assert await b.receive_some() == b"x"


@own_loop
async def test_idle_loop_waits_in_one_iteration():
    a, b = await pystream.open_stream_pair()
    async with a, b:
        receiver = asyncio.ensure_future(b.receive_some())
        await asyncio.sleep(0.01)
        bridge = _core.get_bridge()
        before = bridge.passes
        started = time.monotonic()
        await asyncio.sleep(0.2)
        assert time.monotonic() - started >= 0.2
        # The sleep's own iteration and the timer's: nothing spins.
        assert bridge.passes - before <= 3
        await a.send_all(b"y")
        assert await receiver == b"y"


@own_loop
async def test_asyncio_client_to_pystream_listener_and_back():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]

    async def echo_once():
        stream = await listeners[0].accept()
        async with stream:
            data = await receive_exactly(stream, 5)
            await stream.send_all(data.upper())

    server = asyncio.ensure_future(echo_once())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello")
    assert await reader.readexactly(5) == b"HELLO"
    writer.close()
    await writer.wait_closed()
    await server
    await listeners[0].aclose()


@own_loop
async def test_pystream_client_to_asyncio_server():
    async def handler(reader, writer):
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with await pystream.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(b"ping\n")
        assert await stream.readline() == b"PING\n"
        assert await stream.receive_some() == b""
    server.close()
    await server.wait_closed()


@own_loop
async def test_tls_both_ways_asyncio_ssl_and_pystream_tls():
    async def handler(reader, writer):
        writer.write(await reader.readexactly(4))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_context())
    port = server.sockets[0].getsockname()[1]
    transport = await pystream.open_tcp_stream("127.0.0.1", port)
    tls = pystream.TLSStream(transport, client_context(), server_hostname="localhost")
    async with tls:
        await tls.send_all(b"tls!")
        assert await receive_exactly(tls, 4) == b"tls!"
    server.close()
    await server.wait_closed()


@own_loop
async def test_processes_of_both_kinds():
    done = await pystream.run_process(["echo", "pystream"], capture_stdout=True)
    assert done.stdout == b"pystream\n"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print('asyncio')", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert out == b"asyncio\n" and proc.returncode == 0


def settle(future):
    """A reader's callback: level-triggered, it may run again before the
    task that awaits the future removes it."""
    if not future.done():
        future.set_result(None)


@own_loop
async def test_a_reader_on_a_pystream_streams_fd():
    # libuv watches the stream's fd already; asyncio's watch goes through a
    # duplicate, and both keep working.
    loop = asyncio.get_running_loop()
    a, b = await pystream.open_stream_pair()
    async with a, b:
        writable = loop.create_future()
        loop.add_writer(a.fileno(), settle, writable)
        try:
            await asyncio.wait_for(writable, 5)
        finally:
            assert loop.remove_writer(a.fileno())
        await a.send_all(b"still")
        assert await receive_exactly(b, 5) == b"still"


@own_loop
async def test_regular_files_are_refused_as_by_epoll(tmp_path):
    loop = asyncio.get_running_loop()
    path = tmp_path / "file"
    path.write_bytes(b"data")
    with open(path, "rb") as f:
        with pytest.raises(PermissionError):
            loop.add_reader(f.fileno(), lambda: None)
        assert not loop.remove_reader(f.fileno())


@own_loop
async def test_a_reader_keeps_the_fds_blocking_mode():
    loop = asyncio.get_running_loop()
    r, w = os.pipe()
    try:
        assert os.get_blocking(r)
        ready = loop.create_future()
        loop.add_reader(r, settle, ready)
        assert os.get_blocking(r)
        os.write(w, b"z")
        await asyncio.wait_for(ready, 5)
        assert loop.remove_reader(r)
        assert os.read(r, 1) == b"z"
    finally:
        os.close(r)
        os.close(w)


@own_loop
async def test_timers_threads_signals_and_executors_wake_the_wait():
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    fired = loop.create_future()
    loop.call_later(0.05, fired.set_result, None)
    await asyncio.wait_for(fired, 5)
    assert 0.05 <= time.monotonic() - started < 2

    # From another thread, while the loop blocks with nothing else to do.
    woken = loop.create_future()
    thread = threading.Timer(0.05, loop.call_soon_threadsafe, (woken.set_result, "thread"))
    thread.start()
    assert await asyncio.wait_for(woken, 5) == "thread"
    thread.join()

    assert await loop.run_in_executor(None, sum, [1, 2]) == 3

    got = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, got.set_result, "signal")
    try:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        assert await asyncio.wait_for(got, 5) == "signal"
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


@own_loop
async def test_sock_methods_and_a_refused_connect():
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)
        await loop.sock_sendall(a, b"sock")
        assert await loop.sock_recv(b, 4) == b"sock"
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def main_returning(value):
    stream_a, stream_b = await pystream.open_stream_pair()
    async with stream_a, stream_b:
        await stream_a.send_all(value)
        loop = asyncio.get_running_loop()
        return type(loop).__name__, loop.get_debug(), await stream_b.receive_some()


def test_run_uses_pystreams_loop_and_closes_it():
    assert pystream.run(main_returning(b"ok"), debug=True) == ("EventLoop", True, b"ok")
    assert pystream._counters()["loops"] == 0


@pytest.mark.parametrize("debug", [False, True])
def test_call_soon_in_and_out_of_debug_mode(debug):
    # The loop's one-frame call_soon (outside debug mode) and asyncio's
    # (in it) both: FIFO, args and context passed, cancellable Handles,
    # debug mode's checks and source traceback, and a closed loop refused.
    import contextvars

    var = contextvars.ContextVar("var", default="unset")
    seen = []
    loop = pystream.new_event_loop()
    try:
        loop.set_debug(debug)
        ctx = contextvars.copy_context()
        ctx.run(var.set, "in ctx")
        loop.call_soon(seen.append, 1)
        handle = loop.call_soon(seen.append, "cancelled")
        loop.call_soon(lambda: seen.append(var.get()), context=ctx)
        loop.call_soon(loop.stop)
        assert isinstance(handle, asyncio.Handle)
        handle.cancel()
        if debug:
            assert handle._source_traceback[-1].name == "test_call_soon_in_and_out_of_debug_mode"
            with pytest.raises(TypeError):
                loop.call_soon(main_returning)  # a coroutine function
        else:
            assert handle._source_traceback is None
        loop.run_forever()
        assert seen == [1, "in ctx"]
    finally:
        loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(seen.append, 2)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="loop_factory is 3.12's")
def test_asyncio_run_with_pystreams_loop_factory():
    kind, _, received = asyncio.run(main_returning(b"f"), loop_factory=pystream.new_event_loop)
    assert (kind, received) == ("EventLoop", b"f")


def test_run_before_311_does_what_asyncio_run_does():
    leftover = []

    async def main():
        async def forever():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                leftover.append("cancelled")
                raise

        asyncio.ensure_future(forever())
        await asyncio.sleep(0)
        return await main_returning(b"old")

    assert _run_before_311(main(), debug=False) == ("EventLoop", False, b"old")
    assert leftover == ["cancelled"]
    assert pystream._counters()["loops"] == 0
    with pytest.raises(ValueError):
        _run_before_311(42, None)  # type: ignore[arg-type]


def test_policy_makes_pystreams_loops():
    policy = pystream.EventLoopPolicy()
    loop = policy.new_event_loop()
    try:
        assert type(loop).__name__ == "EventLoop"
        assert loop.run_until_complete(main_returning(b"p"))[2] == b"p"
    finally:
        loop.close()
    assert pystream._counters()["loops"] == 0


def test_the_suite_runs_on_pystreams_loop_too():
    # Unless PYSTREAM_TEST_LOOPS narrows it: then this says so.
    if os.environ.get("PYSTREAM_TEST_LOOPS"):
        pytest.skip("PYSTREAM_TEST_LOOPS picks the loops")
    assert "pystream" in LOOP_KINDS


CTRL_C = """
import asyncio, os, signal, threading, time, pystream
loop = pystream.new_event_loop()
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
started = time.monotonic()
try:
    loop.run_until_complete(asyncio.sleep(60))
except KeyboardInterrupt:
    print("interrupted", time.monotonic() - started < 30)
finally:
    loop.close()
print("wake-up fd left", signal.set_wakeup_fd(-1))
"""


def test_ctrl_c_ends_a_wait_with_no_signal_handler():
    # libuv retries epoll_wait after EINTR: without a wake-up fd the loop
    # would sleep through Ctrl-C until its next timer (60 s here).
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", CTRL_C], capture_output=True, text=True, timeout=30
    )
    assert done.stdout.split("\n")[:2] == ["interrupted True", "wake-up fd left -1"], done
