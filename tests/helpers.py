"""Stream pairs of every socket kind, for the tests."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from typing import Any

import pystream

try:
    import uvloop
except ImportError:  # PyPy: uvloop does not exist there
    uvloop = None

# The loops async tests run on: asyncio's default loop, uvloop where it
# exists, and pystream's own loop (pystream.new_event_loop());
# PYSTREAM_TEST_LOOPS="asyncio,pystream" (say) picks some.
LOOP_KINDS = [
    kind
    for kind in (os.environ.get("PYSTREAM_TEST_LOOPS") or "asyncio,uvloop,pystream").split(",")
    if kind != "uvloop" or uvloop is not None
]

# The state machine's examples per stream kind (tests/test_fuzz.py): 200
# in CI (the variable CI set), else 30; PYSTREAM_FUZZ_EXAMPLES overrides.
# A fresh seed each run, shown in pytest's header; PYSTREAM_FUZZ_SEED=N
# replays one.
FUZZ_EXAMPLES = int(
    os.environ.get("PYSTREAM_FUZZ_EXAMPLES") or ("200" if os.environ.get("CI") else "30")
)
FUZZ_SEED = int(os.environ.get("PYSTREAM_FUZZ_SEED") or random.SystemRandom().getrandbits(32))
# How long an async test may take before it counts as hung (conftest.py;
# patience(N) marks one that may take N s), times PYSTREAM_PATIENCE_FACTOR:
# scripts/test sets 2, as it runs two suites at once.
PATIENCE_FACTOR = float(os.environ.get("PYSTREAM_PATIENCE_FACTOR") or "1")
TEST_TIMEOUT = 30.0 * PATIENCE_FACTOR


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        assert uvloop is not None
        return uvloop.new_event_loop()
    if kind == "pystream":
        return pystream.new_event_loop()
    return asyncio.new_event_loop()


def open_fds() -> list[int]:
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))


def run_in_loop(kind: str, coro: Any, timeout: float = TEST_TIMEOUT) -> Any:
    """asyncio.run on a loop of the given kind, reporting loop errors.

    A task still running when coro returns fails the run, named in the
    message (it is cancelled first, so nothing is left behind): whatever
    it was doing, the test did not wait for it.  When coro itself failed,
    its error is what is reported."""
    loop = new_loop(kind)
    loop.set_debug(True)
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        try:
            result = loop.run_until_complete(asyncio.wait_for(coro, timeout))
        finally:
            leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
            # Described before cancelling: where each one waits.
            described = [describe_task(task) for task in leftovers]
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.wait(leftovers, timeout=TEST_TIMEOUT))
            # Also when the test failed: this tears pystream's bridge down,
            # which a failed test's traceback would otherwise keep alive
            # into the next test's leak check.
            loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
    assert not described, f"{len(described)} task(s) left running: " + "; ".join(described)
    assert not errors, f"errors reported to the loop: {errors}"
    return result


def describe_task(task: asyncio.Task[Any]) -> str:
    """The task's repr, and the line outside asyncio that created it (in
    debug mode the loop records where each task was made)."""
    frames = getattr(task, "_source_traceback", None) or []
    library = os.path.dirname(asyncio.__file__)
    outside = [f for f in frames if not f.filename.startswith(library)]
    if not outside:
        return repr(task)
    return f"{task!r}, made at {outside[-1].filename}:{outside[-1].lineno}"


PAIR_KINDS = ["pair", "tcp", "unix"]


async def make_pair(kind: str) -> tuple[pystream.SocketStream, pystream.SocketStream]:
    """A connected (client, server) pair of the given kind."""
    if kind == "pair":
        return await pystream.open_stream_pair()
    if kind == "tcp":
        listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
        listener = listeners[0]
        connect = pystream.open_tcp_stream("127.0.0.1", listener.local_address[1])
    elif kind == "unix":
        path = os.path.join(tempfile.mkdtemp(), "sock")
        listener = await pystream.open_unix_listener(path)
        connect = pystream.open_unix_stream(path)
    else:
        raise ValueError(kind)
    async with listener:
        client, server = await asyncio.gather(connect, listener.accept())
    return client, server


async def receive_exactly(stream: pystream.SocketStream, n: int) -> bytes:
    chunks = []
    while n:
        chunk = await stream.receive_some(n)
        assert chunk, "EOF before the expected data"
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


async def receive_all(stream: pystream.SocketStream) -> bytes:
    chunks = []
    async for chunk in stream:
        chunks.append(chunk)
    return b"".join(chunks)


async def wait_until(predicate, what: str, timeout: float = 10.0) -> None:
    """Let the loop run until predicate() holds (polling each iteration)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def clog(sender: pystream.SocketStream, receiver: pystream.SocketStream) -> int:
    """Fill the receiver's buffer and the kernel's, the receiver not
    reading, until the socket takes no more; return how much was sent."""
    from pystream._binding import lib

    chunk = b"\0" * 65536
    sent = 0
    while True:
        # Writes what the kernel takes now and never queues, so it cannot
        # block; the data is accepted exactly as by send_all.
        n = lib.ps_stream_try_write(sender._h.ptr, chunk, len(chunk))
        assert n >= 0, n
        sent += n
        if n:
            continue
        for _ in range(3):  # let the receiver take what it can
            await asyncio.sleep(0)
        if lib.ps_stream_buffered(receiver._h.ptr) >= 256 * 1024:
            # TCP may still move data from our kernel buffer to the peer's:
            # full means full for a while.
            await asyncio.sleep(0.05)
            if lib.ps_stream_try_write(sender._h.ptr, chunk, 1) == 0:
                return sent
            sent += 1


def exit_report(result: Any) -> str:
    """How a finished subprocess ended, for assertion messages: its exit
    status, or the signal that killed it (a crash), then its stderr."""
    code = result.returncode
    if code is not None and code < 0:
        import signal

        how = f"killed by {signal.Signals(-code).name}"
    else:
        how = f"exit status {code}"
    err = result.stderr
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    return f"{how}\n{(err or '')[-3000:]}"
