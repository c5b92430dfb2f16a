"""SocketStream and SocketListener: TCP and Unix sockets on the C core."""

from __future__ import annotations

import asyncio
import errno
import operator
import os
import socket
import warnings
from threading import get_ident
from typing import Any, Optional, Tuple, Union

from ._binding import UV_EAGAIN, UV_ECANCELED, UV_EOF, ffi, lib, oserror
from ._bridge import Bridge, Handle, get_bridge
from ._errors import BrokenResourceError, ClosedResourceError, ConflictDetector
from ._readers import DEFAULT_RECEIVE_SIZE, check_max_bytes, check_readuntil_args
from ._util import CHECKPOINT
from .abc import HalfCloseableStream, Listener

__all__ = ["SocketStream", "SocketListener", "DEFAULT_RECEIVE_SIZE"]

_KIND_TCP: int = lib.PS_KIND_TCP
_KIND_PIPE: int = lib.PS_KIND_PIPE

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

Address = Union[Tuple[Any, ...], str, bytes]


def kind_for(sock: socket.socket) -> int:
    """The C stream kind for a socket, or ValueError."""
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"pystream needs a SOCK_STREAM socket, not {sock!r}")
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        return _KIND_TCP
    if sock.family == socket.AF_UNIX:
        return _KIND_PIPE
    raise ValueError(f"unsupported socket family {sock.family!r}")


def _address(addr: Any) -> Address:
    """A ps_address_t as Python's socket module reports addresses."""
    raw = ffi.unpack(addr.host, addr.host_len)
    if addr.family == socket.AF_INET:
        return (raw.decode("ascii"), addr.port)
    if addr.family == socket.AF_INET6:
        return (raw.decode("ascii"), addr.port, addr.flowinfo, addr.scope_id)
    if raw[:1] == b"\0":
        return bytes(raw)  # an abstract Unix name
    return os.fsdecode(raw)


def _warn_unclosed(owner: Any, close: Any, *args: Any) -> None:
    """From ``__del__`` of an object nobody closed: warn, and have its loop
    close the C handle (``__del__`` may run in any thread)."""
    handle = getattr(owner, "_h", None)
    if handle is None or owner._closed or handle.ptr is None:
        return
    warnings.warn(f"unclosed {owner!r}", ResourceWarning, stacklevel=2, source=owner)

    def close_handle() -> None:
        if handle.ptr is not None and not handle.bridge.closed:
            close(handle.ptr, *args)
            handle.bridge.schedule_pass()

    try:
        handle.bridge.loop.call_soon_threadsafe(close_handle)
    except RuntimeError:
        pass  # the loop is closed; its teardown freed the handle


