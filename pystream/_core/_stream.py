"""``CoreStream``: the Stream API on one C stream handle.

Part of the core layer, the only Python code that calls the C core: every
``ps_stream_*`` call on an open stream is in this module or its reading
helpers (opening one is in ``_connect``), each return code checked there,
and each call that may change what libuv watches followed there by the
bridge's poke or a scheduled pass.
"""

from __future__ import annotations

import asyncio
from threading import get_ident
from typing import Any, Optional, Union

from .._base._checkpoint import CHECKPOINT, task_of
from .._base._errors import ConflictDetector
from .._base._readers import DEFAULT_RECEIVE_SIZE, MAX_RECEIVE_SIZE, check_max_bytes
from .._base._state import OPEN, StreamState, closed_during_call, closed_error, loop_closed
from .._binding import UV_EOF, ffi, lib, oserror
from ..abc import Stream
from ._common import Address, check, decode_address, warn_unclosed
from ._handle import Handle
from ._loop import Bridge
from ._reading import CReadingMixin
from ._sending import CSendingMixin, byte_view

__all__ = ["CoreStream", "KIND_TCP", "KIND_PIPE", "wait_closed"]

KIND_TCP: int = lib.PS_KIND_TCP
KIND_PIPE: int = lib.PS_KIND_PIPE


