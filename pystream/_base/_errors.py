"""pystream's exceptions and the per-direction conflict detector.  (Which
exception a failure becomes is decided in one place: ``_state.translate``.)"""

from __future__ import annotations

from types import TracebackType
from typing import Optional

__all__ = [
    "ClosedResourceError",
    "BrokenResourceError",
    "BusyResourceError",
    "EndOfChannel",
    "ConflictDetector",
]


class ClosedResourceError(Exception):
    """This object was closed (by you, or its send side by ``send_eof``) and
    then used, or it was closed while a call on it was waiting."""


class BrokenResourceError(Exception):
    """The peer or the transport broke the resource (a reset, a broken pipe).

    ``__cause__`` is the underlying ``OSError`` when there is one.  Once a
    direction is broken it stays broken.
    """


class BusyResourceError(Exception):
    """Two tasks used the same direction of a resource at once: the second
    call raises this at once, and the first goes on undisturbed."""


class EndOfChannel(Exception):
    """Every sending end of a channel was closed and its buffer is empty:
    ``receive`` raises it (``async for`` ends on it)."""


class ConflictDetector:
    """Raises ``BusyResourceError`` when a second task enters while another
    is inside.  One per direction of a resource; used as ``with detector:``.

    A hot path may do the same by hand (``if d.held: raise d.busy()``, set
    ``held``, clear it in ``finally``), saving the two calls of ``with``.
    """

    __slots__ = ("_message", "held")

    def __init__(self, message: str) -> None:
        self._message = message
        self.held = False

    def busy(self) -> BusyResourceError:
        return BusyResourceError(self._message)

    def __enter__(self) -> None:
        if self.held:
            raise BusyResourceError(self._message)
        self.held = True

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.held = False
