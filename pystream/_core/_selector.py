"""pystream's own event loop: asyncio's selector loop on the core's libuv loop.

``LibuvSelector`` is a ``selectors`` selector whose ``select(timeout)`` is
one libuv iteration (``ps_loop_run_once``) that may block for ``timeout``:
every fd asyncio watches is a libuv poll handle (``ps_poll_*``) in the same
libuv loop as pystream's streams, listeners and processes, so everything
waits in one ``epoll_wait``.  pystream's events from that iteration go to
the loop's ``Bridge`` (``resolve``, ``resume``) before ``select`` returns asyncio's;
the bridge watches no backend fd and runs no pass of its own.

Ownership: the selector makes the ``ps_loop_t``; once its asyncio loop
exists (``attach``) the bridge owns it, and ``close`` (``loop.close()``)
closes it through the bridge, which closes every handle, polls included.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import math
import selectors
import signal
import socket
import threading
from typing import Any, Callable, Optional

from .._binding import ffi, lib, oserror
from ._loop import Bridge, _bridges

__all__ = ["EventLoop", "LibuvSelector"]

_MAX_TIMEOUT_MS = 2**31 - 1
_UV_EBADF = -errno.EBADF  # libuv's codes are minus errno on Unix


class LibuvSelector(selectors._BaseSelectorImpl):
    """A selector whose poll is a libuv iteration of pystream's C core.

    ``selectors._BaseSelectorImpl`` keeps the keys (fd lookup, KeyError and
    ValueError for bad registrations); this class keeps a poll handle per
    key in step with them.  As with asyncio's epoll selector, a regular
    file is refused (``PermissionError``).
    """

    # The base class's own state and lookup, which typeshed leaves out.
    _fd_to_key: dict[int, selectors.SelectorKey]
    _fileobj_lookup: Callable[[Any], int]

    def __init__(self) -> None:
        super().__init__()
        out = ffi.new("ps_loop_t **")
        err = lib.ps_loop_new(out)
        if err < 0:
            raise oserror(err)
        self._ptr: Any = out[0]
        self._polls: dict[int, Any] = {}  # fd -> its ps_poll_t
        self._out = ffi.new("ps_poll_t **")
        self._ready = ffi.new("ps_poll_ready_t **")
        self.bridge: Optional[Bridge] = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand the libuv loop to loop's bridge: pystream's objects made on
        loop live in it."""
        self.bridge = _bridges[loop] = Bridge(loop, self._ptr)

    def _loop_ptr(self) -> Any:
        if self._ptr is None or (self.bridge is not None and self.bridge.closed):
            raise RuntimeError("the selector is closed")
        return self._ptr

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        ptr = self._loop_ptr()
        key = super().register(fileobj, events, data)
        err = lib.ps_poll_open(ptr, key.fd, events, self._out)
        if err < 0:
            super().unregister(fileobj)
            raise oserror(err)
        self._polls[key.fd] = self._out[0]
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = super().unregister(fileobj)
        poll = self._polls.pop(key.fd)
        if self._ptr is not None and not (self.bridge is not None and self.bridge.closed):
            lib.ps_poll_close(poll)
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        try:
            key = self._fd_to_key[self._fileobj_lookup(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        if events != key.events:
            if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
                raise ValueError(f"Invalid events: {events!r}")
            ptr = self._loop_ptr()
            err = lib.ps_poll_modify(self._polls[key.fd], events)
            if err < 0 and err != _UV_EBADF and not events & ~key.events:
                # Watching less must not fail where it can be helped:
                # asyncio does it from done callbacks (remove_reader), where
                # an error only reaches the exception handler, and a poll
                # left watching a ready writability would wake every pass.
                # libuv's start fails for an fd number another handle took
                # (a stream opened on the fd): a new poll watches a
                # duplicate then.
                err = self._reopen(ptr, fileobj, key.fd, events)
            if err < 0:
                raise oserror(err)
            key = key._replace(events=events, data=data)
            self._fd_to_key[key.fd] = key
        elif data != key.data:
            key = key._replace(data=data)
            self._fd_to_key[key.fd] = key
        return key

    def _reopen(self, ptr: Any, fileobj: Any, fd: int, events: int) -> int:
        """Replaces fd's poll with a new one watching events; if that
        fails, fd is no longer registered."""
        lib.ps_poll_close(self._polls.pop(fd))
        err = lib.ps_poll_open(ptr, fd, events, self._out)
        if err < 0:
            super().unregister(fileobj)
            return int(err)
        self._polls[fd] = self._out[0]
        return 0

    def select(self, timeout: Optional[float] = None) -> list[tuple[selectors.SelectorKey, int]]:
        ptr = self._ptr
        bridge = self.bridge
        assert bridge is not None, "attach() was not called"
        if ptr is None or bridge.closed:
            raise RuntimeError("the selector is closed")
        if timeout is None:
            ms = -1
        elif timeout <= 0:
            ms = 0
        else:
            # Rounded up: a wait that ends before asyncio's timer is due
            # would only make it call again with a sliver of a timeout.
            ms = min(math.ceil(timeout * 1e3), _MAX_TIMEOUT_MS)
        n = lib.ps_loop_run_once(ptr, ms, bridge._events)
        if n < 0:
            # Only out of memory, before the iteration ran: nothing is lost,
            # and the loop's next iteration tries again.  Reported, not
            # raised: an exception from select would stop the whole loop.
            bridge.loop.call_exception_handler(
                {"message": "pystream's loop is out of memory", "exception": oserror(n)}
            )
            return []
        bridge.passes += 1
        if n:
            # pystream's events first: keys a task unregisters meanwhile
            # (on PyPy the bridge resumes tasks here) are left out below.
            ready = bridge.resolve(n)
            if ready:
                bridge.resume(ready)
        m = lib.ps_loop_polls(ptr, self._ready)
        if not m:
            return []
        ready = self._ready[0]
        fd_to_key = self._fd_to_key
        result = []
        for i in range(m):
            record = ready[i]
            key = fd_to_key.get(record.fd)
            if key is not None:
                mask = record.events & key.events
                if mask:
                    result.append((key, mask))
        return result

    def close(self) -> None:
        if self.bridge is not None:
            self.bridge.close()  # every handle, polls included; idempotent
        elif self._ptr is not None:
            err = lib.ps_loop_close(self._ptr)
            if err < 0:  # pragma: no cover - a handle libuv still uses
                raise oserror(err)
        self._ptr = None
        self._polls.clear()
        super().close()


class EventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector event loop whose only poll is pystream's libuv loop."""

    # The base classes' self-pipe end, signal handlers and ready queue
    # (not in typeshed).
    _csock: socket.socket
    _signal_handlers: dict[int, Any]
    _ready: collections.deque[asyncio.Handle]
    _debug: bool

    def __init__(self) -> None:
        selector = LibuvSelector()
        try:
            super().__init__(selector)  # watches its self-pipe: may fail
        except BaseException:
            for sock in (getattr(self, "_ssock", None), getattr(self, "_csock", None)):
                if sock is not None:
                    sock.close()
            selector.close()
            self._closed = True  # nothing left to close (nor to warn of)
            raise
        selector.attach(self)

    # A transport's fd that cannot be watched fails the transport.  asyncio
    # watches from a transport's callbacks, some scheduled with call_soon
    # (its first read): an error there would only reach the exception
    # handler, and the transport's user would wait forever.
    def _add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> Any:
        try:
            return super()._add_reader(fd, callback, *args)  # type: ignore[misc]
        except OSError as exc:
            if not _fail_transport(callback, exc):
                raise
            return None

    def _add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any) -> Any:
        try:
            return super()._add_writer(fd, callback, *args)  # type: ignore[misc]
        except OSError as exc:
            if not _fail_transport(callback, exc):
                raise
            return None

    def call_soon(  # type: ignore[override]
        self, callback: Callable[..., Any], *args: Any, context: Optional[Any] = None
    ) -> asyncio.Handle:
        # Every task wake-up comes through here (a Future's set_result calls
        # it).  Outside debug mode BaseEventLoop.call_soon checks only that
        # the loop is open, then makes and queues the Handle: the same, in
        # one frame instead of three.  Debug mode (thread and callback
        # checks, the source traceback) and a closed loop take its path.
        if self._debug or self._closed:
            handle = super().call_soon(callback, *args, context=context)
            if handle._source_traceback:  # type: ignore[attr-defined]
                # Where the caller called, as asyncio's: not this frame.
                del handle._source_traceback[-1]  # type: ignore[attr-defined]
            return handle
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def run_forever(self) -> None:
        # libuv retries epoll_wait after EINTR, so a signal whose Python
        # handler should run (Ctrl-C's KeyboardInterrupt) must also write to
        # a watched fd to end the wait: the wake-up fd that add_signal_handler
        # sets, set here too while the loop runs in the main thread.
        installed = False
        if (
            threading.current_thread() is threading.main_thread()
            and not self.is_closed()
            and not self.is_running()  # (run_forever raises then)
        ):
            try:
                previous = signal.set_wakeup_fd(self._csock.fileno(), warn_on_full_buffer=False)
            except (ValueError, OSError):  # pragma: no cover - an odd host
                previous = -2
            if previous == -1:
                installed = True
            elif previous != -2:
                signal.set_wakeup_fd(previous)  # someone else's: keep it
        try:
            super().run_forever()
        finally:
            # Unless a signal handler of this loop needs it from now on.
            if installed and not self._signal_handlers:
                signal.set_wakeup_fd(-1)


def _fail_transport(callback: Callable[..., Any], exc: OSError) -> bool:
    """Fails the transport whose method callback is with exc, as asyncio
    fails one whose socket call fails: its protocol's connection_lost gets
    exc (a stream's reader and drain raise it).  False if callback is not a
    transport's."""
    transport = getattr(callback, "__self__", None)
    fatal = getattr(transport, "_fatal_error", None)
    if not isinstance(transport, asyncio.BaseTransport) or fatal is None:
        return False
    fatal(exc, "Fatal error: pystream's loop cannot watch the transport's fd")
    return True
