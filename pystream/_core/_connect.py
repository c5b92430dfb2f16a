"""Making core streams: adopting a descriptor, connecting by TCP or to a
Unix socket path."""

from __future__ import annotations

from typing import Any, TypeVar

from .._binding import ffi, lib
from ._common import check
from ._handle import Handle
from ._loop import Bridge, get_bridge
from ._stream import KIND_PIPE, KIND_TCP, CoreStream

__all__ = ["open_fd", "connect_tcp", "connect_pipe"]

S = TypeVar("S", bound=CoreStream)


def open_fd(cls: type[S], fd: int, kind: int) -> S:
    """A cls over fd, a connected non-blocking stream socket (or pipe) that
    it owns from now on (closed here if this fails)."""
    bridge = get_bridge()
    handle = Handle(bridge)
    out = ffi.new("ps_stream_t **")
    check(lib.ps_stream_open(bridge.ptr, fd, kind, handle.cdata, out))
    bridge.adopt(handle, out[0])
    bridge.schedule_pass()
    return cls(handle, kind)


async def _connected(
    cls: type[S], bridge: Bridge, handle: Handle, err: int, out: Any, kind: int
) -> tuple[int, S]:
    """Wait for the connection a ps_*_connect call (which returned err)
    started: (0, stream), or (error code, closed stream)."""
    check(err)
    bridge.adopt(handle, out[0])
    bridge.schedule_pass()
    stream = cls(handle, kind)
    try:
        status = await handle.op.wait(bridge.new_future())
    except BaseException:
        stream._close_now()
        raise
    if status < 0:
        stream._close_now()
    return status, stream


async def connect_tcp(cls: type[S], fd: int, host: str, port: int, scope_id: int) -> tuple[int, S]:
    """Connect to a numeric host and port (from fd, a bound socket, or a
    new socket if fd is -1): (0, stream), or (error code, closed stream)."""
    bridge = get_bridge()
    handle = Handle(bridge)
    out = ffi.new("ps_stream_t **")
    err = lib.ps_tcp_connect(
        bridge.ptr, fd, host.encode("ascii"), port, scope_id, handle.cdata, out
    )
    return await _connected(cls, bridge, handle, err, out, KIND_TCP)


async def connect_pipe(cls: type[S], path: bytes) -> tuple[int, S]:
    """Connect to the Unix socket at path: (0, stream), or (error code,
    closed stream)."""
    bridge = get_bridge()
    handle = Handle(bridge)
    out = ffi.new("ps_stream_t **")
    err = lib.ps_pipe_connect(bridge.ptr, path, handle.cdata, out)
    return await _connected(cls, bridge, handle, err, out, KIND_PIPE)
