"""The machinery under ``pystream.testing.fuzz``'s state machine: running
the event loop a step at a time, recording what each end's sends and
receives did against the model (``_fuzz_model``), reaping finished tasks
and judging their errors, the busy and checkpoint probes, cancelling after
n steps, and the teardown that winds both ends down and checks that all the
data arrived.  ``stream_state_machine`` subclasses ``StreamMachineBase``
and adds the rules."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Awaitable, Callable, Optional

from hypothesis import event
from hypothesis.stateful import RuleBasedStateMachine

from .._base._errors import BrokenResourceError, BusyResourceError, ClosedResourceError
from ..abc import aclose_forcefully
from ._check_kit import Maker, cancelled_at_once
from ._fuzz_model import MAYBE, PREFIX, SENT, End, consistent

__all__ = ["BUSY_PATIENCE", "PATIENCE", "StreamMachineBase", "guarded"]

PATIENCE = 30.0
BUSY_PATIENCE = 1.0


def guarded(method: Callable[..., None]) -> Callable[..., None]:
    """Mark the machine failed when a step fails, so that teardown only
    cleans up instead of checking a model that is off."""

    @functools.wraps(method)
    def step(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except BaseException:
            self.failed = True
            raise

    return step


class StreamMachineBase(RuleBasedStateMachine):
    """A pair's two ends, the loop they run on, and the model of each end.

    ``strict`` is the ``"whole"`` rule for a cancelled ``send_all``;
    ``close_may_cut``: what an end sent before it closed may be cut short
    (see ``stream_state_machine``).
    """

    def __init__(
        self,
        maker: Maker,
        loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]],
        *,
        strict: bool,
        close_may_cut: bool,
    ) -> None:
        super().__init__()
        self.strict = strict
        self.close_may_cut = close_may_cut
        self.loop = (loop_factory or asyncio.new_event_loop)()
        a, b = self._run(maker())
        self.ends = [End(a, 0), End(b, 1)]
        self.failed = False

    # -- helpers ----------------------------------------------------------
    def _run(self, awaitable: Awaitable[Any], patience: float = PATIENCE) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(awaitable, patience))

    def _peer(self, i: int) -> End:
        return self.ends[1 - i]

    def _settle(self, task: asyncio.Task[Any]) -> None:
        self._run(asyncio.wait([task]))

    def _steps(self, n: int) -> None:
        async def spin() -> None:
            for _ in range(n):
                await asyncio.sleep(0)

        self._run(spin())

    def _may_break(self, i: int) -> bool:
        """Whether a BrokenResourceError is allowed on end i now."""
        return self._peer(i).closed or self.ends[i].send_broke

    def _check_error(self, i: int, call: str, exc: BaseException) -> None:
        end = self.ends[i]
        if isinstance(exc, ClosedResourceError):
            assert end.closed or (
                end.eof_sent and call in ("send_all", "wait_send_all_might_not_block")
            ), f"end {i}: ClosedResourceError from {call}, but it is open"
        elif isinstance(exc, BrokenResourceError):
            assert self._may_break(i), (
                f"end {i}: BrokenResourceError from {call}, but the peer is open"
            )
        else:
            raise AssertionError(f"end {i}: {call} raised {exc!r}") from exc

    def _is_busy(
        self,
        i: int,
        call: Callable[[], Awaitable[Any]],
        in_flight: asyncio.Task[Any],
        what: str,
    ) -> bool:
        """Whether a second call on a direction in use raises
        BusyResourceError (promptly: it must not wait its turn).

        The probe starts only if the call in flight is still running at
        that moment (it may finish in the same loop iteration); if not,
        or if the stream broke or closed meanwhile, the probe says
        nothing and counts as busy.
        """

        async def probe() -> bool:
            if in_flight.done():
                return True
            try:
                await call()
            except BusyResourceError:
                return True
            except (ClosedResourceError, BrokenResourceError) as exc:
                self._check_error(i, what, exc)
                return True
            return False

        try:
            return bool(self._run(probe(), BUSY_PATIENCE))
        except asyncio.TimeoutError:
            return False

    def _returned_despite_cancel(self, i: int, call: str, coro: Awaitable[Any]) -> bool:
        """Run coro (end i's call) in a task cancelled before it starts its
        first await; True if it returned anyway (it never yielded to the
        loop).  An error it raises must fit end i's state."""
        outcome: tuple[bool, asyncio.Future[Any]] = self._run(cancelled_at_once(lambda: coro))
        returned, task = outcome
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            self._check_error(i, call, exc)
        return returned

    # -- the model --------------------------------------------------------
    def _check_received(self, i: int) -> None:
        end, peer = self.ends[i], self._peer(i)
        assert consistent(peer.segments, bytes(end.received), complete=False), (
            f"end {i} received bytes that are not what end {1 - i} sent "
            f"(lost, duplicated or reordered; {len(end.received)} bytes received)"
        )

    def _took(self, i: int, data: bytes, eof: bool) -> None:
        """End i's receive returned data (and reached EOF if eof)."""
        end, peer = self.ends[i], self._peer(i)
        if data:
            assert not end.got_eof, f"end {i} received data after EOF"
            end.received += data
            self._check_received(i)
        if eof and not end.got_eof:
            assert peer.eof_sent or peer.closed, (
                f"end {i}: EOF (b'') but end {1 - i} sent no EOF and is open"
            )
            end.got_eof = True
            assert consistent(peer.segments, bytes(end.received), complete=True), (
                f"end {i}: EOF before all the data end {1 - i}'s send_all accepted "
                f"({len(end.received)} bytes received)"
            )

    def _reap(self) -> None:
        # Sends first: a cancelled send that broke its stream (TLS) is
        # what allows the BrokenResourceError a receive got from it.
        for i, end in enumerate(self.ends):
            task = end.send_task
            if task is not None and task.done():
                end.send_task = None
                self._sent(i, task)
        for i, end in enumerate(self.ends):
            task = end.receive_task
            if task is not None and task.done():
                end.receive_task = None
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    assert exc is not None
                    if isinstance(exc, AssertionError):
                        raise exc
                    self._check_error(i, "a receive", exc)

    def _sent(self, i: int, task: asyncio.Task[Any]) -> None:
        end = self.ends[i]
        call = task.get_name()
        if call == "send_all" and end.segments and end.segments[-1][0] == PREFIX:
            # Not returned: cancelled, or failed.
            data = end.segments[-1][1]
            whole = task.cancelled() and self.strict and not end.closed
            end.segments[-1] = (MAYBE if whole else PREFIX, data)
            if not whole:
                end.send_done = True
        if task.cancelled():
            if call == "send_eof":
                end.send_done = True  # (it may have sent EOF)
            if call == "send_all" and not self.strict:
                end.send_broke = True
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, NotImplementedError) and call == "send_eof":
            end.eof_sent = False  # no half-close on this stream (TLS 1.2)
            end.no_half_close = True
            return
        end.send_done = True
        self._check_error(i, call, exc)

    def _closing(self, end: End) -> None:
        """end is closed: sends cancelled under the "whole" rule whose
        data was still queued may be cut short, and with close_may_cut
        anything it sent."""
        end.closed = True
        for k in range(len(end.segments) - 1, -1, -1):
            kind, data = end.segments[k]
            if kind == SENT and not self.close_may_cut:
                break
            end.segments[k] = (PREFIX, data)

    def _can_send(self, i: int) -> bool:
        end = self.ends[i]
        return not (end.closed or end.eof_sent or end.send_done or end.send_task is not None)

    # -- cancellations ----------------------------------------------------
    def _cancel(self, task: Optional[asyncio.Task[Any]]) -> None:
        if task is not None:
            task.cancel()
            self._settle(task)
            self._reap()

    def _cancelled_after(self, task: asyncio.Task[Any], steps: int) -> None:
        """Cancel task, which has not run yet, once it has run exactly
        steps steps (loop iterations): over 0, 1, 2, ... steps the
        cancellation lands before the task starts, at its first await, at
        its second, and so on.  A callback chain, not a task, counts the
        iterations: it runs right after the task's own step in each one,
        whatever wrappers ``_run`` adds."""
        if steps == 0:
            event("cancelled before its first step")
            task.cancel()
        else:

            def tick(left: int) -> None:
                if task.done():
                    return
                if left:
                    self.loop.call_soon(tick, left - 1)
                else:
                    event("cancelled after a step" if steps == 1 else "cancelled after steps")
                    task.cancel()

            self.loop.call_soon(tick, steps - 1)
        self._settle(task)
        self._reap()

    # -- the end ----------------------------------------------------------
    def teardown(self) -> None:
        try:
            if not self.failed:  # else the model is off: just clean up
                self._finish()
        finally:
            self._clean_up()

    def _clean_up(self) -> None:
        """Cancel what still runs, close both ends, close the loop, and
        retrieve every outcome (a failed run leaves tasks behind)."""
        try:
            for end in self.ends:
                for task in (end.send_task, end.receive_task):
                    if task is None:
                        continue
                    if not task.done():
                        task.cancel()
                        self.loop.run_until_complete(asyncio.wait([task]))
                    if not task.cancelled():
                        task.exception()
                self.loop.run_until_complete(aclose_forcefully(end.stream))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    async def _drain(self, i: int) -> None:
        """Receive on end i until EOF or an error (recorded as usual)."""
        end = self.ends[i]
        while not end.got_eof and not end.closed:
            try:
                data = await end.stream.receive_some(1 << 20)
            except (ClosedResourceError, BrokenResourceError) as exc:
                self._check_error(i, "receive_some", exc)
                end.receive_broke = True
                # It takes no more: close it, so that a send of the
                # peer's in flight ends (broken) rather than waiting
                # forever for a reader.
                if not end.closed:
                    self._closing(end)
                    await aclose_forcefully(end.stream)
                return
            self._took(i, data, not data)

    async def _wind_down(self) -> None:
        # 1. Receives in flight are cancelled (losing nothing: checked),
        #    sends in flight finish while both ends drain (each end's
        #    send may wait for the other end to read).
        for end in self.ends:
            if end.receive_task is not None:
                end.receive_task.cancel()
                await asyncio.wait([end.receive_task])
        self._reap()
        sends = [end.send_task for end in self.ends if end.send_task is not None]
        if sends:
            drains = [asyncio.ensure_future(self._drain(i)) for i in range(2)]
            await asyncio.wait(sends)
            for drain in drains:
                drain.cancel()
            await asyncio.wait(drains)
            for drain in drains:
                if not drain.cancelled() and drain.exception() is not None:
                    raise drain.exception()  # type: ignore[misc]
            self._reap()

        # 2. Both ends half-close (or close) while the other drains:
        #    everything accepted arrives, then EOF.
        async def finish_sending(i: int) -> None:
            end = self.ends[i]
            if end.closed:
                return
            if not end.eof_sent and not end.send_done and not end.no_half_close:
                end.eof_sent = True
                try:
                    await end.stream.send_eof()
                    return
                except NotImplementedError:
                    end.eof_sent = False
                    end.no_half_close = True
                except (ClosedResourceError, BrokenResourceError) as exc:
                    self._check_error(i, "send_eof", exc)
                    end.send_done = True
            if not end.eof_sent or end.send_done:
                # No half-close: close gracefully, after receiving all
                # if the peer will end its sending.
                peer = self._peer(i)
                peer_ends = peer.closed or (not peer.send_done and not peer.no_half_close)
                if peer_ends:
                    await asyncio.wait([drains[i]])
                self._closing(end)
                await end.stream.aclose()

        drains = [asyncio.ensure_future(self._drain(i)) for i in range(2)]
        await asyncio.gather(finish_sending(0), finish_sending(1), *drains)
        for i, end in enumerate(self.ends):
            peer = self._peer(i)
            if not end.closed and not peer.send_done and not end.receive_broke:
                assert end.got_eof, f"end {i} saw no EOF after end {1 - i} ended sending"

    def _finish(self) -> None:
        self._run(self._wind_down())
        for end in self.ends:
            self._closing(end)
            self._run(aclose_forcefully(end.stream))
        left = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        assert not left, f"tasks left running: {left}"
