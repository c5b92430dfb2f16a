"""The state of a stream, both directions, as one object and one table.

The rules (every stream follows them: socket, pipe, ThreadFdStream, TLS,
the asyncio adapter, memory and lockstep streams); the code below only
looks them up, and the stream errors come from one translator:

1. Each direction starts OPEN.  Three things end it:
   - ``send_eof()`` (EOF_SENT, sending only): we said we send no more;
   - the transport failing (BROKEN): the peer reset, the pipe broke, or, for
     TLS, a record cut short or a TLS error;
   - ``aclose()`` or ``aclose_forcefully()`` (CLOSED), which ends both.
2. CLOSED is final, and closing is allowed from every state; closing twice
   changes nothing (``close`` says whether it was the first time).
3. BROKEN stays broken until CLOSED: nothing repairs a transport, and a
   later ``send_eof`` does not hide the break (it raises it).  A break
   after CLOSED changes nothing (a failure racing the close).
4. EOF_SENT can still break (the shutdown itself failed) or close; sending
   EOF again changes nothing (``send_eof`` says whether it is the first).
5. Using a direction that is not OPEN raises, by state: CLOSED gives
   ``ClosedResourceError``, EOF_SENT ``ClosedResourceError`` (send_eof
   closed it), BROKEN ``BrokenResourceError`` whose ``__cause__`` is what
   broke it (the first cause is kept).
6. A failure (``OSError``, ``ssl.SSLError``) becomes a stream error in one
   place, ``translate``: ``ClosedResourceError`` if we closed the stream
   or the OS says the descriptor is gone (EBADF, ENOTSOCK), else
   ``BrokenResourceError``, which breaks the direction.  Either has the
   failure as its ``__cause__``.
7. An event the table does not list for a state is a bug in pystream (the
   calling code should have checked the state first): ``StateError``.

TLS breaks both of its directions at once on a TLS error or a cancelled
``send_all`` (the record stream can no longer be trusted either way), and
only its sending direction when the transport fails to send (what the peer
sent before can still be received).
"""

from __future__ import annotations

import errno
import sys
from typing import Optional

from ._errors import BrokenResourceError, ClosedResourceError

__all__ = [
    "StreamState",
    "StateError",
    "translate",
    "closed_error",
    "closed_during_call",
    "loop_closed",
    "OPEN",
    "EOF_SENT",
    "BROKEN",
    "CLOSED",
]

# States.
OPEN = "open"
EOF_SENT = "eof sent"
BROKEN = "broken"
CLOSED = "closed"

# Events.
SEND_EOF = "send_eof"
BREAK = "break"
CLOSE = "close"

SENDING: dict[str, dict[str, str]] = {
    OPEN: {SEND_EOF: EOF_SENT, BREAK: BROKEN, CLOSE: CLOSED},
    EOF_SENT: {SEND_EOF: EOF_SENT, BREAK: BROKEN, CLOSE: CLOSED},
    BROKEN: {BREAK: BROKEN, CLOSE: CLOSED},
    CLOSED: {BREAK: CLOSED, CLOSE: CLOSED},
}
RECEIVING: dict[str, dict[str, str]] = {
    OPEN: {BREAK: BROKEN, CLOSE: CLOSED},
    BROKEN: {BREAK: BROKEN, CLOSE: CLOSED},
    CLOSED: {BREAK: CLOSED, CLOSE: CLOSED},
}

# OS errors that mean the descriptor is gone because we closed it.
_CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})


class StateError(AssertionError):
    """An event the state table does not allow: a bug in pystream."""


def translate(cause: BaseException, doing: str, *, closed: bool = False) -> Exception:
    """Rule 6: the stream error for a failure met while ``doing``
    something ("sending", "receiving", ...)."""
    # (TLS first: an ssl.SSLError's errno is OpenSSL's code, not the OS's.)
    if closed:
        exc: Exception = ClosedResourceError(f"the stream was closed while {doing}")
    elif _is_tls_error(cause):
        exc = BrokenResourceError(f"TLS failed: {cause}")
    elif getattr(cause, "errno", None) in _CLOSED_ERRNOS:
        exc = ClosedResourceError(f"the stream was closed while {doing}")
    elif isinstance(cause, (BrokenResourceError, ClosedResourceError)):
        exc = BrokenResourceError(f"the transport failed while {doing}")
    else:
        exc = BrokenResourceError(f"the stream broke while {doing}")
    exc.__cause__ = cause
    return exc


def closed_error() -> ClosedResourceError:
    """Rule 5's error for a call on a stream closed before it."""
    return ClosedResourceError("this stream was closed")


