"""``Waiter``: a Future-compatible object the loop driver can resolve and
resume at once (PyPy's receive path).  Pure Python: no C calls."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, Generator, Optional

__all__ = ["Waiter", "PENDING", "DONE", "CANCELLED"]

PENDING, DONE, CANCELLED = 0, 1, 2


class Waiter:
    """A future for a task waiting to receive, which the bridge can resolve
    and resume at once: the task's next step runs inside the pass that read
    its data, not one loop iteration later through call_soon.

    asyncio's Task accepts any object with this interface
    (``_asyncio_future_blocking``, ``get_loop``, ``add_done_callback``,
    ``result``, ``cancel``), and ``Task.cancel()`` cancels it like a Future.

    On PyPy a receive's wait allocates little (every object there that
    outlives a minor collection costs a major collection's work): a handle
    keeps one Waiter and re-arms it for each wait, and the one callback a
    Task adds is kept without a list.
    """

    __slots__ = (
        "_loop",
        "_state",
        "_exception",
        "_message",
        "_fn",
        "_context",
        "_more",
        "_asyncio_future_blocking",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._state = PENDING
        self._exception: Optional[BaseException] = None
        self._message: Any = None
        # The first done callback and its context, then any others.
        self._fn: Any = None
        self._context: Any = None
        self._more: Optional[list[tuple[Any, Any]]] = None  # rarely needed
        self._asyncio_future_blocking = False

    def rearm(self) -> None:
        """Make a finished Waiter pending again, for its handle's next wait
        (its callbacks ran or were scheduled when it finished)."""
        self._state = PENDING
        self._exception = None
        self._message = None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._state != PENDING

    def cancelled(self) -> bool:
        return self._state == CANCELLED

    def add_done_callback(self, fn: Any, *, context: Any = None) -> None:
        if context is None:
            context = contextvars.copy_context()
        if self._state != PENDING:
            self._loop.call_soon(fn, self, context=context)
        elif self._fn is None:
            self._fn = fn
            self._context = context
        elif self._more is None:
            self._more = [(fn, context)]
        else:
            self._more.append((fn, context))

    def remove_done_callback(self, fn: Any) -> int:
        callbacks = self._take_callbacks()
        kept = [(f, c) for f, c in callbacks if f != fn]
        if kept:
            (self._fn, self._context), self._more = kept[0], kept[1:] or None
        return len(callbacks) - len(kept)

    def _take_callbacks(self) -> list[tuple[Any, Any]]:
        """Remove and return the callbacks, in the order they were added."""
        if self._fn is None:
            return []
        callbacks = [(self._fn, self._context)]
        self._fn = self._context = None
        if self._more:
            callbacks += self._more
            self._more = None
        return callbacks

    def result(self) -> None:
        if self._state == DONE:
            if self._exception is not None:
                raise self._exception
            return None
        if self._state == CANCELLED:
            if self._message is None:
                raise asyncio.CancelledError()
            raise asyncio.CancelledError(self._message)
        raise asyncio.InvalidStateError("the waiter is not done")

    def exception(self) -> Optional[BaseException]:
        if self._state != DONE:
            self.result()  # raises CancelledError or InvalidStateError
        return self._exception

    def cancel(self, msg: Any = None) -> bool:
        if self._state != PENDING:
            return False
        self._state = CANCELLED
        self._message = msg
        self.schedule_callbacks()
        return True

    def set_result(self, result: None) -> None:
        if self._state != PENDING:
            raise asyncio.InvalidStateError("the waiter is done")
        self._state = DONE
        self.schedule_callbacks()

    def set_exception(self, exc: BaseException) -> None:
        if self._state != PENDING:
            raise asyncio.InvalidStateError("the waiter is done")
        self._state = DONE
        self._exception = exc
        self.schedule_callbacks()

    def schedule_callbacks(self) -> None:
        for fn, context in self._take_callbacks():
            self._loop.call_soon(fn, self, context=context)

    # -- the bridge's side: resolve now, resume the task inside the pass --
    def settle(self) -> bool:
        """Resolve the Waiter without scheduling its callbacks: whether
        there are any for ``resume`` to run (a pending Waiter whose task
        waits on it).  The bridge's read event, on the hot path."""
        if self._state != PENDING:
            return False
        self._state = DONE
        return self._fn is not None

    def resume(self) -> None:
        """Run the callbacks of a settled Waiter now, each in its context
        (the first, usually the only one, is its task's next step).  A
        ``KeyboardInterrupt`` or ``SystemExit`` raised in one leaves the
        others scheduled, then propagates."""
        fn, context, more = self._fn, self._context, self._more
        self._fn = self._context = None
        if more is not None:
            self._more = None
        while True:
            try:
                context.run(fn, self)
            except Exception as exc:  # pragma: no cover - a Task does not raise
                self._loop.call_exception_handler(
                    {"message": "resuming a task failed", "exception": exc}
                )
            except BaseException:  # KeyboardInterrupt, SystemExit
                for fn, context in more or ():
                    self._loop.call_soon(fn, self, context=context)
                raise
            if not more:
                return
            fn, context = more.pop(0)

    def __await__(self) -> Generator[Any, None, None]:
        # (A generator: a Waiter iterating itself, raising StopIteration from
        # a Python __next__, allocated more on PyPy, not less.)
        if self._state == PENDING:
            self._asyncio_future_blocking = True
            yield self
        return self.result()

    __iter__ = __await__
