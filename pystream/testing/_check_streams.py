"""The stream conformance suite: does a Stream keep pystream's contract?

Each check makes a fresh pair with the caller's maker, exercises one
behaviour, and closes both ends.  A violation raises ``AssertionError`` whose
message names the behaviour in plain words.  ``maker`` is an async callable
returning a connected ``(send_side, receive_side)``; ``clogged_maker`` the
same for a pair whose ``send_all`` blocks until the receiver reads (a
lockstep pair, or sockets whose buffers were filled), or None to skip the
checks that need one.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from typing import Any, Awaitable, Callable, Optional

from .._errors import BrokenResourceError, BusyResourceError, ClosedResourceError
from .._util import aclose_forcefully
from ..abc import HalfCloseableStream, ReceiveStream, SendStream

__all__ = [
    "check_one_way_stream",
    "check_two_way_stream",
    "check_half_closeable_stream",
]

Maker = Callable[[], Awaitable[tuple[Any, Any]]]

# Generous bounds for "eventually" and "never hangs": not speed limits.
PATIENCE = 10.0
# More than a socket pair's kernel buffers hold, so it blocks when clogged.
CLOGGED_SEND = 16 * 1024 * 1024


# The tasks _spawn started inside the innermost _Pair.
_spawned: contextvars.ContextVar[Optional[list[asyncio.Future[Any]]]] = (
    contextvars.ContextVar("pystream_check_spawned", default=None)
)


def _spawn(awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
    """Run awaitable as a task that the enclosing _Pair cleans up after."""
    task = asyncio.ensure_future(awaitable)
    tasks = _spawned.get()
    if tasks is not None:
        tasks.append(task)
    return task


class _Pair:
    """``async with _Pair(maker) as (s, r)``: closes both ends forcefully,
    then ends what ``_spawn`` started and the check left running (it failed,
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


def _flipped(maker: Maker) -> Maker:
    async def flipped() -> tuple[Any, Any]:
        a, b = await maker()
        return b, a

    return flipped


def _expect(condition: bool, behaviour: str) -> None:
    if not condition:
        raise AssertionError(behaviour)


async def _within(awaitable: Awaitable[Any], what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, PATIENCE)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what} (still waiting after {PATIENCE} s)") from None


async def _raises(exc_type: Any, awaitable: Awaitable[Any], behaviour: str) -> BaseException:
    try:
        await _within(awaitable, behaviour)
    except exc_type as exc:
        caught: BaseException = exc
        return caught
    except AssertionError:
        raise
    except BaseException as exc:
        raise AssertionError(f"{behaviour}: got {exc!r}") from exc
    raise AssertionError(f"{behaviour}: nothing was raised")


async def _is_checkpoint(call: Callable[[], Awaitable[Any]]) -> bool:
    """Run call with a cancellation already pending: a checkpoint raises
    CancelledError there."""

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

    task = _spawn(body())
    await asyncio.wait([task])
    if not task.cancelled():
        task.result()  # re-raise a real error
    return not returned


async def _yield_many(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)
    await asyncio.sleep(0.02)  # and let I/O happen


async def _receive_exactly(r: ReceiveStream, n: int, what: str) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = await _within(r.receive_some(n - len(got)), what)
        _expect(bool(chunk), f"{what}: receive_some returned b'' (EOF) after {len(got)} of {n} bytes")
        got += chunk
    return bytes(got)


async def _drain_until(r: ReceiveStream, task: asyncio.Future[Any], what: str) -> None:
    """Receive until task finishes (the peer reading unblocks it)."""

    async def drain() -> None:
        while not task.done():
            receive = _spawn(r.receive_some(65536))
            await asyncio.wait([receive, task], return_when=asyncio.FIRST_COMPLETED)
            if not receive.done():
                receive.cancel()
                await asyncio.wait([receive])
            elif not receive.result():
                return

    await _within(drain(), what)
    await _within(asyncio.wait([task]), what)


