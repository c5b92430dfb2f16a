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
from typing import Any, Callable, Optional

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from .._base._checkpoint import set_schedule_interval
from .._base._errors import BrokenResourceError, ClosedResourceError
from ..abc import aclose_forcefully
from ._check_kit import Maker
from ._fuzz_machine import StreamMachineBase, guarded
from ._fuzz_model import (
    LARGE_SEND,
    MAYBE,
    PREFIX,
    SENT,
    chunkings,
    payloads,
    receive_ops,
    schedules,
)
from ._fuzz_receive import ReceivingMixin

__all__ = ["stream_state_machine", "chunkings", "schedules", "payloads"]


def stream_state_machine(
    maker: Maker,
    *,
    loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]] = None,
    max_in_flight: Optional[int] = None,
    cancelled_send: str = "whole",
    max_send: int = LARGE_SEND,
    close_may_cut: bool = False,
    schedule_interval: float = 0.0,
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
    transport that cannot block a send).  ``schedule_interval`` is the
    checkpoint rule's interval on the machine's loop: 0 (the default) yields
    at every call, a large one (3600) takes every skip the rule allows;
    never the default 1 ms, which would make the steps depend on the clock
    and examples not replay.
    """
    if cancelled_send not in ("whole", "prefix"):
        raise ValueError('cancelled_send must be "whole" or "prefix"')
    if not 1 <= max_send <= LARGE_SEND:
        raise ValueError(f"max_send must be between 1 and {LARGE_SEND}")
    strict = cancelled_send == "whole"

    class StreamStateMachine(ReceivingMixin, StreamMachineBase):
        def __init__(self) -> None:
            super().__init__(maker, loop_factory, strict=strict, close_may_cut=close_may_cut)

        # -- what the rules start -----------------------------------------
        async def _send(self, i: int, data: Any) -> None:
            end = self.ends[i]
            await end.stream.send_all(data)
            end.segments[-1] = (SENT, end.segments[-1][1])

        # -- rules --------------------------------------------------------
        @initialize()
        def schedule_rule(self) -> None:
            # A checkpoint rule that never depends on the clock, so that a
            # replayed example takes the same steps (hypothesis requires
            # it): 0 yields at every call, a large interval skips every
            # yield the rule allows.
            set_schedule_interval(schedule_interval, loop=self.loop)

        @rule(
            i=st.integers(0, 1),
            size=payloads(),
            kind=st.sampled_from(["bytes", "bytearray", "memoryview"]),
        )
        @guarded
        def start_send(self, i: int, size: int, kind: str) -> None:
            if self._new_send(i, size, kind) is not None:
                self._steps(1)  # let it start: it holds the send direction now
                self._reap()

        def _new_send(self, i: int, size: int, kind: str) -> Optional[asyncio.Task[None]]:
            """End i's send_all of a new payload, as a task not yet run (None
            if end i cannot send now)."""
            end, peer = self.ends[i], self._peer(i)
            size = min(size, max_send)
            if not self._can_send(i):
                return None
            if max_in_flight is not None:
                in_flight = sum(len(d) for _, d in end.segments) - len(peer.received)
                if in_flight + size > max_in_flight:
                    return None
            if any(k == MAYBE for k, _ in end.segments):
                event("a send after a cancelled send on the same end")
            data = end.payload(size)
            end.segments.append((PREFIX, data))
            arg: Any = data
            if kind == "bytearray":
                arg = bytearray(data)
            elif kind == "memoryview":
                arg = memoryview(bytearray(data))
            task = end.send_task = self.loop.create_task(self._send(i, arg), name="send_all")
            return task

        @rule(i=st.integers(0, 1))
        @guarded
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
        @guarded
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
        @guarded
        def start_receive(self, i: int, op: tuple[str, Any]) -> None:
            end = self.ends[i]
            if end.closed or end.receive_task is not None:
                return
            end.receive_task = self.loop.create_task(self._receive(i, *op))
            self._steps(1)
            self._reap()

        @rule(steps=st.integers(1, 20))
        @guarded
        def run_loop(self, steps: int) -> None:
            self._steps(steps)
            self._reap()

        @rule(i=st.integers(0, 1), op=receive_ops, steps=st.integers(0, 12))
        @guarded
        def receive_cancelled_after(self, i: int, op: tuple[str, Any], steps: int) -> None:
            end = self.ends[i]
            if end.closed or end.receive_task is not None:
                return
            end.receive_task = self.loop.create_task(self._receive(i, *op))
            self._cancelled_after(end.receive_task, steps)

        @rule(i=st.integers(0, 1), size=payloads(), steps=st.integers(0, 12))
        @guarded
        def send_cancelled_after(self, i: int, size: int, steps: int) -> None:
            task = self._new_send(i, size, "bytes")
            if task is not None:
                self._cancelled_after(task, steps)

        @rule(i=st.integers(0, 1))
        @guarded
        def cancel_send(self, i: int) -> None:
            self._cancel(self.ends[i].send_task)

        @rule(i=st.integers(0, 1))
        @guarded
        def cancel_receive(self, i: int) -> None:
            self._cancel(self.ends[i].receive_task)

        @rule(i=st.integers(0, 1))
        @guarded
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
        @guarded
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
        @guarded
        def receive_is_a_checkpoint(self, i: int) -> None:
            end = self.ends[i]
            if end.closed or end.receive_task is not None:
                return
            if self._returned_despite_cancel(i, "receive_some", end.stream.receive_some(1)):
                raise AssertionError(
                    f"end {i}: receive_some returned although a cancellation was "
                    f"pending: it is not a checkpoint (and its data is lost)"
                )

        @rule(i=st.integers(0, 1))
        @guarded
        def send_is_a_checkpoint(self, i: int) -> None:
            end = self.ends[i]
            if not self._can_send(i):
                return
            if self._returned_despite_cancel(i, "send_all", end.stream.send_all(b"")):
                raise AssertionError(
                    f"end {i}: send_all returned although a cancellation was "
                    f"pending: it is not a checkpoint"
                )

        @rule(i=st.integers(0, 1), forceful=st.booleans(), cancelled=st.booleans())
        @guarded
        def close(self, i: int, forceful: bool, cancelled: bool) -> None:
            end = self.ends[i]
            if end.closed:
                return
            self._closing(end)
            if forceful:
                self._run(aclose_forcefully(end.stream))
            elif cancelled:
                # Cancelled at once, aclose must still close.
                self._returned_despite_cancel(i, "aclose", end.stream.aclose())
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
                    try:
                        self._settle(task)
                    except asyncio.TimeoutError:
                        how = "a cancelled aclose" if cancelled else "aclose"
                        raise AssertionError(
                            f"end {i}: after {how}, the stream is still open: "
                            f"a {task.get_name()} in flight did not end"
                        ) from None
            self._reap()

        @invariant()
        @guarded
        def received_isconsistent(self) -> None:
            for i in range(2):
                self._check_received(i)

    return StreamStateMachine