class SocketStream(HalfCloseableStream):
    """A connected TCP or Unix socket; both directions on one object.

    Made by ``open_tcp_stream``, ``open_unix_stream``, ``SocketListener.accept``,
    ``open_stream_pair`` and ``wrap_socket``, not directly.  Received bytes
    wait in a buffer owned by the C core; reading from the socket pauses
    while it holds 256 KiB and no call asks for more.
    """

    __slots__ = (
        "_h",
        "_bridge",
        "_kind",
        "_closed",
        "_eof_sent",
        "_send_error",
        "_send_conflict",
        "_recv_conflict",
        "_out",
        "_writable_fd",
        "__weakref__",
    )

    def __init__(self, handle: Handle, kind: int) -> None:
        self._h = handle
        self._bridge: Bridge = handle.bridge
        self._kind = kind
        self._closed = False
        self._eof_sent = False
        self._send_error: Optional[OSError] = None
        self._send_conflict = ConflictDetector(
            "another task is already sending on this stream"
        )
        self._recv_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )
        self._out = ffi.new("const char **")
        self._writable_fd = -1

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self.fileno()}"
        kind = "tcp" if self._kind == _KIND_TCP else "unix"
        return f"<pystream.SocketStream {kind} {state}>"

    def __del__(self) -> None:
        _warn_unclosed(self, lib.ps_stream_close)

    # -- state checks -----------------------------------------------------
    def _check_open(self) -> None:
        self._check_still_open()
        self._bridge.check_loop()

    def _check_still_open(self) -> None:
        """_check_open without the loop check: after an await in a call
        that made it (the loop cannot change meanwhile)."""
        if self._closed:
            raise ClosedResourceError("this stream was closed")
        if self._h.ptr is None:
            raise ClosedResourceError("the event loop of this stream was closed")

    def _check_send(self) -> None:
        self._check_still_sendable()
        self._bridge.check_loop()

    def _check_still_sendable(self) -> None:
        self._check_still_open()
        if self._eof_sent:
            raise ClosedResourceError("send_eof() closed this stream's send side")
        if self._send_error is not None:
            raise BrokenResourceError(
                "the stream broke while sending"
            ) from self._send_error

    def _broken_send(self, code: int) -> BrokenResourceError:
        if self._send_error is None:
            self._send_error = oserror(code)
        exc = BrokenResourceError("the stream broke while sending")
        exc.__cause__ = self._send_error
        return exc

    @staticmethod
    def _broken_receive(code: int) -> BrokenResourceError:
        exc = BrokenResourceError("the stream broke while receiving")
        exc.__cause__ = oserror(code)
        return exc

    # -- sending ----------------------------------------------------------
    async def send_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        # The hot path: the conflict detector is used by hand and the state
        # and loop checks are inlined (every call saved here is measurable);
        # the slow helpers raise the errors.
        if type(data) is bytes:
            size = len(data)
            view: Any = data
        else:
            view = _byte_view(data)
            size = view.nbytes
        busy = self._send_conflict
        if busy.held:
            raise busy.busy()
        busy.held = True
        try:
            h = self._h
            if self._closed or self._eof_sent or self._send_error or h.ptr is None:
                self._check_still_sendable()
            bridge = self._bridge
            if get_ident() != bridge.thread or not bridge.loop.is_running():
                bridge.check_loop()
            await CHECKPOINT
            if self._closed or self._eof_sent or self._send_error or h.ptr is None:
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

    async def _send(self, data: Any, view: Any, size: int, written: int) -> None:
        """The rest of send_all, when the kernel did not take everything at
        once: written bytes went (or written is an error)."""
        h = self._h
        ptr = data if view is data else ffi.from_buffer(view)
        try:
            if written < 0:
                raise self._broken_send(written)
            # The rest waits in libuv's queue, which keeps a pointer into the
            # buffer: hold it (pinned, through from_buffer) until the write's
            # completion, even if this call is cancelled.
            owner = ffi.from_buffer(view) if ptr is data else ptr
            err = lib.ps_stream_write(h.ptr, owner + written, size - written)
            if err < 0:
                if owner is not ptr:
                    ffi.release(owner)
                raise self._broken_send(err)
            h.pending_writes.append(owner)
            ptr = None
        finally:
            if ptr is not None and ptr is not data:
                ffi.release(ptr)
        self._bridge.schedule_pass()
        waiter = h.send_waiter = self._bridge.new_future()
        try:
            await waiter
        finally:
            h.send_waiter = None
        if h.write_status:
            raise self._broken_send(h.write_status)

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_conflict:
            self._check_send()
            h = self._h
            if h.pending_writes:
                waiter = h.send_waiter = self._bridge.new_future()
                try:
                    await waiter
                finally:
                    h.send_waiter = None
            else:
                await CHECKPOINT
            self._check_still_sendable()
            if h.write_status:
                raise self._broken_send(h.write_status)
            if lib.ps_stream_writable(h.ptr) == 0:
                await self._wait_fd_writable()

    async def _wait_fd_writable(self) -> None:
        """The kernel's send buffer is full: let the asyncio loop watch the
        socket for room (libuv only watches it while a write is queued)."""
        h = self._h
        loop = self._bridge.loop
        fd = lib.ps_stream_fileno(h.ptr)
        waiter = h.send_waiter = loop.create_future()
        loop.add_writer(fd, _resolve, waiter)
        self._writable_fd = fd
        try:
            await waiter
        finally:
            h.send_waiter = None
            self._stop_watching_fd()

    def _stop_watching_fd(self) -> None:
        if self._writable_fd >= 0:
            self._bridge.loop.remove_writer(self._writable_fd)
            self._writable_fd = -1

    async def send_eof(self) -> None:
        with self._send_conflict:
            self._check_open()
            if self._eof_sent:
                await CHECKPOINT
                return
            self._eof_sent = True
            h = self._h
            err = lib.ps_stream_shutdown(h.ptr)
            if err < 0:
                raise self._broken_send(err)
            self._bridge.schedule_pass()
            waiter = h.op_waiter = self._bridge.new_future()
            try:
                status = await waiter
            finally:
                h.op_waiter = None
            if status < 0 and status != UV_ECANCELED:
                raise self._broken_send(status)

    # -- receiving --------------------------------------------------------
    async def _wait_readable(self, want: int) -> None:
        """Return once want bytes are buffered or reading has ended.
        Always a checkpoint, exactly once."""
        self._check_open()
        h = self._h
        if lib.ps_stream_want_read(h.ptr, want):
            await CHECKPOINT
        else:
            self._bridge.poke()
            waiter = h.arm_recv_waiter()
            try:
                await waiter
            finally:
                h.recv_waiter = None
        self._check_still_open()

    def _take(self, n: int) -> bytes:
        """Take up to n buffered bytes; b"" at EOF; raise if broken."""
        got = lib.ps_stream_take_ptr(self._h.ptr, n, self._out)
        if got > 0:
            data: bytes = ffi.unpack(self._out[0], got)
            self._bridge.poke()
            return data
        if got == UV_EOF:
            return b""
        raise self._broken_receive(got)

    async def receive_some(self, max_bytes: Optional[int] = None) -> bytes:
        # The hot path: _check_open, _wait_readable(1), _take and the
        # bridge's poke inlined, the conflict detector used by hand.
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        elif type(max_bytes) is not int or max_bytes < 1:
            max_bytes = check_max_bytes(max_bytes)
        busy = self._recv_conflict
        if busy.held:
            raise busy.busy()
        busy.held = True
        try:
            h = self._h
            if self._closed or h.ptr is None:
                self._check_still_open()
            bridge = self._bridge
            if get_ident() != bridge.thread or not bridge.loop.is_running():
                bridge.check_loop()
            if lib.ps_stream_want_read(h.ptr, 1):
                await CHECKPOINT
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
            if self._closed or h.ptr is None:
                self._check_still_open()
            got = lib.ps_stream_take_ptr(h.ptr, max_bytes, self._out)
            if got > 0:
                data: bytes = ffi.unpack(self._out[0], got)
                if not bridge.pass_pending and lib.ps_loop_dirty(bridge.ptr):
                    bridge.schedule_pass()
                return data
            if got == UV_EOF:
                return b""
            raise self._broken_receive(got)
        finally:
            busy.held = False

    async def receive_into(self, buffer: Union[bytearray, memoryview]) -> int:
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError("receive_into needs a writable buffer")
        if not view.c_contiguous:
            raise ValueError("receive_into needs a contiguous buffer")
        if view.nbytes == 0:
            raise ValueError("receive_into needs a non-empty buffer")
        with self._recv_conflict:
            await self._wait_readable(1)
            target = ffi.from_buffer(view, require_writable=True)
            try:
                got = lib.ps_stream_take_into(self._h.ptr, target, view.nbytes)
            finally:
                ffi.release(target)
            if got > 0:
                self._bridge.poke()
                return int(got)
            if got == UV_EOF:
                return 0
            raise self._broken_receive(got)

    async def readexactly(self, n: int) -> bytes:
        n = operator.index(n)
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        with self._recv_conflict:
            await self._wait_readable(max(n, 1))
            ptr = self._h.ptr
            if lib.ps_stream_buffered(ptr) >= n:
                return self._take(n) if n else b""
            status = lib.ps_stream_read_status(ptr)
            if status != UV_EOF:
                raise self._broken_receive(status)
            partial = self._take(n)
            raise asyncio.IncompleteReadError(partial, n)

    async def readuntil(
        self, separator: bytes = b"\n", *, limit: int = 65536
    ) -> bytes:
        sep, limit = check_readuntil_args(separator, limit)
        with self._recv_conflict:
            offset = 0
            want = len(sep)
            while True:
                await self._wait_readable(want)
                ptr = self._h.ptr
                found = lib.ps_stream_find(ptr, sep, len(sep), offset)
                if found >= 0:
                    if found > limit:
                        raise asyncio.LimitOverrunError(
                            "Separator is found, but chunk is longer than limit",
                            found,
                        )
                    return self._take(found + len(sep))
                buffered = lib.ps_stream_buffered(ptr)
                offset = max(0, buffered + 1 - len(sep))
                if offset > limit:
                    raise asyncio.LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit",
                        offset,
                    )
                status = lib.ps_stream_read_status(ptr)
                if status == UV_EOF:
                    partial = self._take(buffered) if buffered else b""
                    raise asyncio.IncompleteReadError(partial, None)
                if status < 0:
                    raise self._broken_receive(status)
                want = buffered + 1

    async def read(self, n: int = -1) -> bytes:
        n = operator.index(n)
        with self._recv_conflict:
            if n == 0:
                self._check_open()
                await CHECKPOINT
                return b""
            if n > 0:
                await self._wait_readable(1)
                return self._take(n)
            # Everything stays in the C buffer until EOF, then goes out in
            # one piece: cancelled on the way, the call has taken nothing.
            want = 1
            while True:
                await self._wait_readable(want)
                ptr = self._h.ptr
                status = lib.ps_stream_read_status(ptr)
                buffered = lib.ps_stream_buffered(ptr)
                if status == UV_EOF:
                    return self._take(buffered) if buffered else b""
                if status < 0:
                    raise self._broken_receive(status)
                want = buffered + 1

    # -- closing ----------------------------------------------------------
    async def aclose(self) -> None:
        """Close gracefully: what ``send_all`` took is already in the kernel,
        which delivers it before the FIN.  Never waits for the peer.  Calls
        blocked in other tasks wake with ``ClosedResourceError``.  If
        cancelled, the stream is closed all the same."""
        if not self._closed:
            if self._h.ptr is not None:
                self._bridge.check_loop()
            self._close_now()
        await _wait_closed(self._h)

    def _close_now(self) -> None:
        """Start closing at once.  What the kernel already took is still
        delivered, then a FIN: no reset, unless the caller set SO_LINGER to
        0 (or the socket has unread incoming data, the kernel's rule)."""
        if self._closed:
            return
        self._closed = True
        h = self._h
        self._stop_watching_fd()
        h.wake_all(ClosedResourceError("the stream was closed during this call"))
        if h.ptr is not None:
            lib.ps_stream_close(h.ptr)
            self._bridge.schedule_pass()

    # -- socket -----------------------------------------------------------
    def _ptr(self) -> Any:
        if self._closed or self._h.ptr is None:
            raise ClosedResourceError("this stream was closed")
        return self._h.ptr

    def fileno(self) -> int:
        """The socket's file descriptor, or -1 once closed."""
        if self._closed or self._h.ptr is None:
            return -1
        return int(lib.ps_stream_fileno(self._h.ptr))

    def setsockopt(self, level: int, option: int, value: Union[int, bytes]) -> None:
        """Like ``socket.setsockopt``: value is an int or a bytes-like."""
        if isinstance(value, int):
            buf: Any = ffi.new("int *", value)
            size = ffi.sizeof("int")
        else:
            buf = ffi.from_buffer(bytes(value))
            size = len(buf)
        err = lib.ps_stream_setsockopt(self._ptr(), level, option, buf, size)
        if err < 0:
            raise oserror(err)

    def getsockopt(self, level: int, option: int, buflen: int = 0) -> Union[int, bytes]:
        """Like ``socket.getsockopt``: an int, or bytes if buflen > 0."""
        if buflen < 0:
            raise ValueError("getsockopt: buflen must not be negative")
        size = ffi.new("size_t *", buflen if buflen > 0 else ffi.sizeof("int"))
        buf = ffi.new("char[]", size[0])
        err = lib.ps_stream_getsockopt(self._ptr(), level, option, buf, size)
        if err < 0:
            raise oserror(err)
        if buflen > 0:
            return bytes(ffi.unpack(buf, size[0]))
        return int(ffi.cast("int *", buf)[0])

    def _address(self, peer: int) -> Address:
        out = ffi.new("ps_address_t *")
        err = lib.ps_stream_address(self._ptr(), peer, out)
        if err < 0:
            raise oserror(err)
        return _address(out)

    @property
    def local_address(self) -> Address:
        """As ``socket.getsockname()`` returns it."""
        return self._address(0)

    @property
    def remote_address(self) -> Address:
        """As ``socket.getpeername()`` returns it."""
        return self._address(1)


