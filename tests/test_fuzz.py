"""Hypothesis fuzzing of every stream pystream ships, plus the fuzzer
catching deliberately broken streams."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

import pystream
from pystream.testing import lockstep_stream_pair, memory_stream_pair
from pystream.testing.fuzz import chunkings, stream_state_machine

from broken_streams import BROKEN
from helpers import FUZZ_EXAMPLES as EXAMPLES
from helpers import FUZZ_SEED as SEED
from helpers import LOOP_KINDS, make_pair, new_loop

# In CI (the variable CI set), every stream kind gets 200 examples on the
# default loop (an eighth of that on uvloop, which runs the same streams)
# from a fresh seed each run; a failure names the seed, and
# PYSTREAM_FUZZ_SEED=N replays it.  Locally, 30 examples;
# PYSTREAM_FUZZ_EXAMPLES=2000 runs a long session.  (Hypothesis's own "ci"
# profile, loaded when CI is set, would replay the same derandomized
# examples every run: derandomize is off here.)


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=40,
        deadline=None,
        derandomize=False,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def run_machine(machine, examples=EXAMPLES):
    """Run a state machine with this session's seed, naming it on failure."""
    try:
        run_state_machine_as_test(seed(SEED)(machine), settings=fuzz_settings(examples))
    except Exception as exc:
        raise AssertionError(
            f"{exc}\n(replay: PYSTREAM_FUZZ_SEED={SEED} PYSTREAM_FUZZ_EXAMPLES={examples})"
        ) from exc


async def memory_maker():
    return memory_stream_pair()


async def lockstep_maker():
    return lockstep_stream_pair()


def socket_maker(kind):
    async def maker():
        return await make_pair(kind)

    return maker


async def stapled_maker():
    a_out, b_in = memory_stream_pair()
    b_out, a_in = memory_stream_pair()
    return pystream.StapledStream(a_out, a_in), pystream.StapledStream(b_out, b_in)


async def asyncio_maker():
    from test_asyncio_stream import asyncio_pair

    return await asyncio_pair()


async def pipes_maker():
    """Two OS pipes stapled into a two-way pair."""
    r1, w1 = await pystream.open_pipe()
    r2, w2 = await pystream.open_pipe()
    return pystream.StapledStream(w1, r2), pystream.StapledStream(w2, r1)


async def thread_pipes_maker():
    """The same over ThreadFdStream (blocking I/O in threads: the program's
    own stdio when it is a file or a socket)."""
    from pystream._streams._stdio import ThreadFdStream

    ends = []
    for _ in range(2):
        r, w = os.pipe2(os.O_CLOEXEC)
        ends.append(
            (
                ThreadFdStream(r, readable=True, writable=False),
                ThreadFdStream(w, readable=False, writable=True),
            )
        )
    (r1, w1), (r2, w2) = ends
    return pystream.StapledStream(w1, r2), pystream.StapledStream(w2, r1)


def tls_maker(transport_maker):
    from tls_helpers import client_context, server_context

    async def maker():
        a, b = await transport_maker()
        return (
            pystream.TLSStream(a, client_context(), server_hostname="localhost"),
            pystream.TLSStream(b, server_context(), server_side=True),
        )

    return maker


MAKERS = {
    "memory": memory_maker,
    "lockstep": lockstep_maker,
    "pair": socket_maker("pair"),
    "tcp": socket_maker("tcp"),
    "unix": socket_maker("unix"),
    "stapled": stapled_maker,
    "pipes": pipes_maker,
    "thread-pipes": thread_pipes_maker,
    "asyncio": asyncio_maker,
    "tls-memory": tls_maker(memory_maker),
    "tls-pair": tls_maker(socket_maker("pair")),
    "tls-tls": tls_maker(tls_maker(memory_maker)),
}

# How each kind's cancelled send_all behaves (the machine holds it to it):
# "whole" (all or nothing, the stream usable after) or "prefix" (TLS: a
# record may be cut, and the stream breaks).
CANCELLED_SEND = {name: "prefix" if name.startswith("tls") else "whole" for name in MAKERS}
# Over TCP, a closed end's unsent data may be cut by the reset its peer's
# later sends provoke (RFC 1122 4.2.2.13); Unix sockets and memory keep it.
CLOSE_MAY_CUT = {"tcp", "asyncio"}
# Kinds whose examples cost several times the others' (a thread per
# blocking call): a quarter of the examples.
SLOW = {"thread-pipes"}


@pytest.mark.parametrize("loop", LOOP_KINDS)
@pytest.mark.parametrize("stream", list(MAKERS))
def test_state_machine(stream, loop):
    machine = stream_state_machine(
        MAKERS[stream],
        loop_factory=lambda: new_loop(loop),
        cancelled_send=CANCELLED_SEND[stream],
        close_may_cut=stream in CLOSE_MAY_CUT,
    )
    examples = EXAMPLES if loop == "asyncio" else max(20, EXAMPLES // 8)
    if stream in SLOW:
        examples = max(20, examples // 4)
    run_machine(machine, examples)
    assert pystream._counters()["handles"] == 0


@pytest.mark.parametrize("stream", ["memory", "pair", "tls-pair"])
def test_state_machine_where_the_schedule_rule_skips_every_yield_it_may(stream):
    # The machine's default is the strict rule (interval 0); here the
    # interval is longer than any run, so every call right after a pystream
    # resume skips its yield, and cancellations land elsewhere.
    machine = stream_state_machine(
        MAKERS[stream],
        cancelled_send=CANCELLED_SEND[stream],
        close_may_cut=stream in CLOSE_MAY_CUT,
        schedule_interval=3600.0,
    )
    run_machine(machine, max(20, EXAMPLES // 4))
    assert pystream._counters()["handles"] == 0


@settings(max_examples=30, deadline=None)
@given(data=st.data(), payload=st.binary(min_size=1, max_size=5000))
def test_chunkings_join_back(data, payload):
    chunks = data.draw(chunkings(payload))
    assert all(chunks)
    assert b"".join(chunks) == payload


@pytest.mark.parametrize(
    "broken, behaviour",
    [
        ("no-checkpoint", "not a checkpoint|not what end . sent"),
        ("loses-data", "graceful close|EOF before all the data"),
        ("no-busy", "was not busy"),
        ("empty-before-eof", "sent no EOF"),
        ("aclose-cancel", "after a cancelled aclose, the stream is still open"),
        ("forceful-loses-data", "EOF before all the data"),
        ("cancelled-receive-drops-data", "not what end . sent|EOF before all the data"),
        ("loses-last-byte", "not what end . sent|EOF before all the data"),
        ("key-advanced-before-send", "not what end . sent|EOF before all the data"),
    ],
)
def test_state_machine_catches(broken, behaviour):
    messages = _failures(stream_state_machine(BROKEN[broken]))
    assert any(re.search(behaviour, m) for m in messages), messages


def _failures(machine):
    """The messages of the failures hypothesis found (one, or a group)."""
    try:
        # No shrinking: finding the failure is what is tested, and quickly.
        # Derandomized, so that it is found the same way every run.
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=1000,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
            ),
        )
    except BaseException as exc:  # AssertionError, or a group of them
        return [str(e) for e in getattr(exc, "exceptions", [exc])]
    raise AssertionError("the state machine found nothing wrong")
