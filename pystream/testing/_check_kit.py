"""The conformance suite's toolkit: pairs that clean up after a check,
bounded waits, and assertions that name the behaviour they check."""

from __future__ import annotations

import asyncio
import contextvars
import random
from typing import Any, Awaitable, Callable, Optional

from ..abc import ReceiveStream, SendStream, aclose_forcefully

__all__ = [
    "CLOGGED_SEND",
    "PATIENCE",
    "Maker",
    "Pair",
    "cancelled_at_once",
    "drain_until",
    "expect",
    "flipped",
    "is_checkpoint",
    "raises",
    "random_transfer",
    "receive_exactly",
    "spawn",
    "within",
    "yield_many",
]

Maker = Callable[[], Awaitable[tuple[Any, Any]]]

# Generous bounds for "eventually" and "never hangs": not speed limits.
PATIENCE = 10.0
# More than a socket pair's kernel buffers hold, so it blocks when clogged.
CLOGGED_SEND = 16 * 1024 * 1024


# The tasks spawn started inside the innermost Pair.
_spawned: contextvars.ContextVar[Optional[list[asyncio.Future[Any]]]] = contextvars.ContextVar(
    "pystream_check_spawned", default=None
)


def spawn(awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
    """Run awaitable as a task that the enclosing Pair cleans up after."""
    task = asyncio.ensure_future(awaitable)
    tasks = _spawned.get()
    if tasks is not None:
        tasks.append(task)
    return task


class Pair:
    """``async with Pair(maker) as (s, r)``: closes both ends forcefully,
    then ends what ``spawn`` started and the check left running (it failed,
    or ended early): a check leaves no task behind to report errors later."""

    def __init__(self, maker: Maker) -> None:
        self._maker = maker
        self._ends: tuple[Any, Any] = (None, None)
        self._tasks: list[asyncio.Future[Any]] = []
        self._token: Optional[contextvars.Token[Any]] = None

    async def __aenter__(self) -> tuple[Any, Any]:
        self._ends = await self._maker()
        self._token = _spawned.set(self._tasks)
        return self._ends

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._token is not None:
            _spawned.reset(self._token)
        for end in self._ends:
            await aclose_forcefully(end)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        for task in self._tasks:
            if not task.cancelled():
                task.exception()  # retrieved: the check already judged it
        # The spawned tasks' contexts refer to this list.  Empty it: on PyPy
        # something keeps those contexts alive after the check, and with
        # them every task and the data its frame held (measured: 16 MB kept
        # per clogged check, and the suite ran 4x slower as the heap grew).
        self._tasks.clear()


def flipped(maker: Maker) -> Maker:
    async def flipped() -> tuple[Any, Any]:
        a, b = await maker()
        return b, a

    return flipped


def expect(condition: bool, behaviour: str) -> None:
    if not condition:
        raise AssertionError(behaviour)


async def within(awaitable: Awaitable[Any], what: str, patience: float = PATIENCE) -> Any:
    try:
        return await asyncio.wait_for(awaitable, patience)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what} (still waiting after {patience} s)") from None


async def raises(exc_type: Any, awaitable: Awaitable[Any], behaviour: str) -> BaseException:
    try:
        await within(awaitable, behaviour)
    except exc_type as exc:
        caught: BaseException = exc
        return caught
    except AssertionError:
        raise
    except BaseException as exc:
        raise AssertionError(f"{behaviour}: got {exc!r}") from exc
    raise AssertionError(f"{behaviour}: nothing was raised")


async def cancelled_at_once(
    call: Callable[[], Awaitable[Any]],
) -> tuple[bool, asyncio.Future[Any]]:
    """Await call() in a task whose cancellation is already pending; return
    whether call returned anyway (it never yielded to the loop: it is not a
    checkpoint), and the finished task (cancelled, or holding call's error).
    The conformance suite and the fuzzer both probe checkpoints with it."""

    returned = False

    async def body() -> None:
        nonlocal returned
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await call()
        # (A task that finishes with a cancel pending still ends cancelled,
        # so the flag, not the task's state, says whether call yielded.)
        returned = True

    task = spawn(body())
    await asyncio.wait([task])
    return returned, task


async def is_checkpoint(call: Callable[[], Awaitable[Any]]) -> bool:
    """Run call with a cancellation already pending: a checkpoint raises
    CancelledError there."""
    returned, task = await cancelled_at_once(call)
    if not task.cancelled():
        task.result()  # re-raise a real error
    return not returned


async def yield_many(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)
    await asyncio.sleep(0.02)  # and let I/O happen


async def receive_exactly(r: ReceiveStream, n: int, what: str) -> bytes:
    got = bytearray()
    while len(got) < n:
        try:
            chunk = await within(r.receive_some(n - len(got)), what)
        except AssertionError:
            # Say what was violated, not only that it waited.
            raise AssertionError(
                f"{what}: only {len(got)} of the {n} bytes sent arrived within "
                f"{PATIENCE} s (lost, or held back by the stream)"
            ) from None
        expect(
            bool(chunk), f"{what}: receive_some returned b'' (EOF) after {len(got)} of {n} bytes"
        )
        got += chunk
    return bytes(got)


async def drain_until(r: ReceiveStream, task: asyncio.Future[Any], what: str) -> None:
    """Receive until task finishes (the peer reading unblocks it)."""

    async def drain() -> None:
        while not task.done():
            receive = spawn(r.receive_some(65536))
            await asyncio.wait([receive, task], return_when=asyncio.FIRST_COMPLETED)
            if not receive.done():
                receive.cancel()
                await asyncio.wait([receive])
            elif not receive.result():
                return

    await within(drain(), what)
    await within(asyncio.wait([task]), what)


async def random_transfer(
    s: SendStream, r: ReceiveStream, data: bytes, rng: random.Random, what: str
) -> None:
    async def send() -> None:
        offset = 0
        while offset < len(data):
            size = rng.randint(1, 70000)
            await s.send_all(data[offset : offset + size])
            offset += size

    async def receive() -> bytes:
        got = bytearray()
        while len(got) < len(data):
            chunk = await r.receive_some(rng.randint(1, 70000))
            expect(bool(chunk), f"{what}: receive_some returned b'' before EOF")
            got += chunk
        return bytes(got)

    _, got = await within(asyncio.gather(send(), receive()), what)
    expect(got == data, f"{what}: the bytes received differ from those sent")


# -- one-way checks -----------------------------------------------------------