def closed_during_call() -> ClosedResourceError:
    """The error a call waiting on a stream raises when another task closes
    the stream."""
    return ClosedResourceError("the stream was closed during this call")


def loop_closed(what: str = "stream") -> ClosedResourceError:
    """The error for a stream (or another resource) whose event loop was
    closed, which tore its C side down."""
    return ClosedResourceError(f"the event loop of this {what} was closed")


def _is_tls_error(cause: BaseException) -> bool:
    # Without importing ssl here: only streams that use it import it.
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(cause, ssl.SSLError)


def _apply(table: dict[str, dict[str, str]], state: str, event: str, doing: str) -> str:
    try:
        return table[state][event]
    except KeyError:
        raise StateError(f"{event} while {doing} is {state}: a bug in pystream") from None


class StreamState:
    """Both directions of one stream and, once broken, what broke each.

    ``send`` and ``receive`` are read directly by hot paths (``if
    state.send is not OPEN``); changes go through the methods, which look
    up the table.  A receive-only or send-only stream leaves the other
    direction OPEN and unused.
    """

    __slots__ = ("send", "receive", "send_cause", "receive_cause")

    def __init__(self) -> None:
        self.send = OPEN
        self.receive = OPEN
        self.send_cause: Optional[BaseException] = None
        self.receive_cause: Optional[BaseException] = None

    def __repr__(self) -> str:
        return f"<StreamState sending: {self.send}, receiving: {self.receive}>"

    @property
    def closed(self) -> bool:
        return self.send is CLOSED

    # -- events -------------------------------------------------------------
    def close(self) -> bool:
        """Rule 2; True if this closed the stream (False: it was closed)."""
        first = self.send is not CLOSED
        self.send = _apply(SENDING, self.send, CLOSE, "sending")
        self.receive = _apply(RECEIVING, self.receive, CLOSE, "receiving")
        return first

    def send_eof(self) -> bool:
        """Rules 4 and 5: True if the caller is to send the EOF now (False:
        it was sent); raises if the send side is closed or broken."""
        if self.send is EOF_SENT:
            return False
        if self.send is not OPEN:
            raise self.send_error()
        self.send = _apply(SENDING, self.send, SEND_EOF, "sending")
        return True

    def break_send(self, cause: Optional[BaseException]) -> None:
        """Rule 3 for the send side (the first cause is kept)."""
        if self.send is not BROKEN and self.send is not CLOSED:
            self.send_cause = cause
        self.send = _apply(SENDING, self.send, BREAK, "sending")

    def break_receive(self, cause: Optional[BaseException]) -> None:
        """Rule 3 for the receive side."""
        if self.receive is OPEN:
            self.receive_cause = cause
        self.receive = _apply(RECEIVING, self.receive, BREAK, "receiving")

    def send_failed(self, cause: BaseException) -> Exception:
        """Rule 6 for a failure while sending: the error to raise (the
        send side is broken unless the failure says we closed it)."""
        exc = translate(cause, "sending", closed=self.closed)
        if isinstance(exc, BrokenResourceError):
            self.break_send(cause)
        return exc

    def receive_failed(self, cause: BaseException) -> Exception:
        """Rule 6 for a failure while receiving."""
        exc = translate(cause, "receiving", closed=self.closed)
        if isinstance(exc, BrokenResourceError):
            self.break_receive(cause)
        return exc

    def both_failed(self, cause: BaseException, doing: str) -> Exception:
        """Rule 6 for a failure that breaks both directions (TLS)."""
        exc = translate(cause, doing, closed=self.closed)
        if isinstance(exc, BrokenResourceError):
            self.break_send(cause)
            self.break_receive(cause)
        return exc

    # -- checks -------------------------------------------------------------
    def send_error(self) -> Exception:
        """Rule 5: the exception for sending now (the send side not OPEN)."""
        state = self.send
        if state is CLOSED:
            return closed_error()
        if state is EOF_SENT:
            return ClosedResourceError("send_eof() closed this stream's send side")
        if state is BROKEN:
            exc = BrokenResourceError("the stream broke while sending")
            exc.__cause__ = self.send_cause
            return exc
        raise StateError("an open send side has no error")

    def receive_error(self) -> Exception:
        """Rule 5 for receiving (the receive side not OPEN)."""
        state = self.receive
        if state is CLOSED:
            return closed_error()
        if state is BROKEN:
            exc = BrokenResourceError("the stream broke while receiving")
            exc.__cause__ = self.receive_cause
            return exc
        raise StateError("an open receive side has no error")

    def check_send(self) -> None:
        if self.send is not OPEN:
            raise self.send_error()

    def check_receive(self) -> None:
        if self.receive is not OPEN:
            raise self.receive_error()
