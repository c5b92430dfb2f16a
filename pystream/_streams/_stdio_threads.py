"""The blocking calls a ``ThreadFdStream`` makes in its threads: reads and
writes that a close can stop (a pipe whose write end the stream closes),
and the thread runner that hands their outcome back to the loop."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import threading
from typing import Any, Callable, Optional

__all__ = ["read_until_stopped", "write_until_stopped", "in_thread"]


def _wait(fd: int, event: int, stop: int) -> bool:
    """Block until fd is ready (poll, not select: any fd number); True if
    the stream closed first (stop, its pipe's read end, hung up)."""
    poller = select.poll()
    poller.register(fd, event)
    poller.register(stop, select.POLLIN)
    return stop in dict(poller.poll())


def read_until_stopped(fd: int, size: int, stop: int, is_socket: bool) -> Optional[bytes]:
    """Read once fd is readable; None, having read nothing, if the stream
    closes first (it closes the write end of the pipe whose read end is
    stop: poll then reports stop hung up).

    Not a plain blocking read: that would go on after the stream closes
    and take the next input, which the fd's other holders (``sys.stdin``,
    a later ``open_stdin``) should get."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(stop, select.POLLIN)
    while True:
        if stop in dict(poller.poll()):
            return None
        # A close from here on dup2s /dev/null over fd first, so a read not
        # yet begun gets b"".  Another holder of the same description may
        # take the input between poll and read: a socket's read is then
        # non-blocking for this call alone (MSG_DONTWAIT) and polls again.
        # (Any other fd here is a file, /dev/null or a fallback for a pipe
        # or terminal that could not be opened anew; its read blocks then,
        # until input comes, and may take that input after a close.)
        try:
            if is_socket:
                return _without_waiting(fd, "recv", size)  # type: ignore[no-any-return]
            return os.read(fd, size)
        except BlockingIOError:  # taken by another holder, or non-blocking
            pass


def write_until_stopped(fd: int, data: bytes, stop: int, is_socket: bool) -> None:
    """Write all of data; stop early if the stream closes (the write end of
    stop's pipe is closed).  A socket's writes never block (MSG_DONTWAIT:
    the peer may never read) but wait in poll, which the close ends; any
    other fd here (a file, /dev/null, or a fallback for a pipe or
    terminal that could not be opened anew) is written as it is."""
    view = memoryview(data)
    while view:
        try:
            if is_socket:
                view = view[_without_waiting(fd, "send", view) :]
            else:
                view = view[os.write(fd, view) :]
        except BlockingIOError:
            if _wait(fd, select.POLLOUT, stop):
                return  # closed: what is left is dropped with the stream


def _without_waiting(fd: int, call: str, arg: Any) -> Any:
    """sock.recv(arg) or sock.send(arg) with MSG_DONTWAIT on fd, which
    stays ours (the socket object is detached, not closed)."""
    sock = socket.socket(fileno=fd)
    try:
        return getattr(sock, call)(arg, socket.MSG_DONTWAIT)
    finally:
        sock.detach()


def in_thread(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> Any:
    """Run fn(*args) in a daemon thread of its own: a Future of its result.
    (Not the loop's executor: a read that blocks forever, on a terminal say,
    must not keep the program from exiting.)"""
    future = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def run() -> None:
        try:
            outcome = (True, fn(*args))
        except BaseException as exc:  # delivered to the awaiting task
            outcome = (False, exc)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    threading.Thread(target=run, name="pystream-stdio", daemon=True).start()
    return future
