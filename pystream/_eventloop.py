"""``pystream.new_event_loop``, ``pystream.run`` and ``EventLoopPolicy``: the
asyncio event loop whose only poll is the C core's libuv loop
(``_core/_selector.py`` says how)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Coroutine, Optional, TypeVar

from ._core import EventLoop

__all__ = ["EventLoop", "EventLoopPolicy", "new_event_loop", "run"]

T = TypeVar("T")


def new_event_loop() -> EventLoop:
    """A new asyncio event loop on pystream's libuv loop: pystream's streams,
    processes and every asyncio transport, reader and timer wait in one
    ``epoll_wait``.  A complete asyncio loop (``asyncio.SelectorEventLoop``
    underneath); close it with ``loop.close()``."""
    return EventLoop()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, making pystream's event loops."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return new_event_loop()


def run(main: Coroutine[Any, Any, T], *, debug: Optional[bool] = None) -> T:
    """``asyncio.run(main)`` on a new pystream event loop (on every Python
    version pystream supports): runs main, then cancels the tasks left,
    finishes async generators and the default executor, and closes the
    loop."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return _run_before_311(main, debug)


def _run_before_311(main: Coroutine[Any, Any, T], debug: Optional[bool]) -> T:
    """asyncio.run's steps on 3.9 and 3.10, whose asyncio.run takes no loop
    factory."""
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("pystream.run() cannot be called from a running event loop")
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during pystream.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
