"""Serving: run a handler task per accepted connection."""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any, Awaitable, Callable, Optional, Sequence

from ._errors import ClosedResourceError
from ._open import open_tcp_listeners
from ._util import aclose_forcefully, require_methods
from .abc import AsyncResource, Listener

__all__ = ["serve_listeners", "serve_tcp"]

logger = logging.getLogger("pystream")

Handler = Callable[[Any], Awaitable[Any]]

# Out of descriptors or memory: the listener is fine, the process is full.
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_BACKOFF = 0.1


async def _run_handler(handler: Handler, stream: AsyncResource) -> None:
    try:
        await handler(stream)
    except asyncio.CancelledError:
        await aclose_forcefully(stream)
        raise
    except Exception:
        logger.exception("connection handler %r raised", handler)
    try:
        await stream.aclose()
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("closing the stream of %r failed", handler)


async def serve_listeners(handler: Handler, listeners: Sequence[Listener[Any]]) -> None:
    """Accept on every listener until cancelled, running ``handler(stream)``
    in its own task for each connection and closing the stream after it.

    A handler's exception is logged (logger ``pystream``) and the server goes
    on.  Running out of file descriptors pauses accepting briefly.  When
    cancelled, the listeners close and the handler tasks are cancelled and
    awaited.  An unexpected accept error stops the server the same way and
    is raised.
    """
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {type(handler).__name__}")
    listeners = list(listeners)
    if not listeners:
        raise ValueError("serve_listeners needs at least one listener")
    for listener in listeners:
        require_methods(listener, "each listener", "accept", "aclose")
    loop = asyncio.get_running_loop()
    handlers: set[asyncio.Task[None]] = set()

    async def accept_loop(listener: Listener[Any]) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRNOS:
                    raise
                logger.warning("accept failed (%s); retrying in %ss", exc, _BACKOFF)
                await asyncio.sleep(_BACKOFF)
                continue
            task = loop.create_task(_run_handler(handler, stream))
            handlers.add(task)
            task.add_done_callback(handlers.discard)

    accepters: list[asyncio.Task[None]] = [
        loop.create_task(accept_loop(listener)) for listener in listeners
    ]
    try:
        done, _ = await asyncio.wait(accepters, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            exc: Optional[BaseException] = task.exception()
            if exc is not None and not isinstance(exc, ClosedResourceError):
                raise exc
    finally:
        for task in accepters:
            task.cancel()
        for listener in listeners:
            await aclose_forcefully(listener)
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*accepters, *handlers, return_exceptions=True)


async def serve_tcp(
    handler: Handler,
    port: int,
    *,
    host: Optional[str] = None,
    backlog: Optional[int] = None,
) -> None:
    """``serve_listeners`` on ``open_tcp_listeners(port, host=host,
    backlog=backlog)``."""
    listeners = await open_tcp_listeners(port, host=host, backlog=backlog)
    await serve_listeners(handler, listeners)
