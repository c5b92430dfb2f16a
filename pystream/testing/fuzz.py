"""Hypothesis fuzzing of stream semantics.

``stream_state_machine(maker)`` builds a rule-based state machine that drives
a stream pair through sends, receives, ``send_eof``, ``aclose``,
``aclose_forcefully`` and cancellations, interleaved in any order on both
ends, with operations left in flight across steps so that cancellations land
at every await point.  After every step it checks the model:

- what an end received is always a prefix of what the other end sent;
- ``b""`` (EOF) only after the peer sent EOF or closed, and then everything
  the peer's completed sends accepted has arrived;
- each failure has the right class for the state it happened in
  (``ClosedResourceError`` only after a local close, ``BrokenResourceError``
  only after the peer closed or a local send was cancelled,
  ``BusyResourceError`` for a second concurrent call on one direction);
- as in Trio's contract, a cancelled ``send_all`` may have sent any prefix
  of its data and may leave the stream broken, so the machine sends nothing
  more on that end (it still receives, sends EOF and closes);
- at the end, a graceful close delivers everything, and nothing is left
  running.

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
from typing import Any, Awaitable, Callable, List, Optional, Tuple

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from .._errors import BrokenResourceError, BusyResourceError, ClosedResourceError
from .._util import aclose_forcefully

__all__ = ["stream_state_machine", "chunkings", "schedules"]

Maker = Callable[[], Awaitable[Tuple[Any, Any]]]
PATIENCE = 10.0
BUSY_PATIENCE = 1.0


def chunkings(data: bytes) -> st.SearchStrategy[List[bytes]]:
    """Ways to cut data into non-empty chunks that join back into it."""
    if not data:
        return st.just([])
    return st.lists(
        st.integers(1, len(data) - 1) if len(data) > 1 else st.nothing(),
        unique=True, max_size=min(16, len(data) - 1),
    ).map(lambda cuts: [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)])])


def schedules(n_tasks: int, max_steps: int = 50) -> st.SearchStrategy[List[int]]:
    """Orders in which n_tasks tasks take turns (a list of task indexes)."""
    return st.lists(st.integers(0, n_tasks - 1), max_size=max_steps)


class _End:
    """The model of one end."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.sent = bytearray()      # everything passed to send_all
        self.accepted = 0            # bytes whose send_all returned
        self.received = bytearray()
        self.send_task: Optional[asyncio.Task[Any]] = None
        self.send_end = 0            # offset in sent where that send ends
        self.receive_task: Optional[asyncio.Task[Any]] = None
        self.receive_max = 0
        # A send was cancelled or failed: how much of it arrives is unknown,
        # and the stream may be broken (TLS breaks), so nothing more is sent.
        self.send_cancelled = False
        self.eof_sent = False
        self.closed = False
        self.forced = False
        self.got_eof = False
        self.eof_in_flight = False   # send_task is a send_eof
        self.no_half_close = False   # send_eof raised NotImplementedError
        self.broke_receiving = False  # broken by its own cancelled send


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


def _returned_despite_cancel(machine: Any, coro: Awaitable[Any]) -> bool:
    """Run coro in a task cancelled before it starts its first await;
    True if it returned anyway (it never yielded to the loop)."""
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
        if not isinstance(exc, (ClosedResourceError, BrokenResourceError)):
            raise exc
    return returned