class CoreStream(CReadingMixin, CSendingMixin, Stream):
    """A stream on one C stream handle (``ps_stream_t``): the whole Stream
    API, with every C call it needs behind a method of its own.

    Subclasses (``SocketStream``; pipe streams to come) add what their kind
    has, through the ``_c_*`` methods, never by calling C themselves.  The
    hot paths (``send_all``, ``receive_some``) inline their C calls and the
    bridge's poke: every call saved there is measurable.  Received bytes
    wait in a buffer owned by the C core; reading pauses while it holds
    256 KiB and no call asks for more.
    """

    __slots__ = (
        "_h",
        "_bridge",
        "_kind",
        "_state",
        "_send_conflict",
        "_receive_conflict",
        "_limit",
        "__weakref__",
    )

    def __init__(self, handle: Handle, kind: int) -> None:
        self._h = handle
        self._bridge: Bridge = handle.bridge
        self._kind = kind
        self._state = StreamState()  # the rules: pystream/_base/_state.py
        self._send_conflict = ConflictDetector("another task is already sending on this stream")
        self._receive_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )
        self._writable_fd = -1

    def __del__(self) -> None:
        # (Its own attributes, which a failed __init__ may not have set.)
        state = getattr(self, "_state", None)
        handle = getattr(self, "_h", None)
        warn_unclosed(self, handle, state is None or state.closed, lib.ps_stream_close)

    # -- state checks -----------------------------------------------------
    def _check_open(self) -> None:
        self._check_still_open()
        self._bridge.check_loop()

    def _check_still_open(self) -> None:
        """_check_open without the loop check: after an await in a call
        that made it (the loop cannot change meanwhile)."""
        if self._state.receive is not OPEN:
            raise self._state.receive_error()
        if self._h.ptr is None:
            raise loop_closed()

    def _check_send(self) -> None:
        self._check_still_sendable()
        self._bridge.check_loop()

    def _check_still_sendable(self) -> None:
        self._check_still_open()
        self._state.check_send()

    def _broken_send(self, code: int) -> Exception:
        return self._state.send_failed(oserror(code))

    def _broken_receive(self, code: int) -> Exception:
        return self._state.receive_failed(oserror(code))

    # -- sending ----------------------------------------------------------
    async def send_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Send all of ``data`` (any bytes-like object); return once the
        kernel has taken all of it, waiting as long as the peer does not
        read.

        The caller may reuse its buffer once this returns.  ``b""`` sends
        nothing and is not an end of file.  ``write`` is another name for
        it.  A checkpoint.

        Raises:
            pystream.BusyResourceError: another task is already in
                ``send_all``, ``wait_send_all_might_not_block`` or
                ``send_eof`` on this stream.
            pystream.ClosedResourceError: the stream was closed (or its
                sending side by ``send_eof``) before or during the call.
            pystream.BrokenResourceError: the peer reset the connection or
                closed it with our data unread; ``__cause__`` is the
                ``OSError``.  Sending stays broken.
            TypeError: ``data`` is not bytes-like.
            RuntimeError: the call came from another event loop or thread
                than the stream's.

        Cancellation:
            All of the data was sent or none of it, and the stream stays
            usable: once the kernel has taken part of it, the rest stays
            queued and goes out, in order, before anything sent later.
            Closing the stream before then drops that rest.
        """
        # The hot path: the conflict detector is used by hand and the state
        # and loop checks are inlined (every call saved here is measurable);
        # the slow helpers raise the errors.
        if type(data) is bytes:
            size = len(data)
            view: Any = data
        else:
            view = byte_view(data)
            size = view.nbytes
        busy = self._send_conflict
        if busy.held:
            raise busy.busy()
        busy.held = True
        try:
            h = self._h
            if self._state.send is not OPEN or h.ptr is None:
                self._check_still_sendable()
            bridge = self._bridge
            if get_ident() != bridge.thread or task_of(bridge.loop) is None:
                bridge.check_loop()
            await bridge.checkpoint
            if self._state.send is not OPEN or h.ptr is None:
                self._check_still_sendable()
            if not size:
                return
            if view is data:  # bytes go to C as they are
                written = lib.ps_stream_try_write(h.ptr, data, size)
                if written == size:
                    return  # the usual case: the kernel took it all
                await self._send(data, view, size, written)
            else:  # pinned for the call (PyPy's GC may move a bytearray)
                ptr = ffi.from_buffer(view)
                written = lib.ps_stream_try_write(h.ptr, ptr, size)
                ffi.release(ptr)
                if written == size:
                    return
                await self._send(data, view, size, written)
        finally:
            busy.held = False

    write = send_all

    def try_send(self, data: bytes) -> int:
        """Write what the kernel takes of data at once: no checkpoint, no
        wait (``SendStream.try_send``).  The door for a layer above whose
        own call was the checkpoint (``TLSStream``'s flush); it sends the
        rest, if any, with ``send_all``.  Returns the bytes written: 0
        whenever ``send_all`` would do more than write (busy, closed,
        broken, queued writes, another loop or thread), so that its
        ``send_all`` raises or waits.
        """
        h = self._h
        if (
            self._send_conflict.held
            or self._state.send is not OPEN
            or h.ptr is None
            or get_ident() != self._bridge.thread
            or task_of(self._bridge.loop) is None
        ):
            return 0
        written: int = lib.ps_stream_try_write(h.ptr, data, len(data))
        return written if written > 0 else 0

    # -- receiving --------------------------------------------------------
    async def _wait_readable(self, want: int) -> None:
        """Return once want bytes are buffered or reading has ended.
        Always a checkpoint, exactly once."""
        self._check_open()
        h = self._h
        if lib.ps_stream_want_read(h.ptr, want):
            await self._bridge.checkpoint
        else:
            self._bridge.poke()
            waiter = h.arm_recv_waiter()
            try:
                await waiter
            finally:
                h.recv_waiter = None
            self._bridge.checkpoint.note_resumed()
        self._check_still_open()

    def _take(self, n: int) -> bytes:
        """Take up to n buffered bytes; b"" at EOF; raise if broken."""
        out = self._bridge.out
        got = lib.ps_stream_take_ptr(self._h.ptr, n, out)
        if got > 0:
            data: bytes = ffi.unpack(out[0], got)
            self._bridge.poke()
            return data
        if got == UV_EOF:
            return b""
        raise self._broken_receive(got)

    async def receive_some(self, max_bytes: Optional[int] = None) -> bytes:
        """Return 1 to ``max_bytes`` (default 65536) bytes from the
        stream's receive buffer, or ``b""`` only at the end of file,
        waiting for data if there is none.  A checkpoint, also when data is
        already buffered.

        Raises:
            pystream.BusyResourceError: another task is already receiving
                on this stream.
            pystream.ClosedResourceError: the stream was closed, before or
                during the call.
            pystream.BrokenResourceError: the peer reset the connection;
                ``__cause__`` is the ``OSError``.
            ValueError: ``max_bytes`` is less than 1.
            TypeError: ``max_bytes`` is not an integer or None.
            RuntimeError: another event loop or thread than the stream's.

        Cancellation:
            Nothing is lost: bytes leave the buffer only when a call returns
            them.
        """
        # The hot path: _check_open, _wait_readable(1), _take and the
        # bridge's poke inlined, the conflict detector used by hand.
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        elif type(max_bytes) is not int or not 1 <= max_bytes <= MAX_RECEIVE_SIZE:
            max_bytes = check_max_bytes(max_bytes)
        busy = self._receive_conflict
        if busy.held:
            raise busy.busy()
        busy.held = True
        try:
            h = self._h
            if self._state.receive is not OPEN or h.ptr is None:
                self._check_still_open()
            bridge = self._bridge
            if get_ident() != bridge.thread or task_of(bridge.loop) is None:
                bridge.check_loop()
            if lib.ps_stream_want_read(h.ptr, 1):
                await bridge.checkpoint
            else:
                if not bridge.pass_pending and lib.ps_loop_dirty(bridge.ptr):
                    bridge.schedule_pass()
                waiter: Any = h.spare_waiter  # h.arm_recv_waiter(), inlined
                if waiter is None:
                    waiter = bridge.new_future()
                else:
                    waiter.rearm()
                h.recv_waiter = waiter
                try:
                    await waiter
                finally:
                    h.recv_waiter = None
                bridge.checkpoint.note_resumed()
            if self._state.receive is not OPEN or h.ptr is None:
                self._check_still_open()
            out = bridge.out
            got = lib.ps_stream_take_ptr(h.ptr, max_bytes, out)
            if got > 0:
                data: bytes = ffi.unpack(out[0], got)
                if not bridge.pass_pending and lib.ps_loop_dirty(bridge.ptr):
                    bridge.schedule_pass()
                return data
            if got == UV_EOF:
                return b""
            raise self._broken_receive(got)
        finally:
            busy.held = False

    # -- closing ----------------------------------------------------------
    async def aclose(self) -> None:
        """Close gracefully and at once: what ``send_all`` handed over is
        already in the kernel, which delivers it, then the end of file.  It
        never waits for the peer.

        Idempotent.  Calls blocked in other tasks wake with
        ``ClosedResourceError``; later calls raise it.  Received data not
        yet read is discarded (on a socket, the kernel then resets the
        connection: the peer's loss, as with any socket).  What a
        ``send_all`` that did not return had not yet handed to the kernel
        is dropped.

        Raises:
            RuntimeError: another event loop or thread than the stream's
                (the stream is not closed then).

        Cancellation:
            The stream is closed all the same: only the wait for the C core
            to release it is cut short.
        """
        if not self._state.closed:
            if self._h.ptr is not None:
                self._bridge.check_loop()
            self._close_now()
        await wait_closed(self._h)

    def _send_guard(self) -> ConflictDetector:
        return self._send_conflict

    def _close_now(self) -> None:
        """Start closing at once.  What the kernel already took is still
        delivered, then a FIN: no reset, unless the caller set SO_LINGER to
        0 (or the socket has unread incoming data, the kernel's rule)."""
        if not self._state.close():
            return
        h = self._h
        self._stop_watching_fd()
        h.wake_all(closed_during_call())
        if h.ptr is not None:
            lib.ps_stream_close(h.ptr)
            self._bridge.schedule_pass()

    # -- the handle's other C calls ----------------------------------------
    def _ptr(self) -> Any:
        if self._state.closed or self._h.ptr is None:
            raise closed_error()
        return self._h.ptr

    def fileno(self) -> int:
        """The file descriptor, or -1 once closed."""
        if self._state.closed or self._h.ptr is None:
            return -1
        return int(lib.ps_stream_fileno(self._h.ptr))

    def _c_setsockopt(self, level: int, option: int, value: Union[int, bytes]) -> None:
        if isinstance(value, int):
            buf: Any = ffi.new("int *", value)
            size = ffi.sizeof("int")
        else:
            buf = ffi.from_buffer(bytes(value))
            size = len(buf)
        check(lib.ps_stream_setsockopt(self._ptr(), level, option, buf, size))

    def _c_getsockopt(self, level: int, option: int, buflen: int) -> Union[int, bytes]:
        size = ffi.new("size_t *", buflen if buflen > 0 else ffi.sizeof("int"))
        buf = ffi.new("char[]", size[0])
        check(lib.ps_stream_getsockopt(self._ptr(), level, option, buf, size))
        if buflen > 0:
            return bytes(ffi.unpack(buf, size[0]))
        return int(ffi.cast("int *", buf)[0])

    def _c_address(self, peer: bool) -> Address:
        out = ffi.new("ps_address_t *")
        check(lib.ps_stream_address(self._ptr(), 1 if peer else 0, out))
        return decode_address(out)


async def wait_closed(h: Handle) -> None:
    """Wait for the C close completion of a handle whose close started."""
    if h.ptr is None:
        await CHECKPOINT
        return
    waiter = h.close_waiter
    if waiter is None:
        waiter = h.close_waiter = h.bridge.new_future()
    # Shielded: one cancelled closer must not cancel the others' wait.
    await asyncio.shield(waiter)
