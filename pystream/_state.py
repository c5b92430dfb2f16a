"""The state of one direction of a stream, as one table.

The rules, which the socket, TLS, asyncio-adapter and memory streams
follow (each keeps its sending side in a ``Direction``, TLS its receiving
side too); the code below only looks them up:

1. A direction starts OPEN.  Three things end it:
   - ``send_eof()`` (EOF_SENT, sending only): we said we send no more;
   - the transport failing (BROKEN): the peer reset, the pipe broke, or, for
     TLS, a record cut short or a TLS error;
   - ``aclose()`` or ``aclose_forcefully()`` (CLOSED).
2. CLOSED is final, and closing is allowed from every state.
3. BROKEN stays broken until CLOSED: nothing repairs a transport, and a
   later ``send_eof`` does not hide the break.
4. EOF_SENT can still break (the shutdown itself failed) or close; sending
   EOF again changes nothing (``send_eof`` is idempotent).
5. Using a direction that is not OPEN raises, by state: CLOSED gives
   ``ClosedResourceError``, EOF_SENT ``ClosedResourceError`` (send_eof
   closed it), BROKEN ``BrokenResourceError`` whose ``__cause__`` is what
   broke it (the first cause is kept).

TLS breaks both of its directions at once on a TLS error or a cancelled
``send_all`` (the record stream can no longer be trusted either way), and
only its sending direction when the transport fails to send (what the peer
sent before can still be received).
"""

from __future__ import annotations

from typing import Optional

from ._errors import BrokenResourceError, ClosedResourceError

__all__ = ["Direction", "OPEN", "EOF_SENT", "BROKEN", "CLOSED", "SEND_EOF", "BREAK", "CLOSE"]

# States.
OPEN = "open"
EOF_SENT = "eof sent"
BROKEN = "broken"
CLOSED = "closed"

# Events.
SEND_EOF = "send_eof"
BREAK = "break"
CLOSE = "close"

TRANSITIONS: dict[str, dict[str, str]] = {
    OPEN: {SEND_EOF: EOF_SENT, BREAK: BROKEN, CLOSE: CLOSED},
    EOF_SENT: {SEND_EOF: EOF_SENT, BREAK: BROKEN, CLOSE: CLOSED},
    BROKEN: {SEND_EOF: BROKEN, BREAK: BROKEN, CLOSE: CLOSED},
    CLOSED: {SEND_EOF: CLOSED, BREAK: CLOSED, CLOSE: CLOSED},
}


class Direction:
    """One direction's state and, once broken, what broke it.

    ``state`` is read directly by hot paths (``if d.state is not OPEN``);
    everything else goes through ``handle`` and ``check``.
    """

    __slots__ = ("state", "cause", "_doing")

    def __init__(self, doing: str) -> None:
        self.state = OPEN
        self.cause: Optional[BaseException] = None
        self._doing = doing  # "sending" or "receiving", for messages

    def __repr__(self) -> str:
        return f"<Direction {self._doing}: {self.state}>"

    def handle(self, event: str, cause: Optional[BaseException] = None) -> str:
        """Apply event (with what caused a BREAK); return the new state."""
        new = TRANSITIONS[self.state][event]
        if new is BROKEN and self.state is not BROKEN:
            self.cause = cause
        self.state = new
        return new

    def error(self) -> Exception:
        """The exception rule 5 gives for using this direction now."""
        if self.state is CLOSED:
            return ClosedResourceError("this stream was closed")
        if self.state is EOF_SENT:
            return ClosedResourceError("send_eof() closed this stream's send side")
        if self.state is BROKEN:
            cause = self.cause
            exc = BrokenResourceError(f"the stream broke while {self._doing}")
            exc.__cause__ = cause
            return exc
        raise AssertionError("an open direction has no error")

    def check(self) -> None:
        """Raise unless the direction is OPEN."""
        if self.state is not OPEN:
            raise self.error()
