"""Hypothesis fuzzing of stream semantics.

``stream_state_machine(maker)`` builds a rule-based state machine that drives
a stream pair through sends (small ones and several-MiB ones that block a
socket, a pipe or TLS), receives of every kind (``receive_some``,
``receive_into``, ``readexactly``, ``readuntil``, ``readline``, ``read``, many
receives in one task), ``wait_send_all_might_not_block``, ``send_eof``,
``aclose``, ``aclose_forcefully`` and cancellations, interleaved in any order
on both ends, with operations left in flight across steps so that
cancellations land at every await point, also after a receive has taken
data.  After every step it checks the model:

- every payload is numbered (each byte says where it comes from), so what
  an end received is checked to be exactly what the other end sent: a byte
  lost, duplicated or reordered shows;
- a cancelled receive loses nothing: what it did not return is received
  later;
- a cancelled ``send_all`` follows the stream's declared rule:
  ``cancelled_send="whole"`` (sockets, memory, stapled, asyncio streams):
  it sent all of its data or none, and the stream stays usable;
  ``"prefix"`` (TLS): any prefix went, and the stream may break, so
  nothing more is sent on that end;
- ``b""`` (EOF) only after the peer sent EOF or closed, and then exactly
  everything the peer's completed sends accepted has arrived (a forceful
  close destroys nothing that was accepted either);
- each failure has the right class for the state it happened in
  (``ClosedResourceError`` only after a local close, ``BrokenResourceError``
  only after the peer closed or, under the ``"prefix"`` rule, a local send
  was cancelled, ``BusyResourceError`` for a second concurrent call on one
  direction: another receive, or ``send_all``, ``send_eof`` or
  ``wait_send_all_might_not_block`` during a send);
- at the end, both ends half-close (or close) while the other drains: all
  the data arrives, then EOF, and nothing is left running.

Use it on your own stream pair::

    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test
    from pystream.testing.fuzz import stream_state_machine

    async def maker():
        return my_stream_pair()

    def test_my_streams():
        run_state_machine_as_test(
            stream_state_machine(maker), settings=settings(deadline=None))

A failing run prints the steps that reproduce it, and hypothesis replays
the shrunk example first on the next run.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Awaitable, Callable, Optional

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from .._errors import BrokenResourceError, BusyResourceError, ClosedResourceError
from .._util import aclose_forcefully
from ._fuzz_model import (
    LARGE_SEND,
    MAYBE,
    PREFIX,
    SENT,
    End,
    chunkings,
    consistent,
    payloads,
    receive_ops,
    schedules,
)

__all__ = ["stream_state_machine", "chunkings", "schedules", "payloads"]

Maker = Callable[[], Awaitable[tuple[Any, Any]]]
PATIENCE = 30.0
BUSY_PATIENCE = 1.0


def _guarded(method: Callable[..., None]) -> Callable[..., None]:
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


def _returned_despite_cancel(machine: Any, i: int, call: str, coro: Awaitable[Any]) -> bool:
    """Run coro (end i's call) in a task cancelled before it starts its
    first await; True if it returned anyway (it never yielded to the
    loop).  An error it raises must fit end i's state."""
    returned = False

    async def body() -> None:
        nonlocal returned
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await coro
        returned = True

    task = machine.loop.create_task(body())
    machine._settle(task)
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        assert exc is not None
        machine._check_error(i, call, exc)
    return returned


def stream_state_machine(
    maker: Maker,
    *,
    loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]] = None,
    max_in_flight: Optional[int] = None,
    cancelled_send: str = "whole",
    max_send: int = LARGE_SEND,
    close_may_cut: bool = False,
) -> type:
    """A ``RuleBasedStateMachine`` class fuzzing the pairs ``maker`` makes.

    ``cancelled_send`` is the stream's rule for a cancelled ``send_all``:
    ``"whole"`` (all of its data or none went, and the stream stays usable)
    or ``"prefix"`` (any prefix went, and the stream may be broken).
    ``close_may_cut`` (TCP): what an end sent before it closed may be cut
    short, because the other end sending to the closed socket makes the
    kernel answer with a reset that drops what it had not sent yet (RFC 1122
    4.2.2.13).  ``max_send`` bounds one send (default 4 MiB); ``max_in_flight``, if
    given, bounds the bytes sent but not yet received per direction (for a
    transport that cannot block a send).
    """
    if cancelled_send not in ("whole", "prefix"):
        raise ValueError('cancelled_send must be "whole" or "prefix"')
    if not 1 <= max_send <= LARGE_SEND:
        raise ValueError(f"max_send must be between 1 and {LARGE_SEND}")
    strict = cancelled_send == "whole"

    class StreamStateMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = (loop_factory or asyncio.new_event_loop)()
            a, b = self._run(maker())
            self.ends = [End(a, 0), End(b, 1)]
            self.failed = False

        # -- helpers ------------------------------------------------------
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

        # -- the model ----------------------------------------------------
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

        async def _receive(self, i: int, op: str, arg: Any) -> None:
            """One receive operation of end i, recorded as it returns."""
            stream = self.ends[i].stream
            if (
                op != "some"
                and op != "many"
                and not hasattr(
                    stream,
                    {
                        "into": "receive_into",
                        "exactly": "readexactly",
                        "until": "readuntil",
                        "line": "readline",
                        "read": "read",
                    }[op],
                )
            ):
                op, arg = "some", 65536
            if op == "some":
                data = await stream.receive_some(arg)
                assert len(data) <= arg, f"end {i}: receive_some({arg}) returned {len(data)} bytes"
                self._took(i, data, not data)
            elif op == "many":
                for _ in range(arg):
                    data = await stream.receive_some(1 << 20)
                    self._took(i, data, not data)
                    if not data:
                        return
            elif op == "into":
                buffer = bytearray(arg)
                n = await stream.receive_into(buffer)
                assert 0 <= n <= arg, f"end {i}: receive_into({arg} bytes) returned {n}"
                self._took(i, bytes(buffer[:n]), n == 0)
            elif op == "exactly":
                try:
                    data = await stream.readexactly(arg)
                except asyncio.IncompleteReadError as exc:
                    assert len(exc.partial) < arg, (
                        f"end {i}: IncompleteReadError with all {arg} bytes"
                    )
                    self._took(i, exc.partial, True)
                    return
                assert len(data) == arg, f"end {i}: readexactly({arg}) returned {len(data)} bytes"
                self._took(i, data, False)
            elif op in ("until", "line"):
                separator, limit = arg if op == "until" else (b"\n", 65536)
                try:
                    if op == "until":
                        data = await stream.readuntil(separator, limit=limit)
                    else:
                        data = await stream.readline()
                except asyncio.LimitOverrunError:
                    return  # the data stays buffered (the next receives check it)
                except asyncio.IncompleteReadError as exc:
                    assert not exc.partial.endswith(separator) or op == "line", (
                        f"end {i}: IncompleteReadError with the separator in it"
                    )
                    self._took(i, exc.partial, True)
                    return
                if data.endswith(separator):
                    assert len(data) - len(separator) <= limit, (
                        f"end {i}: readuntil returned more than its limit"
                    )
                    self._took(i, data, False)
                else:
                    assert op == "line", f"end {i}: readuntil returned no separator"
                    self._took(i, data, True)  # readline at EOF
            elif op == "read":
                data = await stream.read(arg)
                if arg > 0:
                    assert len(data) <= arg, f"end {i}: read({arg}) returned {len(data)} bytes"
                    self._took(i, data, not data)
                elif arg < 0:
                    self._took(i, data, True)
                else:
                    assert data == b"", f"end {i}: read(0) returned data"

        async def _send(self, i: int, data: Any) -> None:
            end = self.ends[i]
            await end.stream.send_all(data)
            end.segments[-1] = (SENT, end.segments[-1][1])

        def _reap(self) -> None:
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
                task = end.send_task
                if task is not None and task.done():
                    end.send_task = None
                    self._sent(i, task)

        def _sent(self, i: int, task: asyncio.Task[Any]) -> None:
            end = self.ends[i]
            call = task.get_name()
            if call == "send_all" and end.segments and end.segments[-1][0] == PREFIX:
                # Not returned: cancelled, or failed.
                data = end.segments[-1][1]
                whole = task.cancelled() and strict and not end.closed
                end.segments[-1] = (MAYBE if whole else PREFIX, data)
                if not whole:
                    end.send_done = True
            if task.cancelled():
                if call == "send_eof":
                    end.send_done = True  # (it may have sent EOF)
                if call == "send_all" and not strict:
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
                if kind == SENT and not close_may_cut:
                    break
                end.segments[k] = (PREFIX, data)

        def _can_send(self, i: int) -> bool:
            end = self.ends[i]
            return not (end.closed or end.eof_sent or end.send_done or end.send_task is not None)

        # -- rules --------------------------------------------------------
        @rule(
            i=st.integers(0, 1),
            size=payloads(),
            kind=st.sampled_from(["bytes", "bytearray", "memoryview"]),
        )
        @_guarded
        def start_send(self, i: int, size: int, kind: str) -> None:
            end, peer = self.ends[i], self._peer(i)
            size = min(size, max_send)
            if not self._can_send(i):
                return
            if max_in_flight is not None:
                in_flight = sum(len(d) for _, d in end.segments) - len(peer.received)
                if in_flight + size > max_in_flight:
                    return
            data = end.payload(size)
            end.segments.append((PREFIX, data))
            arg: Any = data
            if kind == "bytearray":
                arg = bytearray(data)
            elif kind == "memoryview":
                arg = memoryview(bytearray(data))
            end.send_task = self.loop.create_task(self._send(i, arg), name="send_all")
            self._steps(1)  # let it start: it holds the send direction now
            self._reap()

        @rule(i=st.integers(0, 1))
        @_guarded
        def start_wait_send(self, i: int) -> None:
            end = self.ends[i]
            if not self._can_send(i):
                return
            end.send_task = self.loop.create_task(
                end.stream.wait_send_all_might_not_block(), name="wait_send_all_might_not_block"
            )
            self._steps(1)
            self._reap()

        @rule(i=st.integers(0, 1))
        @_guarded
        def send_eof(self, i: int) -> None:
            # In flight like a send: it may wait for the peer (a TLS
            # handshake, a lockstep transport).
            end = self.ends[i]
            if end.closed or end.send_task is not None or end.no_half_close or end.send_done:
                return
            if not hasattr(end.stream, "send_eof"):
                return
            end.eof_sent = True  # from now on the peer may see EOF
            end.send_task = self.loop.create_task(end.stream.send_eof(), name="send_eof")
            self._steps(1)
            self._reap()

        @rule(i=st.integers(0, 1), op=receive_ops)
        @_guarded
        def start_receive(self, i: int, op: tuple[str, Any]) -> None:
            end = self.ends[i]
            if end.closed or end.receive_task is not None:
                return
            end.receive_task = self.loop.create_task(self._receive(i, *op))
            self._steps(1)
            self._reap()

        @rule(steps=st.integers(1, 20))
        @_guarded
        def run_loop(self, steps: int) -> None:
            self._steps(steps)
            self._reap()

        def _cancel(self, task: Optional[asyncio.Task[Any]]) -> None:
            if task is not None:
                task.cancel()
                self._settle(task)
                self._reap()

        def _cancelled_after(self, task: asyncio.Task[Any], steps: int) -> None:
            """Let task run for steps loop iterations, then cancel it: over
            0, 1, 2, ... steps, the cancellation lands at every await."""

            async def body() -> None:
                for _ in range(steps):
                    if task.done():
                        return
                    await asyncio.sleep(0)
                task.cancel()
                await asyncio.wait([task])

            self._run(body())
            self._reap()

        @rule(i=st.integers(0, 1), op=receive_ops, steps=st.integers(0, 12))
        @_guarded
        def receive_cancelled_after(self, i: int, op: tuple[str, Any], steps: int) -> None:
            end = self.ends[i]
            if end.closed or end.receive_task is not None:
                return
            end.receive_task = self.loop.create_task(self._receive(i, *op))
            self._cancelled_after(end.receive_task, steps)

        @rule(i=st.integers(0, 1), size=payloads(), steps=st.integers(0, 12))
        @_guarded
        def send_cancelled_after(self, i: int, size: int, steps: int) -> None:
            self.start_send(i, size, "bytes")
            task = self.ends[i].send_task
            if task is not None:
                self._cancelled_after(task, steps)

        @rule(i=st.integers(0, 1))
        @_guarded
        def cancel_send(self, i: int) -> None:
            self._cancel(self.ends[i].send_task)

        @rule(i=st.integers(0, 1))
        @_guarded
        def cancel_receive(self, i: int) -> None:
            self._cancel(self.ends[i].receive_task)

        @rule(i=st.integers(0, 1))
        @_guarded
        def second_receive_is_busy(self, i: int) -> None:
            end = self.ends[i]
            if end.closed or end.receive_task is None or end.receive_task.done():
                return
            if not self._is_busy(
                i, lambda: end.stream.receive_some(1), end.receive_task, "receive_some"
            ):
                raise AssertionError(f"end {i}: a second concurrent receive_some was not busy")

        @rule(
            i=st.integers(0, 1),
            call=st.sampled_from(["send_all", "send_eof", "wait_send_all_might_not_block"]),
        )
        @_guarded
        def second_send_is_busy(self, i: int, call: str) -> None:
            end = self.ends[i]
            if end.closed or end.eof_sent or end.send_task is None or end.send_task.done():
                return
            if call == "send_eof" and not hasattr(end.stream, "send_eof"):
                return
            method = getattr(end.stream, call)
            probe = (lambda: method(b"")) if call == "send_all" else method
            if not self._is_busy(i, probe, end.send_task, call):
                raise AssertionError(
                    f"end {i}: {call} during a {end.send_task.get_name()} was not busy"
                )

        @rule(i=st.integers(0, 1))
        @_guarded
        def receive_is_a_checkpoint(self, i: int) -> None:
            end = self.ends[i]
            if end.closed or end.receive_task is not None:
                return
            if _returned_despite_cancel(self, i, "receive_some", end.stream.receive_some(1)):
                raise AssertionError(
                    f"end {i}: receive_some returned although a cancellation was "
                    f"pending: it is not a checkpoint (and its data is lost)"
                )

        @rule(i=st.integers(0, 1))
        @_guarded
        def send_is_a_checkpoint(self, i: int) -> None:
            end = self.ends[i]
            if not self._can_send(i):
                return
            if _returned_despite_cancel(self, i, "send_all", end.stream.send_all(b"")):
                raise AssertionError(
                    f"end {i}: send_all returned although a cancellation was "
                    f"pending: it is not a checkpoint"
                )

        @rule(i=st.integers(0, 1), forceful=st.booleans(), cancelled=st.booleans())
        @_guarded
        def close(self, i: int, forceful: bool, cancelled: bool) -> None:
            end = self.ends[i]
            if end.closed:
                return
            self._closing(end)
            if forceful:
                self._run(aclose_forcefully(end.stream))
            elif cancelled:
                # Cancelled at once, aclose must still close.
                _returned_despite_cancel(self, i, "aclose", end.stream.aclose())
                if end.send_task is None and not end.eof_sent:
                    try:
                        self._run(end.stream.send_all(b""))
                    except ClosedResourceError:
                        pass
                    except BrokenResourceError:  # not closed: it saw the peer
                        raise AssertionError(
                            f"end {i}: after a cancelled aclose, the stream is still open"
                        ) from None
                    else:
                        raise AssertionError(
                            f"end {i}: after a cancelled aclose, the stream is still open"
                        )
            else:
                self._run(end.stream.aclose())
            # In-flight calls on this end must end now, not hang.
            for task in (end.send_task, end.receive_task):
                if task is not None:
                    self._settle(task)
            self._reap()

        @invariant()
        @_guarded
        def received_isconsistent(self) -> None:
            for i in range(2):
                self._check_received(i)

        # -- the end ------------------------------------------------------
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

    return StreamStateMachine