async def _random_transfer(
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
            _expect(bool(chunk), f"{what}: receive_some returned b'' before EOF")
            got += chunk
        return bytes(got)

    _, got = await _within(asyncio.gather(send(), receive()), what)
    _expect(got == data, f"{what}: the bytes received differ from those sent")


# -- one-way checks -----------------------------------------------------------

async def _check_transfer(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        for data in (b"bytes", bytearray(b"bytearray"), memoryview(b"xmemoryviewx")[1:-1]):
            sender = _spawn(s.send_all(data))
            got = await _receive_exactly(r, len(data), f"send_all({type(data).__name__}) delivers it")
            await _within(sender, "send_all returns once the peer received the data")
            _expect(got == bytes(data), f"send_all({type(data).__name__}) delivers the same bytes")


async def _check_empty_send_is_not_eof(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        await _within(s.send_all(b""), "send_all(b'') returns")
        sender = _spawn(s.send_all(b"x"))
        got = await _within(r.receive_some(), "receive after send_all(b'')")
        _expect(got == b"x", "send_all(b'') is not EOF: the next receive gets the next data")
        await _within(sender, "send_all returns")


async def _check_arguments(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        for bad in (0, -1):
            await _raises(ValueError, r.receive_some(bad), f"receive_some({bad}) raises ValueError")
        await _raises(TypeError, r.receive_some(1.5), "receive_some(1.5) raises TypeError")
        await _raises(TypeError, s.send_all("text"), "send_all(str) raises TypeError")
        # The stream still works afterwards.
        sender = _spawn(s.send_all(b"ok"))
        got = await _receive_exactly(r, 2, "the stream works after bad arguments")
        _expect(got == b"ok", "the stream works after bad arguments")
        await _within(sender, "send_all returns")


async def _check_checkpoints(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        for name, call in (
            ("send_all(b'')", lambda: s.send_all(b"")),
            ("wait_send_all_might_not_block()", s.wait_send_all_might_not_block),
        ):
            _expect(await _is_checkpoint(call), f"{name} is a checkpoint (it can be cancelled)")
        sender = _spawn(s.send_all(b"abc"))
        await _receive_exactly(r, 1, "receive the first byte")
        _expect(await _is_checkpoint(r.receive_some),
                "receive_some() is a checkpoint even with data buffered")
        rest = await _receive_exactly(r, 2, "receive after a cancelled receive_some")
        _expect(rest == b"bc", "a cancelled receive_some loses no data")
        await _within(sender, "send_all returns once received")
        _expect(await _within(_is_checkpoint(lambda: s.send_all(b"x")),
                              "a cancelled send_all returns"),
                "send_all() is a checkpoint (it can be cancelled)")
        _expect(await _is_checkpoint(r.aclose), "aclose() is a checkpoint")
        await _raises(ClosedResourceError, r.receive_some(),
                      "a cancelled aclose() still closes: then receive_some raises ClosedResourceError")


async def _check_busy(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        receivers = [_spawn(r.receive_some()) for _ in range(2)]
        await _yield_many()
        busy = [t for t in receivers if t.done() and isinstance(t.exception(), BusyResourceError)]
        _expect(len(busy) == 1, "two concurrent receive_some: one raises BusyResourceError")
        sender = _spawn(s.send_all(b"x"))
        waiting = [t for t in receivers if t not in busy][0]
        _expect(await _within(waiting, "the other receive gets the data") == b"x",
                "the receive that was not busy gets the data")
        await _within(sender, "send_all returns")
        senders = [_spawn(s.send_all(b"1")) for _ in range(2)]
        await _yield_many()
        busy = [t for t in senders if t.done() and isinstance(t.exception(), BusyResourceError)]
        _expect(len(busy) == 1, "two concurrent send_all: one raises BusyResourceError")
        await _receive_exactly(r, 1, "the send_all that was not busy delivers")
        await _within(asyncio.gather(*senders, return_exceptions=True), "send_all returns")


async def _check_use_after_close(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        await _within(s.aclose(), "aclose returns")
        await _within(s.aclose(), "a second aclose returns (aclose is idempotent)")
        await _raises(ClosedResourceError, s.send_all(b"x"),
                      "send_all after aclose raises ClosedResourceError")
        await _raises(ClosedResourceError, s.send_all(b""),
                      "send_all(b'') after aclose raises ClosedResourceError")
        await _raises(ClosedResourceError, s.wait_send_all_might_not_block(),
                      "wait_send_all_might_not_block after aclose raises ClosedResourceError")
        await _within(r.aclose(), "aclose returns")
        await _raises(ClosedResourceError, r.receive_some(),
                      "receive_some after aclose raises ClosedResourceError")


async def _check_peer_closed_breaks_sending(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        await _within(r.aclose(), "aclose returns")

        async def send_until_broken() -> None:
            for _ in range(10000):
                await s.send_all(b"x" * 1024)

        await _raises(BrokenResourceError, send_until_broken(),
                      "after the peer closed, send_all eventually raises BrokenResourceError")
        await _raises(BrokenResourceError, s.send_all(b"x"),
                      "once broken, send_all keeps raising BrokenResourceError")


async def _check_graceful_close_delivers(maker: Maker) -> None:
    data = random.Random(1).randbytes(200_000) if hasattr(random.Random, "randbytes") else bytes(
        random.Random(1).getrandbits(8) for _ in range(200_000))
    async with _Pair(maker) as (s, r):

        async def send_and_close() -> None:
            await s.send_all(data)
            await s.aclose()

        sender = _spawn(send_and_close())
        await _yield_many()  # the receiver starts late
        got = bytearray()
        while True:
            chunk = await _within(r.receive_some(), "receiving what was sent before aclose")
            if not chunk:
                break
            got += chunk
        _expect(bytes(got) == data, "aclose delivers all data send_all accepted, then EOF")
        await _within(sender, "send_all and aclose return")
        _expect(await _within(r.receive_some(), "receive after EOF") == b"",
                "after EOF, receive_some keeps returning b''")


async def _check_forceful_close(maker: Maker) -> None:
    data = random.Random(6).randbytes(64 * 1024)
    async with _Pair(maker) as (s, r):
        sender = _spawn(s.send_all(data))
        await _yield_many()
        # Accepted (the usual case) or still blocked (lockstep, clogged).
        accepted = sender.done() and not sender.cancelled() and sender.exception() is None
        await _within(aclose_forcefully(s), "aclose_forcefully returns at once")
        await asyncio.wait([sender])
        if not sender.cancelled() and sender.exception() is not None:
            _expect(isinstance(sender.exception(), ClosedResourceError),
                    "a send_all blocked during a forceful close raises ClosedResourceError")
        got = bytearray()

        async def until_end() -> None:
            while True:
                try:
                    chunk = await r.receive_some()
                except BrokenResourceError:
                    return
                if not chunk:
                    return
                got.extend(chunk)

        await _within(until_end(), "after the peer's forceful close, receiving ends (b'' or BrokenResourceError)")
        _expect(data.startswith(bytes(got)), "after a forceful close, the peer receives what was sent, in order")
        if accepted:
            _expect(len(got) == len(data),
                    "aclose_forcefully does not destroy data send_all accepted "
                    f"(the peer got {len(got)} of {len(data)} bytes)")


async def _check_close_wakes_receive(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        receiver = _spawn(r.receive_some())
        await _yield_many()
        _expect(not receiver.done(), "receive_some blocks while there is no data")
        await _within(r.aclose(), "aclose returns")
        await _raises(ClosedResourceError, receiver,
                      "a receive blocked in another task wakes with ClosedResourceError on aclose")


async def _check_cancelled_receive_leaves_closable(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        receiver = _spawn(r.receive_some())
        await _yield_many()
        receiver.cancel()
        await asyncio.wait([receiver])
        _expect(receiver.cancelled(), "a blocked receive_some can be cancelled")
        sender = _spawn(s.send_all(b"after"))
        got = await _receive_exactly(r, 5, "receive after a cancelled receive")
        _expect(got == b"after", "a cancelled receive_some leaves the stream usable")
        await _within(sender, "send_all returns")
        await _within(r.aclose(), "aclose after a cancelled receive_some")


async def _check_random_chunks(maker: Maker) -> None:
    rng = random.Random(2)
    data = bytes(rng.getrandbits(8) for _ in range(1 << 20))
    async with _Pair(maker) as (s, r):
        await _random_transfer(s, r, data, rng, "1 MiB in random chunks with random max_bytes")


# -- clogged checks -----------------------------------------------------------

async def _check_clogged_send_blocks(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        sender = _spawn(s.send_all(b"x" * CLOGGED_SEND))
        await _yield_many()
        _expect(not sender.done(), "send_all blocks while the peer does not read")
        await _drain_until(r, sender, "send_all returns once the peer reads")
        sender.result()


async def _check_clogged_wait_blocks(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        waiter = _spawn(s.wait_send_all_might_not_block())
        await _yield_many()
        _expect(not waiter.done(), "wait_send_all_might_not_block blocks while the peer does not read")
        await _drain_until(r, waiter, "wait_send_all_might_not_block returns once the peer reads")
        waiter.result()


async def _check_clogged_conflicts(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        sender = _spawn(s.send_all(b"x" * CLOGGED_SEND))
        await _yield_many()
        await _raises(BusyResourceError, s.wait_send_all_might_not_block(),
                      "wait_send_all_might_not_block during a blocked send_all raises BusyResourceError")
        await _raises(BusyResourceError, s.send_all(b"y"),
                      "send_all during a blocked send_all raises BusyResourceError")
        await _drain_until(r, sender, "send_all returns once the peer reads")
    async with _Pair(maker) as (s, r):
        waiter = _spawn(s.wait_send_all_might_not_block())
        await _yield_many()
        await _raises(BusyResourceError, s.send_all(b"y"),
                      "send_all during a blocked wait_send_all_might_not_block raises BusyResourceError")
        await _drain_until(r, waiter, "wait_send_all_might_not_block returns once the peer reads")


async def _check_clogged_close_wakes_send(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        sender = _spawn(s.send_all(b"x" * CLOGGED_SEND))
        await _yield_many()
        await _within(s.aclose(), "aclose with a send_all blocked in another task returns")
        await _raises(ClosedResourceError, sender,
                      "a send_all blocked in another task wakes with ClosedResourceError on aclose")


async def _check_clogged_cancelled_send_closable(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        sender = _spawn(s.send_all(b"x" * CLOGGED_SEND))
        await _yield_many()
        sender.cancel()
        await asyncio.wait([sender])
        _expect(sender.cancelled(), "a blocked send_all can be cancelled")
        await _within(s.aclose(), "aclose after a cancelled send_all returns")


_ONE_WAY = [
    _check_transfer,
    _check_empty_send_is_not_eof,
    _check_arguments,
    _check_checkpoints,
    _check_busy,
    _check_use_after_close,
    _check_peer_closed_breaks_sending,
    _check_graceful_close_delivers,
    _check_forceful_close,
    _check_close_wakes_receive,
    _check_cancelled_receive_leaves_closable,
    _check_random_chunks,
]

_CLOGGED = [
    _check_clogged_send_blocks,
    _check_clogged_wait_blocks,
    _check_clogged_conflicts,
    _check_clogged_close_wakes_send,
    _check_clogged_cancelled_send_closable,
]


async def check_one_way_stream(maker: Maker, clogged_maker: Optional[Maker]) -> None:
    """Check a one-way stream: ``maker()`` returns ``(send_stream,
    receive_stream)``."""
    for check in _ONE_WAY:
        await check(maker)
    if clogged_maker is not None:
        for check in _CLOGGED:
            await check(clogged_maker)


# -- two-way and half-close ---------------------------------------------------

async def _check_both_ways_at_once(maker: Maker) -> None:
    rng = random.Random(3)
    one = bytes(rng.getrandbits(8) for _ in range(1 << 20))
    two = bytes(rng.getrandbits(8) for _ in range(1 << 20))
    async with _Pair(maker) as (a, b):
        await _within(asyncio.gather(
            _random_transfer(a, b, one, random.Random(4), "1 MiB from the first to the second end"),
            _random_transfer(b, a, two, random.Random(5), "1 MiB from the second to the first end"),
        ), "1 MiB each way at once")


async def _check_send_and_receive_together(maker: Maker) -> None:
    async with _Pair(maker) as (a, b):
        receiver = _spawn(a.receive_some())
        await _yield_many()
        sender = _spawn(a.send_all(b"out"))
        got = await _receive_exactly(b, 3, "sending while a receive waits on the same end")
        _expect(got == b"out", "send_all and receive_some on one end do not conflict")
        await _within(sender, "send_all returns")
        back = _spawn(b.send_all(b"in"))
        _expect(await _within(receiver, "the waiting receive gets data") in (b"in", b"i"),
                "the waiting receive gets the data")
        await _within(back, "send_all returns")


async def check_two_way_stream(maker: Maker, clogged_maker: Optional[Maker]) -> None:
    """Check a two-way stream: ``maker()`` returns two connected ends.  Runs
    the one-way checks in both directions, then both at once."""
    await check_one_way_stream(maker, clogged_maker)
    await check_one_way_stream(
        _flipped(maker), None if clogged_maker is None else _flipped(clogged_maker))
    await _check_both_ways_at_once(maker)
    await _check_send_and_receive_together(maker)


async def _check_send_eof(maker: Maker) -> None:
    async with _Pair(maker) as (a, b):
        _expect(isinstance(a, HalfCloseableStream) or hasattr(a, "send_eof"),
                "a half-closeable stream has send_eof")
        sender = _spawn(a.send_all(b"last words"))
        got = await _receive_exactly(b, 10, "data sent before send_eof")
        await _within(sender, "send_all returns")
        await _within(a.send_eof(), "send_eof returns")
        _expect(await _within(b.receive_some(), "receive after send_eof") == b"",
                "after send_eof the peer reads b''")
        _expect(got == b"last words", "data sent before send_eof arrives before EOF")
        await _within(a.send_eof(), "send_eof again (it is idempotent)")
        await _raises(ClosedResourceError, a.send_all(b"x"),
                      "send_all after send_eof raises ClosedResourceError")
        await _raises(ClosedResourceError, a.send_all(b""),
                      "send_all(b'') after send_eof raises ClosedResourceError")
        back = _spawn(b.send_all(b"reply"))
        got = await _receive_exactly(a, 5, "receiving after our send_eof")
        _expect(got == b"reply", "after send_eof, receiving still works")
        await _within(back, "send_all returns")
        await _within(b.send_eof(), "send_eof the other way")
        _expect(await _within(a.receive_some(), "receive after the peer's send_eof") == b"",
                "half-close works in the other direction too")
        await _within(a.aclose(), "aclose after send_eof")
        await _raises(ClosedResourceError, a.send_eof(),
                      "send_eof after aclose raises ClosedResourceError")


async def _check_clogged_send_eof_busy(maker: Maker) -> None:
    async with _Pair(maker) as (s, r):
        sender = _spawn(s.send_all(b"x" * CLOGGED_SEND))
        await _yield_many()
        await _raises(BusyResourceError, s.send_eof(),
                      "send_eof during a blocked send_all raises BusyResourceError")
        await _drain_until(r, sender, "send_all returns once the peer reads")


async def check_half_closeable_stream(maker: Maker, clogged_maker: Optional[Maker]) -> None:
    """Check a two-way stream with ``send_eof``: everything
    ``check_two_way_stream`` checks, and half-close both ways."""
    await check_two_way_stream(maker, clogged_maker)
    await _check_send_eof(maker)
    await _check_send_eof(_flipped(maker))
    if clogged_maker is not None:
        await _check_clogged_send_eof_busy(clogged_maker)
