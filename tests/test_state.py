"""pystream._state: the one table of a direction's states."""

from __future__ import annotations

import pytest

from pystream import BrokenResourceError, ClosedResourceError
from pystream._state import (
    BREAK,
    BROKEN,
    CLOSE,
    CLOSED,
    EOF_SENT,
    OPEN,
    SEND_EOF,
    TRANSITIONS,
    Direction,
)


def test_every_state_answers_every_event():
    states = {OPEN, EOF_SENT, BROKEN, CLOSED}
    assert set(TRANSITIONS) == states
    for state, moves in TRANSITIONS.items():
        assert set(moves) == {SEND_EOF, BREAK, CLOSE}, state
        assert set(moves.values()) <= states


def test_closed_is_final_and_reachable_from_everywhere():
    for state in TRANSITIONS:
        assert TRANSITIONS[state][CLOSE] == CLOSED
    assert set(TRANSITIONS[CLOSED].values()) == {CLOSED}


def test_broken_stays_broken_and_keeps_its_first_cause():
    d = Direction("sending")
    first, second = ConnectionResetError(), BrokenPipeError()
    assert d.handle(BREAK, first) == BROKEN
    assert d.handle(SEND_EOF) == BROKEN
    assert d.handle(BREAK, second) == BROKEN
    with pytest.raises(BrokenResourceError) as info:
        d.check()
    assert info.value.__cause__ is first


def test_errors_by_state():
    d = Direction("sending")
    d.check()  # open: nothing
    d.handle(SEND_EOF)
    with pytest.raises(ClosedResourceError, match="send_eof"):
        d.check()
    d.handle(BREAK, ConnectionResetError())  # the shutdown failed
    with pytest.raises(BrokenResourceError):
        d.check()
    d.handle(CLOSE)
    with pytest.raises(ClosedResourceError, match="closed"):
        d.check()


def test_a_non_os_cause_still_gives_broken():
    d = Direction("receiving")
    d.handle(BREAK, None)  # a TLS send cancelled mid-record
    with pytest.raises(BrokenResourceError):
        d.check()
