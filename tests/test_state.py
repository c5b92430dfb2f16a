"""pystream._base._state: one state object per stream, its table, the translator."""

from __future__ import annotations

import errno
import ssl

import pytest

from pystream import BrokenResourceError, ClosedResourceError
from pystream._base._state import (
    BREAK,
    BROKEN,
    CLOSE,
    CLOSED,
    EOF_SENT,
    OPEN,
    RECEIVING,
    SEND_EOF,
    SENDING,
    StateError,
    StreamState,
    translate,
)


def test_the_tables_stay_within_their_states_and_events():
    for table, states in (
        (SENDING, {OPEN, EOF_SENT, BROKEN, CLOSED}),
        (RECEIVING, {OPEN, BROKEN, CLOSED}),
    ):
        assert set(table) == states
        for moves in table.values():
            assert set(moves) <= {SEND_EOF, BREAK, CLOSE}
            assert set(moves.values()) <= states
            assert moves[CLOSE] == CLOSED  # closing: from everywhere, final
            assert moves[BREAK] in (BROKEN, CLOSED)
        assert set(table[CLOSED].values()) == {CLOSED}


def test_close_closes_both_directions_once():
    state = StreamState()
    assert not state.closed
    assert state.close() is True
    assert state.closed and state.send is CLOSED and state.receive is CLOSED
    assert state.close() is False  # twice: answered by the table, nothing new
    state.break_send(ConnectionResetError())  # a failure racing the close
    assert state.send is CLOSED and state.send_cause is None
    with pytest.raises(ClosedResourceError, match="closed"):
        state.check_send()
    with pytest.raises(ClosedResourceError, match="closed"):
        state.check_receive()


def test_send_eof_is_idempotent_and_then_sending_is_closed():
    state = StreamState()
    assert state.send_eof() is True
    assert state.send_eof() is False
    assert state.send is EOF_SENT and state.receive is OPEN
    with pytest.raises(ClosedResourceError, match="send_eof"):
        state.check_send()
    state.check_receive()  # receiving goes on
    state.break_send(BrokenPipeError())  # the shutdown failed
    with pytest.raises(BrokenResourceError):
        state.check_send()


def test_broken_stays_broken_keeps_its_first_cause_and_send_eof_raises_it():
    state = StreamState()
    first, second = ConnectionResetError(), BrokenPipeError()
    state.break_send(first)
    state.break_send(second)
    with pytest.raises(BrokenResourceError, match="while sending") as info:
        state.send_eof()
    assert info.value.__cause__ is first
    state.check_receive()  # one direction only


def test_send_eof_on_a_closed_stream_raises_closed():
    state = StreamState()
    state.close()
    with pytest.raises(ClosedResourceError):
        state.send_eof()


def test_an_event_the_table_does_not_list_is_a_bug():
    from pystream._base._state import _apply

    with pytest.raises(StateError, match="a bug in pystream"):
        _apply(SENDING, BROKEN, SEND_EOF, "sending")
    with pytest.raises(StateError):
        _apply(RECEIVING, OPEN, SEND_EOF, "receiving")
    with pytest.raises(StateError):
        StreamState().send_error()  # an open direction has no error


def test_failures_translate_in_one_place():
    state = StreamState()
    reset = ConnectionResetError(errno.ECONNRESET, "reset")
    exc = state.send_failed(reset)
    assert isinstance(exc, BrokenResourceError) and exc.__cause__ is reset
    assert state.send is BROKEN and state.receive is OPEN
    # EBADF means we closed the descriptor: Closed, in either direction,
    # and no break recorded.
    for failed in (StreamState().send_failed, StreamState().receive_failed):
        gone = OSError(errno.EBADF, "bad fd")
        exc = failed(gone)
        assert isinstance(exc, ClosedResourceError) and exc.__cause__ is gone
    closed = StreamState()
    closed.close()
    assert isinstance(closed.receive_failed(reset), ClosedResourceError)


def test_tls_errors_and_transport_errors_translate_too():
    bad = ssl.SSLError(9, "bad record mac")  # errno 9: OpenSSL's, not EBADF
    exc = translate(bad, "receiving")
    assert isinstance(exc, BrokenResourceError) and "TLS failed" in str(exc)
    transport = BrokenResourceError("under")
    exc = translate(transport, "sending")
    assert isinstance(exc, BrokenResourceError) and exc.__cause__ is transport
    state = StreamState()
    state.both_failed(bad, "talking TLS")
    assert state.send is BROKEN and state.receive is BROKEN
    assert state.receive_cause is bad and state.send_cause is bad
