"""The floor servers: limits that ``bench`` measures next to the libraries,
not libraries themselves.

Each is the thinnest echo that still runs one asyncio task per connection,
as every task-based stream API does: the task awaits a future, a reader
callback registered once for the connection's life resolves it, and the
task then calls ``recv`` and ``send`` on the non-blocking socket itself.
No state, no busy detection, no buffer, no check that a stream API makes:
what is left is the task machinery and the system calls.

- ``floor``: exactly that.
- ``floor-checkpoint``: the same with one bare yield to the loop before
  each send (a ``None`` yielded by an ``await``, which makes the task
  reschedule itself: the cheapest checkpoint, as pystream's ``CHECKPOINT``).
  Trio's contract makes every operation a checkpoint; an echo loop then
  checkpoints at least once per request, and this is what that costs when
  the checkpoint costs as little as it can.

On the selector loop a readiness report can be stale: the loop polls before
it runs the callbacks that are ready, so the poll that precedes the task's
wake-up still sees the request unread and queues the reader callback behind
the task, which by then has read the request and waits on a new future.
Resolving that future would wake the task for nothing (a failed ``recv``
and one more loop iteration per request), so after each read the callback
ignores the next report on that loop.  Dropping a report is safe, the poll
being level-triggered: if data did come, the next poll says so again.
uvloop runs its callbacks right after its poll and has no stale report.

Both also serve ``source`` (read an 8-byte count, send that many bytes),
with the same waits for the socket to take more.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable, Generator, Optional

from ._handlers import CHUNK, PAYLOAD

__all__ = ["serve_floor"]

_YIELDED = (None,)


class _BareYield:
    """``await BARE_YIELD`` yields ``None`` to the task once: the task
    reschedules itself with ``call_soon`` and runs on at the loop's next
    iteration.  One shared object, no generator frame per await."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return iter(_YIELDED)  # type: ignore[return-value]


BARE_YIELD = _BareYield()


class _Connection:
    """A socket, and the futures its task awaits: one for readable, made
    per wait and resolved by the permanent reader callback, and one for
    writable, only when the socket did not take everything."""

    __slots__ = ("sock", "fd", "loop", "waiting", "skip_next", "selector_loop")

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = loop
        self.waiting: Optional[asyncio.Future[None]] = None
        self.skip_next = False
        self.selector_loop = isinstance(loop, asyncio.SelectorEventLoop)
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        if self.skip_next:
            self.skip_next = False
        elif self.waiting is not None:
            self.waiting.set_result(None)
            self.waiting = None

    async def send_rest(self, data: memoryview) -> None:
        """Send what the socket did not take, waiting until it has room."""
        writable: asyncio.Future[None] = asyncio.Future(loop=self.loop)

        def on_writable() -> None:
            if not writable.done():
                writable.set_result(None)

        self.loop.add_writer(self.fd, on_writable)
        try:
            while data:
                await writable
                writable = asyncio.Future(loop=self.loop)
                try:
                    data = data[self.sock.send(data) :]
                except BlockingIOError:
                    pass
        finally:
            self.loop.remove_writer(self.fd)

    def close(self) -> None:
        self.loop.remove_reader(self.fd)
        self.sock.close()


async def _echo(conn: _Connection, checkpoint: bool) -> None:
    new_future: Callable[..., asyncio.Future[None]] = asyncio.Future
    loop = conn.loop
    recv = conn.sock.recv
    send = conn.sock.send
    skip_stale = conn.selector_loop
    while True:
        conn.waiting = waiting = new_future(loop=loop)
        await waiting
        try:
            data = recv(CHUNK)
        except BlockingIOError:
            continue
        if not data:
            return
        conn.skip_next = skip_stale
        if checkpoint:
            await BARE_YIELD
        try:
            sent = send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            await conn.send_rest(memoryview(data)[sent:])


async def _source(conn: _Connection, checkpoint: bool) -> None:
    header = b""
    while len(header) < 8:
        waiting: asyncio.Future[None] = asyncio.Future(loop=conn.loop)
        conn.waiting = waiting
        await waiting
        try:
            more = conn.sock.recv(8 - len(header))
        except BlockingIOError:
            continue
        if not more:
            return
        header += more
        conn.skip_next = conn.selector_loop
    remaining = int.from_bytes(header, "big")
    while remaining:
        chunk = PAYLOAD if remaining >= CHUNK else PAYLOAD[:remaining]
        remaining -= len(chunk)
        if checkpoint:
            await BARE_YIELD
        try:
            sent = conn.sock.send(chunk)
        except BlockingIOError:
            sent = 0
        if sent < len(chunk):
            await conn.send_rest(memoryview(chunk)[sent:])


async def serve_floor(mode: str, checkpoint: bool, ready: Callable[[int], None]) -> None:
    """Listen on 127.0.0.1, call ready(port), serve mode ("echo" or
    "source") until cancelled."""
    loop = asyncio.get_running_loop()
    handler = _echo if mode == "echo" else _source
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    listener.setblocking(False)
    tasks: set[asyncio.Task[Any]] = set()

    async def serve(sock: socket.socket) -> None:
        conn = _Connection(sock, loop)
        try:
            await handler(conn, checkpoint)
        except ConnectionError:
            pass
        finally:
            conn.close()

    def accept() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # out of descriptors: the next report retries
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(serve(sock))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    loop.add_reader(listener.fileno(), accept)
    ready(listener.getsockname()[1])
    try:
        await asyncio.Future()
    finally:
        loop.remove_reader(listener.fileno())
        listener.close()
