"""pystream's exceptions and the per-direction conflict detector."""

from __future__ import annotations

import errno
from types import TracebackType
from typing import Optional

__all__ = [
    "ClosedResourceError",
    "BrokenResourceError",
    "BusyResourceError",
    "EndOfChannel",
    "ConflictDetector",
    "stream_error",
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


# OS errors that mean the descriptor is gone because we closed it.
_CLOSED_ERRNOS = {errno.EBADF, errno.ENOTSOCK}


def stream_error(cause: OSError, doing: str, *, closed: bool = False) -> Exception:
    """The one place where an OS error met while ``doing`` something on a
    stream becomes the stream error the contract names (every stream uses
    it): ``ClosedResourceError`` if we closed the stream meanwhile (closed,
    or the OS says the descriptor is gone), else ``BrokenResourceError``.
    The ``OSError`` is the ``__cause__`` either way."""
    if closed or cause.errno in _CLOSED_ERRNOS:
        exc: Exception = ClosedResourceError(f"the stream was closed while {doing}")
    else:
        exc = BrokenResourceError(f"the stream broke while {doing}")
    exc.__cause__ = cause
    return exc


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