def stream_state_machine(
    maker: Maker,
    *,
    loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]] = None,
    max_in_flight: int = 32 * 1024,
) -> type:
    """A ``RuleBasedStateMachine`` class fuzzing the pairs ``maker`` makes.

    ``max_in_flight`` bounds the bytes sent but not yet received per
    direction, so that a buffered transport (a socket) never fills up and
    blocks a send forever.
    """

    class StreamStateMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = (loop_factory or asyncio.new_event_loop)()
            a, b = self._run(maker())
            self.ends = [_End(a), _End(b)]
            self.failed = False

        # -- helpers ------------------------------------------------------
        def _run(self, awaitable: Awaitable[Any], patience: float = PATIENCE) -> Any:
            return self.loop.run_until_complete(asyncio.wait_for(awaitable, patience))

        def _is_busy(self, i: int, call: Any, in_flight: "asyncio.Task[Any]") -> bool:
            """Whether a second call on a direction in use raises
            BusyResourceError (promptly: it must not wait its turn).

            The probe starts only if the call in flight is still running at
            that moment (it may finish in the same loop iteration); if not,
            or if the stream broke or closed meanwhile, the probe says
            nothing and counts as busy.
            """
            end, peer = self.ends[i], self._peer(i)

            async def probe() -> bool:
                if in_flight.done():
                    return True
                try:
                    await call()
                except BusyResourceError:
                    return True
                except ClosedResourceError:
                    assert end.closed or end.eof_sent, (
                        f"end {i}: ClosedResourceError, but it is open")
                    return True
                except BrokenResourceError:
                    assert peer.closed or end.send_cancelled, (
                        f"end {i}: BrokenResourceError, but the peer is open")
                    return True
                return False

            try:
                return bool(self._run(probe(), BUSY_PATIENCE))
            except asyncio.TimeoutError:
                return False

        def _steps(self, n: int) -> None:
            async def spin() -> None:
                for _ in range(n):
                    await asyncio.sleep(0)

            self._run(spin())

        def _peer(self, i: int) -> _End:
            return self.ends[1 - i]

        def _settle(self, task: "asyncio.Task[Any]") -> None:
            self._run(asyncio.wait([task]))

        def _reap(self) -> None:
            for i, end in enumerate(self.ends):
                peer = self._peer(i)
                task = end.receive_task
                if task is not None and task.done():
                    end.receive_task = None
                    self._check_receive(i, end, peer, task)
                task = end.send_task
                if task is not None and task.done():
                    end.send_task = None
                    self._check_send(i, end, peer, task)

        def _check_receive(self, i: int, end: _End, peer: _End, task: "asyncio.Task[Any]") -> None:
            if task.cancelled():
                return
            exc = task.exception()
            if exc is None:
                chunk = task.result()
                if chunk:
                    assert len(chunk) <= end.receive_max, (
                        f"end {i}: receive_some({end.receive_max}) returned {len(chunk)} bytes")
                    end.received += chunk
                    assert bytes(peer.sent).startswith(bytes(end.received)), (
                        f"end {i} received bytes that are not what end {1 - i} sent")
                else:
                    assert peer.eof_sent or peer.closed, (
                        f"end {i}: receive_some returned b'' but end {1 - i} sent no EOF and is open")
                    if not peer.forced and not peer.send_cancelled:
                        assert len(end.received) >= peer.accepted, (
                            f"end {i}: EOF before all the data end {1 - i}'s send_all accepted")
                    end.got_eof = True
            elif isinstance(exc, ClosedResourceError):
                assert end.closed, f"end {i}: ClosedResourceError from receive_some, but it is open"
            elif isinstance(exc, BrokenResourceError):
                assert peer.closed or end.send_cancelled, (
                    f"end {i}: BrokenResourceError from receive_some, but the peer is open")
            else:
                raise AssertionError(f"end {i}: receive_some raised {exc!r}") from exc

        def _check_send(self, i: int, end: _End, peer: _End, task: "asyncio.Task[Any]") -> None:
            call = "send_eof" if end.eof_in_flight else "send_all"
            end.eof_in_flight = False
            if task.cancelled():
                end.send_cancelled = True  # (a cancelled send_eof may have sent EOF)
                return
            exc = task.exception()
            if isinstance(exc, NotImplementedError) and call == "send_eof":
                end.eof_sent = False  # no half-close on this stream (TLS 1.2)
                end.no_half_close = True
            elif exc is None:
                end.accepted = max(end.accepted, end.send_end)
            elif isinstance(exc, ClosedResourceError):
                assert end.closed, f"end {i}: ClosedResourceError from {call}, but it is open"
                end.send_cancelled = True  # its bytes may be partial
            elif isinstance(exc, BrokenResourceError):
                assert peer.closed or end.send_cancelled, (
                    f"end {i}: BrokenResourceError from {call}, but the peer is open")
                end.send_cancelled = True
            else:
                raise AssertionError(f"end {i}: {call} raised {exc!r}") from exc

        # -- rules --------------------------------------------------------
        @rule(i=st.integers(0, 1), data=st.binary(min_size=0, max_size=4096))
        @_guarded
        def start_send(self, i: int, data: bytes) -> None:
            end, peer = self.ends[i], self._peer(i)
            if end.closed or end.eof_sent or end.send_cancelled or end.send_task is not None:
                return
            if len(end.sent) - len(peer.received) + len(data) > max_in_flight:
                return
            end.sent += data
            end.send_end = len(end.sent)
            end.send_task = self.loop.create_task(end.stream.send_all(data))
            self._steps(1)  # let it start: it holds the send direction now
            self._reap()

        @rule(i=st.integers(0, 1), max_bytes=st.integers(1, 10000))
        @_guarded
        def start_receive(self, i: int, max_bytes: int) -> None:
            end = self.ends[i]
            if end.closed or end.receive_task is not None:
                return
            end.receive_max = max_bytes
            end.receive_task = self.loop.create_task(end.stream.receive_some(max_bytes))
            self._steps(1)
            self._reap()

        @rule(steps=st.integers(1, 20))
        @_guarded
        def run_loop(self, steps: int) -> None:
            self._steps(steps)
            self._reap()

        def _cancel(self, task: "Optional[asyncio.Task[Any]]") -> None:
            if task is not None:
                task.cancel()
                self._settle(task)
                self._reap()

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
            if not self._is_busy(i, lambda: end.stream.receive_some(1), end.receive_task):
                raise AssertionError(f"end {i}: a second concurrent receive_some was not busy")

        @rule(i=st.integers(0, 1))
        @_guarded
        def second_send_is_busy(self, i: int) -> None:
            end = self.ends[i]
            if end.closed or end.eof_sent or end.send_task is None or end.send_task.done():
                return
            if not self._is_busy(i, lambda: end.stream.send_all(b""), end.send_task):
                raise AssertionError(f"end {i}: a second concurrent send_all was not busy")

        @rule(i=st.integers(0, 1))
        @_guarded
        def send_eof(self, i: int) -> None:
            # In flight like a send: it may wait for the peer (a TLS
            # handshake, a lockstep transport).
            end = self.ends[i]
            if end.closed or end.send_task is not None or end.no_half_close:
                return
            if not hasattr(end.stream, "send_eof"):
                return
            end.eof_sent = True  # from now on the peer may see EOF
            end.eof_in_flight = True
            end.send_task = self.loop.create_task(end.stream.send_eof())
            self._steps(1)
            self._reap()

        @rule(i=st.integers(0, 1))
        @_guarded
        def receive_is_a_checkpoint(self, i: int) -> None:
            end = self.ends[i]
            if end.closed or end.receive_task is not None:
                return
            if _returned_despite_cancel(self, end.stream.receive_some(1)):
                raise AssertionError(
                    f"end {i}: receive_some returned although a cancellation was "
                    f"pending: it is not a checkpoint (and its data is lost)")

        @rule(i=st.integers(0, 1))
        @_guarded
        def send_is_a_checkpoint(self, i: int) -> None:
            end = self.ends[i]
            if end.closed or end.eof_sent or end.send_task is not None:
                return
            if _returned_despite_cancel(self, end.stream.send_all(b"")):
                raise AssertionError(
                    f"end {i}: send_all returned although a cancellation was "
                    f"pending: it is not a checkpoint")

        @rule(i=st.integers(0, 1), forceful=st.booleans(), cancelled=st.booleans())
        @_guarded
        def close(self, i: int, forceful: bool, cancelled: bool) -> None:
            end = self.ends[i]
            if end.closed:
                return
            end.closed = True
            end.forced = forceful
            if forceful:
                self._run(aclose_forcefully(end.stream))
            elif cancelled:
                # Cancelled at once, aclose must still close.
                _returned_despite_cancel(self, end.stream.aclose())
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
                            f"end {i}: after a cancelled aclose, the stream is still open")
            else:
                self._run(end.stream.aclose())
            # In-flight calls on this end must end now, not hang.
            for task in (end.send_task, end.receive_task):
                if task is not None:
                    self._settle(task)
            self._reap()

        async def _close_and_drain(self, end: _End, peer: _End) -> None:
            """Close end gracefully (after its send in flight, if any) while
            peer receives until EOF."""

            async def close() -> None:
                if end.send_task is not None:
                    await asyncio.wait([end.send_task])
                    self._reap()
                end.closed = True
                await end.stream.aclose()

            async def drain() -> None:
                if peer.receive_task is not None:
                    await asyncio.wait([peer.receive_task])
                    self._reap()
                while not peer.got_eof:
                    try:
                        chunk = await peer.stream.receive_some()
                    except BrokenResourceError:
                        # Allowed once everything arrived: closing a socket
                        # with data unread resets it; TLS closed before its
                        # handshake has no close_notify to send.  Or earlier,
                        # if the receiver broke itself with a cancelled send.
                        peer.got_eof = True
                        peer.broke_receiving = peer.send_cancelled
                        break
                    if not chunk:
                        peer.got_eof = True
                    peer.received += chunk

            await asyncio.gather(close(), drain())

        @invariant()
        @_guarded
        def received_is_a_prefix(self) -> None:
            for i, end in enumerate(self.ends):
                assert bytes(self._peer(i).sent).startswith(bytes(end.received)), (
                    f"end {i} received bytes that are not what end {1 - i} sent")

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

        def _finish(self) -> None:
            # A graceful close delivers everything accepted, in order.
            for i, end in enumerate(self.ends):
                peer = self._peer(i)
                if end.closed or peer.closed or end.eof_sent or peer.got_eof:
                    continue
                self._run(self._close_and_drain(end, peer))
                if not end.send_cancelled and not peer.got_eof:
                    raise AssertionError(f"end {1 - i} saw no EOF after end {i}'s graceful close")
                if not end.send_cancelled and not peer.broke_receiving:
                    assert bytes(peer.received) == bytes(end.sent), (
                        f"end {1 - i}: after end {i}'s graceful close, the data received "
                        f"differs from what send_all accepted")
            for end in self.ends:  # first every call, then the streams
                for task in (end.send_task, end.receive_task):
                    if task is not None and not task.done():
                        task.cancel()
                        self._settle(task)
            self._reap()
            for end in self.ends:
                end.closed = end.forced = True
                self._run(aclose_forcefully(end.stream))
            left = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            assert not left, f"tasks left running: {left}"

    return StreamStateMachine
