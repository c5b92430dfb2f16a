"""``send_file``: its argument checks, and the path every stream without a
kernel copy takes (read a chunk in a thread, ``send_all`` it).

The kernel path (``sendfile(2)`` from the file to the socket or pipe, the
data never passing through Python) is ``CoreStream.send_file``, in the
core layer.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import stat
from typing import Any, Optional

from ._errors import ConflictDetector

__all__ = ["FileRange", "file_range", "read_and_send", "send_file_by_reading"]

# The fallback reads this much at a time (in a thread: a read from a slow
# disk or a network file system must not stop the event loop).
_READ_CHUNK = 1 << 20
# (PyPy's os lacks O_ACCMODE.)
_ACCMODE = getattr(os, "O_ACCMODE", os.O_RDONLY | os.O_WRONLY | os.O_RDWR)


class FileRange:
    """What to send: fd, from offset, at most count bytes (None: to the end
    of the file as it is when each chunk is read)."""

    __slots__ = ("fd", "offset", "count")

    def __init__(self, fd: int, offset: int, count: Optional[int]) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count


def file_range(file: Any, offset: Any, count: Any) -> FileRange:
    """Check send_file's arguments: TypeError or ValueError at once.

    file: a binary file object open for reading, or an fd, of a regular
    file; offset an int >= 0; count None or an int >= 0."""
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, not {offset}")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be an int or None, not {type(count).__name__}")
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
    if isinstance(file, bool):
        raise TypeError("file must be a binary file object or an fd, not a bool")
    if isinstance(file, int):
        fd = file
        if fd < 0:
            raise ValueError(f"fd must not be negative, not {fd}")
    else:
        if isinstance(file, io.TextIOBase):
            raise TypeError("send_file needs a file opened in binary mode ('rb'), not text")
        if getattr(file, "closed", False):
            raise ValueError("send_file: the file is closed")
        fileno = getattr(file, "fileno", None)
        if fileno is None:
            raise TypeError(
                f"file must be a binary file object or an fd, not {type(file).__name__}"
            )
        try:
            fd = fileno()
        except io.UnsupportedOperation:
            raise TypeError(f"{type(file).__name__} has no file descriptor") from None
        writable = getattr(file, "writable", None)
        if callable(writable) and writable():
            file.flush()  # what its buffer holds is part of the file too
    mode = os.fstat(fd).st_mode  # OSError (EBADF) for a closed fd
    if not stat.S_ISREG(mode):
        raise ValueError("send_file sends regular files (not pipes, sockets or devices)")
    if fcntl.fcntl(fd, fcntl.F_GETFL) & _ACCMODE == os.O_WRONLY:
        raise ValueError("send_file: the file is not open for reading")
    return FileRange(fd, offset, count)


async def send_file_by_reading(
    stream: Any, guard: Optional[ConflictDetector], where: FileRange
) -> int:
    """Read chunks (in a thread) and send_all them: the path of streams
    that have no kernel copy.  Returns the bytes sent.

    It holds the stream's sending direction from start to end, so that
    another task's send_all between two chunks is busy, as during one
    send_all: by holding guard, the stream's sending conflict detector
    (its ``_send_guard()``), and letting each chunk's send_all through; a
    stream without one (guard None) is not protected between chunks.
    Cancelled, part of the range may have been sent (each chunk follows
    the stream's send_all rule)."""
    conflict = guard
    if conflict is not None:
        if conflict.held:
            raise conflict.busy()
        conflict.held = True
    try:
        return await read_and_send(stream, conflict, where)
    finally:
        if conflict is not None:
            conflict.held = False


async def read_and_send(stream: Any, conflict: Optional[ConflictDetector], where: FileRange) -> int:
    """The reading loop; conflict (held by the caller, or None) is let
    through for each chunk's send_all."""
    loop = asyncio.get_running_loop()
    sent = 0
    position = where.offset
    remaining = where.count
    while remaining is None or remaining > 0:
        size = _READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining)
        chunk = await loop.run_in_executor(None, os.pread, where.fd, size, position)
        if not chunk:
            break
        await _send(stream, conflict, chunk)
        sent += len(chunk)
        position += len(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    if sent == 0:
        await _send(stream, conflict, b"")  # still checked, still a checkpoint
    return sent


async def _send(stream: Any, conflict: Optional[ConflictDetector], chunk: bytes) -> None:
    # send_all enters its conflict detector before its first await, so
    # releasing it here lets that one call in and nobody else.
    if conflict is not None:
        conflict.held = False
    try:
        await stream.send_all(chunk)
    finally:
        if conflict is not None:
            conflict.held = True
