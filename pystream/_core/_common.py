"""Small pieces the core layer's modules share: the return-code check,
address decoding and the warning for an unclosed handle."""

from __future__ import annotations

import os
import socket
import warnings
from typing import Any, Union

from .._binding import ffi, oserror

__all__ = ["Address", "check", "decode_address", "warn_unclosed"]

Address = Union[tuple[Any, ...], str, bytes]


def check(code: int) -> int:
    """A C call's return value, or its OSError raised."""
    if code < 0:
        raise oserror(code)
    return code


def decode_address(addr: Any) -> Address:
    """A ps_address_t as Python's socket module reports addresses."""
    raw = ffi.unpack(addr.host, addr.host_len)
    if addr.family == socket.AF_INET:
        return (raw.decode("ascii"), addr.port)
    if addr.family == socket.AF_INET6:
        return (raw.decode("ascii"), addr.port, addr.flowinfo, addr.scope_id)
    if raw[:1] == b"\0":
        return bytes(raw)  # an abstract Unix name
    return os.fsdecode(raw)


def warn_unclosed(owner: Any, handle: Any, closed: bool, close: Any) -> None:
    """From ``__del__`` of an object nobody closed (its ``Handle``, or None
    if its ``__init__`` failed first): warn, and have its loop close the C
    handle (``__del__`` may run in any thread)."""
    if handle is None or closed or handle.ptr is None:
        return
    warnings.warn(f"unclosed {owner!r}", ResourceWarning, stacklevel=2, source=owner)

    def close_handle() -> None:
        if handle.ptr is not None and not handle.bridge.closed:
            close(handle.ptr)
            handle.bridge.schedule_pass()

    try:
        handle.bridge.loop.call_soon_threadsafe(close_handle)
    except RuntimeError:
        pass  # the loop is closed; its teardown freed the handle
