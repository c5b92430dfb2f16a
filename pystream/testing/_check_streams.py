"""The stream conformance suite: does a Stream keep pystream's contract?
This module: one direction (``check_one_way_stream``); two-way streams and
half-close are in ``_check_two_way``, steps both take in ``_check_steps``.

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
import random
from typing import Optional

from .._base._errors import BrokenResourceError, BusyResourceError, ClosedResourceError
from ..abc import aclose_forcefully
from ._check_kit import (
    Maker,
    Pair,
    drain_until,
    expect,
    is_checkpoint,
    raises,
    random_transfer,
    receive_exactly,
    spawn,
    within,
    yield_many,
)
from ._check_schedule import check_schedule_points
from ._check_steps import (
    cancel_blocked,
    clog,
    random_bytes,
    send_received,
    sends_raise_closed,
    started,
    unclog,
)

__all__ = ["check_one_way_stream"]


async def _check_transfer(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        for data in (b"bytes", bytearray(b"bytearray"), memoryview(b"xmemoryviewx")[1:-1]):
            kind = type(data).__name__
            await send_received(
                s,
                r,
                data,
                f"send_all({kind}) delivers it",
                f"send_all({kind}) delivers the same bytes",
                "send_all returns once the peer received the data",
            )


async def _check_empty_send_is_not_eof(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        await within(s.send_all(b""), "send_all(b'') returns")
        sender = spawn(s.send_all(b"x"))
        got = await within(r.receive_some(), "receive after send_all(b'')")
        expect(got == b"x", "send_all(b'') is not EOF: the next receive gets the next data")
        await within(sender, "send_all returns")


async def _check_arguments(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        for bad in (0, -1):
            await raises(ValueError, r.receive_some(bad), f"receive_some({bad}) raises ValueError")
        await raises(TypeError, r.receive_some(1.5), "receive_some(1.5) raises TypeError")
        await raises(TypeError, s.send_all("text"), "send_all(str) raises TypeError")
        works = "the stream works after bad arguments"
        await send_received(s, r, b"ok", works, works)


async def _check_checkpoints(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        for name, call in (
            ("send_all(b'')", lambda: s.send_all(b"")),
            ("wait_send_all_might_not_block()", s.wait_send_all_might_not_block),
        ):
            expect(await is_checkpoint(call), f"{name} is a checkpoint (it can be cancelled)")
        sender = spawn(s.send_all(b"abc"))
        await receive_exactly(r, 1, "receive the first byte")
        expect(
            await is_checkpoint(r.receive_some),
            "receive_some() is a checkpoint even with data buffered",
        )
        rest = await receive_exactly(r, 2, "receive after a cancelled receive_some")
        expect(rest == b"bc", "a cancelled receive_some loses no data")
        await within(sender, "send_all returns once received")
        expect(
            await within(is_checkpoint(lambda: s.send_all(b"x")), "a cancelled send_all returns"),
            "send_all() is a checkpoint (it can be cancelled)",
        )
        yielded = await is_checkpoint(r.aclose)
        # Whether it closed comes first: an aclose that closes nothing also
        # returns without yielding.  A closed stream raises at once: a
        # short wait is enough to know.
        try:
            await within(r.receive_some(), "receive_some after aclose", patience=1.0)
        except ClosedResourceError:
            pass
        except AssertionError:
            raise AssertionError(
                "aclose(), cancelled at its start, did not close the stream: "
                "receive_some afterwards waits instead of raising ClosedResourceError"
            ) from None
        except BaseException as exc:
            raise AssertionError(
                f"aclose(), cancelled at its start, did not close the stream: "
                f"receive_some afterwards raised {exc!r}, not ClosedResourceError"
            ) from exc
        else:
            raise AssertionError(
                "aclose(), cancelled at its start, did not close the stream: "
                "receive_some afterwards returned"
            )
        expect(yielded, "aclose() is a checkpoint (a pending cancellation is raised there)")


async def _check_busy(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        receivers = [spawn(r.receive_some()) for _ in range(2)]
        await yield_many()
        busy = [t for t in receivers if t.done() and isinstance(t.exception(), BusyResourceError)]
        expect(len(busy) == 1, "two concurrent receive_some: one raises BusyResourceError")
        sender = spawn(s.send_all(b"x"))
        waiting = [t for t in receivers if t not in busy][0]
        expect(
            await within(waiting, "the other receive gets the data") == b"x",
            "the receive that was not busy gets the data",
        )
        await within(sender, "send_all returns")
        senders = [spawn(s.send_all(b"1")) for _ in range(2)]
        await yield_many()
        busy = [t for t in senders if t.done() and isinstance(t.exception(), BusyResourceError)]
        expect(len(busy) == 1, "two concurrent send_all: one raises BusyResourceError")
        await receive_exactly(r, 1, "the send_all that was not busy delivers")
        await within(asyncio.gather(*senders, return_exceptions=True), "send_all returns")


async def _check_use_after_close(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        await within(s.aclose(), "aclose returns")
        await within(s.aclose(), "a second aclose returns (aclose is idempotent)")
        await sends_raise_closed(s, "after aclose")
        await raises(
            ClosedResourceError,
            s.wait_send_all_might_not_block(),
            "wait_send_all_might_not_block after aclose raises ClosedResourceError",
        )
        await within(r.aclose(), "aclose returns")
        await raises(
            ClosedResourceError,
            r.receive_some(),
            "receive_some after aclose raises ClosedResourceError",
        )


async def _check_peer_closed_breaks_sending(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        await within(r.aclose(), "aclose returns")

        async def send_until_broken() -> None:
            for _ in range(10000):
                await s.send_all(b"x" * 1024)

        await raises(
            BrokenResourceError,
            send_until_broken(),
            "after the peer closed, send_all eventually raises BrokenResourceError",
        )
        await raises(
            BrokenResourceError,
            s.send_all(b"x"),
            "once broken, send_all keeps raising BrokenResourceError",
        )


async def _check_graceful_close_delivers(maker: Maker) -> None:
    data = random.Random(1).randbytes(200_000)  # (Python 3.9+, as _check_forceful_close)
    async with Pair(maker) as (s, r):

        async def send_and_close() -> None:
            await s.send_all(data)
            await s.aclose()

        sender = spawn(send_and_close())
        await yield_many()  # the receiver starts late
        got = bytearray()
        while True:
            chunk = await within(r.receive_some(), "receiving what was sent before aclose")
            if not chunk:
                break
            got += chunk
        expect(bytes(got) == data, "aclose delivers all data send_all accepted, then EOF")
        await within(sender, "send_all and aclose return")
        expect(
            await within(r.receive_some(), "receive after EOF") == b"",
            "after EOF, receive_some keeps returning b''",
        )


async def _check_forceful_close(maker: Maker) -> None:
    data = random.Random(6).randbytes(64 * 1024)
    async with Pair(maker) as (s, r):
        sender = spawn(s.send_all(data))
        await yield_many()
        # Accepted (the usual case) or still blocked (lockstep, clogged).
        accepted = sender.done() and not sender.cancelled() and sender.exception() is None
        await within(aclose_forcefully(s), "aclose_forcefully returns at once")
        await asyncio.wait([sender])
        if not sender.cancelled() and sender.exception() is not None:
            expect(
                isinstance(sender.exception(), ClosedResourceError),
                "a send_all blocked during a forceful close raises ClosedResourceError",
            )
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

        await within(
            until_end(),
            "after the peer's forceful close, receiving ends (b'' or BrokenResourceError)",
        )
        expect(
            data.startswith(bytes(got)),
            "after a forceful close, the peer receives what was sent, in order",
        )
        if accepted:
            expect(
                len(got) == len(data),
                "aclose_forcefully does not destroy data send_all accepted "
                f"(the peer got {len(got)} of {len(data)} bytes)",
            )


async def _check_close_wakes_receive(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        receiver = await started(r.receive_some())
        expect(not receiver.done(), "receive_some blocks while there is no data")
        await within(r.aclose(), "aclose returns")
        await raises(
            ClosedResourceError,
            receiver,
            "a receive blocked in another task wakes with ClosedResourceError on aclose",
        )


async def _check_cancelled_receive_leaves_closable(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        receiver = await started(r.receive_some())
        await cancel_blocked(receiver, "a blocked receive_some can be cancelled")
        await send_received(
            s,
            r,
            b"after",
            "receive after a cancelled receive",
            "a cancelled receive_some leaves the stream usable",
        )
        await within(r.aclose(), "aclose after a cancelled receive_some")


async def _check_random_chunks(maker: Maker) -> None:
    rng = random.Random(2)
    data = random_bytes(rng, 1 << 20)
    async with Pair(maker) as (s, r):
        await random_transfer(s, r, data, rng, "1 MiB in random chunks with random max_bytes")


# -- clogged checks -----------------------------------------------------------


async def _check_clogged_send_blocks(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        sender = await clog(s)
        expect(not sender.done(), "send_all blocks while the peer does not read")
        await unclog(r, sender)
        sender.result()


async def _check_clogged_wait_blocks(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        waiter = await started(s.wait_send_all_might_not_block())
        expect(
            not waiter.done(), "wait_send_all_might_not_block blocks while the peer does not read"
        )
        await drain_until(r, waiter, "wait_send_all_might_not_block returns once the peer reads")
        waiter.result()


async def _check_clogged_conflicts(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        sender = await clog(s)
        await raises(
            BusyResourceError,
            s.wait_send_all_might_not_block(),
            "wait_send_all_might_not_block during a blocked send_all raises BusyResourceError",
        )
        await raises(
            BusyResourceError,
            s.send_all(b"y"),
            "send_all during a blocked send_all raises BusyResourceError",
        )
        await unclog(r, sender)
    async with Pair(maker) as (s, r):
        waiter = await started(s.wait_send_all_might_not_block())
        await raises(
            BusyResourceError,
            s.send_all(b"y"),
            "send_all during a blocked wait_send_all_might_not_block raises BusyResourceError",
        )
        await drain_until(r, waiter, "wait_send_all_might_not_block returns once the peer reads")


async def _check_clogged_close_wakes_send(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        sender = await clog(s)
        await within(s.aclose(), "aclose with a send_all blocked in another task returns")
        await raises(
            ClosedResourceError,
            sender,
            "a send_all blocked in another task wakes with ClosedResourceError on aclose",
        )


async def _check_clogged_cancelled_send_closable(maker: Maker) -> None:
    async with Pair(maker) as (s, r):
        sender = await clog(s)
        await cancel_blocked(sender, "a blocked send_all can be cancelled")
        await within(s.aclose(), "aclose after a cancelled send_all returns")


_ONE_WAY = [
    _check_transfer,
    _check_empty_send_is_not_eof,
    _check_arguments,
    _check_checkpoints,
    check_schedule_points,
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
    """Check that a one-way stream keeps pystream's contract.

    ``maker`` is an async callable returning a connected ``(send_stream,
    receive_stream)``, a fresh pair at each call; ``clogged_maker`` the
    same for a pair whose ``send_all`` blocks until the receiver reads, or
    None to skip the checks that need one.  Each check exercises one
    behaviour and closes both ends (forcefully) and the tasks it started,
    whatever happened.

    Raises:
        AssertionError: a behaviour is not as the contract says; the
            message names it.  An exception the stream raises where the
            contract expects a result goes through as it is.
    """
    for check in _ONE_WAY:
        await check(maker)
    if clogged_maker is not None:
        for check in _CLOGGED:
            await check(clogged_maker)