def _resolve(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_result(None)


def _byte_view(data: Any) -> memoryview:
    """A flat byte view of a bytes-like object, or TypeError."""
    if isinstance(data, str):
        raise TypeError("send_all needs bytes-like data, not str")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(
            f"send_all needs bytes, bytearray or memoryview, not "
            f"{type(data).__name__}"
        ) from None
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


async def _wait_closed(h: Handle) -> None:
    """Wait for the C close completion of a handle whose close started."""
    if h.ptr is None:
        await CHECKPOINT
        return
    waiter = h.close_waiter
    if waiter is None:
        waiter = h.close_waiter = h.bridge.new_future()
    # Shielded: one cancelled closer must not cancel the others' wait.
    await asyncio.shield(waiter)


class SocketListener(Listener[SocketStream]):
    """A listening TCP or Unix socket.  Connections are accepted by the C
    core as they arrive and start buffering data at once."""

    __slots__ = (
        "_h",
        "_bridge",
        "_kind",
        "_closed",
        "_conflict",
        "_out",
        "_unlink",
        "__weakref__",
    )

    def __init__(
        self,
        handle: Handle,
        kind: int,
        unlink: Optional[Tuple[str, int, int]] = None,
    ) -> None:
        self._h = handle
        self._bridge = handle.bridge
        self._kind = kind
        self._closed = False
        self._conflict = ConflictDetector("another task is already accepting")
        self._out = ffi.new("ps_stream_t **")
        self._unlink = unlink  # (path, st_dev, st_ino) of our socket file

    @classmethod
    def _from_socket(
        cls, bridge: Bridge, sock: socket.socket, backlog: int
    ) -> "SocketListener":
        """Listen on a bound socket, which the listener then owns."""
        kind = kind_for(sock)
        unlink = None
        if kind == _KIND_PIPE:
            path = sock.getsockname()
            if isinstance(path, str) and path:
                st = os.stat(path)
                unlink = (path, st.st_dev, st.st_ino)
        sock.setblocking(False)
        handle = Handle(bridge)
        out = ffi.new("ps_listener_t **")
        err = lib.ps_listener_open(
            bridge.ptr, sock.detach(), kind, backlog, handle.cdata, out
        )
        if err < 0:
            raise oserror(err)
        bridge.adopt(handle, out[0])
        bridge.schedule_pass()
        return cls(handle, kind, unlink)

    def __repr__(self) -> str:
        state = "closed" if self._closed else repr(self.local_address)
        return f"<pystream.SocketListener {state}>"

    def __del__(self) -> None:
        _warn_unclosed(self, lib.ps_listener_close)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError("this listener was closed")
        if self._h.ptr is None:
            raise ClosedResourceError("the event loop of this listener was closed")
        self._bridge.check_loop()

    async def accept(self) -> SocketStream:
        """The next connection.  Errors about a single connection (it was
        aborted before we took it) are skipped; running out of file
        descriptors raises ``OSError`` (``serve_listeners`` backs off)."""
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
                    return SocketStream(handle, self._kind)
                if err == UV_EAGAIN:
                    waiter = self._h.op_waiter = bridge.new_future()
                    try:
                        await waiter
                    finally:
                        self._h.op_waiter = None
                elif err not in _ACCEPT_SKIP:
                    raise oserror(err)

    async def aclose(self) -> None:
        if not self._closed:
            if self._h.ptr is not None:
                self._bridge.check_loop()
            self._close_now()
        await _wait_closed(self._h)

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        h = self._h
        h.wake_all(ClosedResourceError("the listener was closed during accept"))
        if h.ptr is not None:
            lib.ps_listener_close(h.ptr)
            self._bridge.schedule_pass()
        if self._unlink is not None:
            path, dev, ino = self._unlink
            try:
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    os.unlink(path)
            except OSError:
                pass

    @property
    def local_address(self) -> Address:
        """As ``socket.getsockname()`` returns it."""
        if self._closed or self._h.ptr is None:
            raise ClosedResourceError("this listener was closed")
        out = ffi.new("ps_address_t *")
        err = lib.ps_listener_address(self._h.ptr, out)
        if err < 0:
            raise oserror(err)
        return _address(out)

    def fileno(self) -> int:
        if self._closed or self._h.ptr is None:
            return -1
        return int(lib.ps_listener_fileno(self._h.ptr))


def stream_from_socket(sock: socket.socket) -> SocketStream:
    """Adopt a connected socket (which is detached from sock)."""
    kind = kind_for(sock)
    bridge = get_bridge()
    sock.setblocking(False)
    handle = Handle(bridge)
    out = ffi.new("ps_stream_t **")
    err = lib.ps_stream_open(bridge.ptr, sock.detach(), kind, handle.cdata, out)
    if err < 0:
        raise oserror(err)
    bridge.adopt(handle, out[0])
    bridge.schedule_pass()
    return SocketStream(handle, kind)
