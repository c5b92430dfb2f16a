"""``CoreListener``: accepting connections on one C listener handle.

Part of the core layer: every ``ps_listener_*`` call is in this module.
"""

from __future__ import annotations

import errno
from typing import Generic, TypeVar

from .._base._errors import ClosedResourceError, ConflictDetector
from .._base._util import CHECKPOINT
from .._binding import UV_EAGAIN, ffi, lib
from ..abc import Listener
from ._common import Address, check, decode_address, warn_unclosed
from ._handle import Handle
from ._loop import Bridge
from ._stream import CoreStream, wait_closed

__all__ = ["CoreListener"]

S = TypeVar("S", bound=CoreStream)

# Accept errors about one connection, not the listener: skip and go on.
_ACCEPT_SKIP = {
    -errno.ECONNABORTED,
    -errno.EPROTO,
    -errno.EPERM,
    -errno.ENETDOWN,
    -errno.ENOPROTOOPT,
    -errno.EHOSTDOWN,
    -errno.ENONET,
    -errno.EHOSTUNREACH,
    -errno.EOPNOTSUPP,
    -errno.ENETUNREACH,
}


class CoreListener(Listener[S], Generic[S]):
    """A listening socket whose connections the C core accepts as they
    arrive (they start buffering data at once); ``accept`` returns them as
    ``stream_class`` instances."""

    __slots__ = (
        "_h",
        "_bridge",
        "_kind",
        "_closed",
        "_conflict",
        "_out",
        "_stream_class",
        "__weakref__",
    )

    def __init__(
        self, bridge: Bridge, fd: int, kind: int, backlog: int, stream_class: type[S]
    ) -> None:
        """Listen on fd, a bound socket that the listener owns from now on
        (closed here if this fails)."""
        handle = Handle(bridge)
        out = ffi.new("ps_listener_t **")
        check(lib.ps_listener_open(bridge.ptr, fd, kind, backlog, handle.cdata, out))
        bridge.adopt(handle, out[0])
        bridge.schedule_pass()
        self._h = handle
        self._bridge = bridge
        self._kind = kind
        self._closed = False
        self._conflict = ConflictDetector("another task is already accepting")
        self._out = ffi.new("ps_stream_t **")
        self._stream_class = stream_class

    def __del__(self) -> None:
        # (Its own attributes, which a failed __init__ may not have set.)
        handle = getattr(self, "_h", None)
        warn_unclosed(self, handle, getattr(self, "_closed", True), lib.ps_listener_close)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError("this listener was closed")
        if self._h.ptr is None:
            raise ClosedResourceError("the event loop of this listener was closed")
        self._bridge.check_loop()

    async def accept(self) -> S:
        """Return the next connection, waiting for one if none is queued.

        The C core accepts connections as they arrive, into a queue of up
        to 64 (then the kernel's backlog holds the rest); this takes the
        oldest.  A connection that failed before it was taken (aborted by
        its client, say) is skipped.  A checkpoint.

        Raises:
            pystream.BusyResourceError: another task is already accepting
                on this listener.
            pystream.ClosedResourceError: the listener was closed, before or
                during the call.
            OSError: accepting failed for a reason that is not about one
                connection (out of file descriptors, say: ``EMFILE``).  The
                listener stays usable; ``serve_listeners`` waits 0.1 s and
                goes on.
            RuntimeError: another event loop or thread than the
                listener's.

        Cancellation:
            No connection is lost: it stays queued for the next
            ``accept``.
        """
        with self._conflict:
            self._check_open()
            await CHECKPOINT
            bridge = self._bridge
            handle = Handle(bridge)
            while True:
                self._check_open()
                err = lib.ps_listener_accept(self._h.ptr, handle.cdata, self._out)
                if err == 0:
                    bridge.adopt(handle, self._out[0])
                    bridge.poke()
                    return self._stream_class(handle, self._kind)
                if err == UV_EAGAIN:
                    await self._h.op.wait(bridge.new_future())
                elif err not in _ACCEPT_SKIP:
                    check(err)

    async def aclose(self) -> None:
        """Stop listening.  Connections accepted but not yet taken are
        closed; an ``accept`` waiting in another task wakes with
        ``ClosedResourceError``.  Idempotent.

        Raises:
            RuntimeError: another event loop or thread than the listener's
                (the listener is not closed then).

        Cancellation:
            The listener is closed all the same.
        """
        if not self._closed:
            if self._h.ptr is not None:
                self._bridge.check_loop()
            self._close_now()
        await wait_closed(self._h)

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        h = self._h
        h.wake_all(ClosedResourceError("the listener was closed during accept"))
        if h.ptr is not None:
            lib.ps_listener_close(h.ptr)
            self._bridge.schedule_pass()

    @property
    def local_address(self) -> Address:
        """The address listened on, as ``socket.getsockname()`` gives it:
        ``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for
        IPv6, the path for a Unix socket.  ``ClosedResourceError`` once
        closed."""
        if self._closed or self._h.ptr is None:
            raise ClosedResourceError("this listener was closed")
        out = ffi.new("ps_address_t *")
        check(lib.ps_listener_address(self._h.ptr, out))
        return decode_address(out)

    def fileno(self) -> int:
        """The listening socket's file descriptor, or -1 once closed."""
        if self._closed or self._h.ptr is None:
            return -1
        return int(lib.ps_listener_fileno(self._h.ptr))
