"""The kernel path of ``send_file`` for core streams: ``sendfile(2)`` from
the file to the socket or pipe, driven by writability, the data never
passing through Python.  The one C call is ``ps_stream_try_sendfile``."""

from __future__ import annotations

import asyncio
import errno
from typing import TYPE_CHECKING

from .._binding import UV_EAGAIN, lib
from .._state import BREAK, OPEN
from .._util import CHECKPOINT

if TYPE_CHECKING:
    from .._sendfile import FileRange
    from ._stream import CoreStream

__all__ = ["send_file_by_kernel"]

# Asked of one sendfile(2) call; a socket takes what its buffer has room
# for.  Between calls the loop gets a turn every _YIELD_EVERY bytes, so a
# peer that reads as fast as we send cannot starve the other tasks.
_CHUNK = 1 << 30
_YIELD_EVERY = 16 << 20
_UV_EBUSY = -errno.EBUSY  # writes are still queued ahead of us


async def send_file_by_kernel(stream: CoreStream, where: FileRange) -> int:
    """Send the range; the caller holds the send conflict detector and has
    checked the stream and made the checkpoint.  Returns the bytes sent.

    Cancelled (only while waiting for room or for queued writes, or at the
    periodic yield): if nothing was sent, nothing happened; else the peer
    got a prefix of the range, and sending is broken from then on."""
    h = stream._h
    sent = 0
    since_yield = 0
    position = where.offset
    remaining = where.count
    try:
        while remaining is None or remaining > 0:
            if stream._send_side.state is not OPEN or h.ptr is None:
                stream._check_still_sendable()
            size = _CHUNK if remaining is None else min(_CHUNK, remaining)
            n = lib.ps_stream_try_sendfile(h.ptr, where.fd, position, size)
            if n > 0:
                sent += n
                position += n
                since_yield += n
                if remaining is not None:
                    remaining -= n
                if since_yield >= _YIELD_EVERY:
                    since_yield = 0
                    await CHECKPOINT
                continue
            if n == 0:
                break  # the end of the file
            if n == UV_EAGAIN:
                since_yield = 0
                await stream._wait_fd_writable()
                continue
            if n == _UV_EBUSY:  # send_all's queued rest goes first
                await stream._wait_queued_writes()
                continue
            raise stream._broken_send(n)
    except asyncio.CancelledError:
        if sent:
            stream._send_side.handle(BREAK, None)
        raise
    return sent
