"""Serving: run a handler task per accepted connection."""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any, Awaitable, Callable, Optional, Sequence

from .._base._errors import BrokenResourceError, ClosedResourceError
from .._base._readers import DEFAULT_LIMIT
from .._base._util import require_methods
from ..abc import AsyncResource, Listener, aclose_forcefully
from ._open import open_tcp_listeners

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
    except BrokenResourceError as exc:
        # The peer went away (a reset, a broken pipe): routine for a server,
        # so not an ERROR with a traceback, which is for handler bugs.
        logger.debug("connection of %r broke: %s (cause: %r)", handler, exc, exc.__cause__)
    except Exception:
        logger.exception("connection handler %r raised", handler)
    try:
        await stream.aclose()
    except asyncio.CancelledError:
        raise
    except BrokenResourceError as exc:
        logger.debug("closing the stream of %r: it broke: %s", handler, exc)
    except Exception:
        logger.exception("closing the stream of %r failed", handler)


async def serve_listeners(handler: Handler, listeners: Sequence[Listener[Any]]) -> None:
    """Accept on every listener until cancelled, running ``await
    handler(stream)`` in a task of its own for each connection.

    The stream is closed (``aclose``) when the handler returns or raises.
    A handler's exception is logged (logger ``pystream``) and serving goes
    on.  Running out of file descriptors pauses accepting for 0.1 s.  The
    listeners are this call's from then on: it closes them whenever it
    ends.  If one is closed from outside, serving stops and this returns.

    Raises:
        TypeError: ``handler`` is not callable, or a listener has no
            ``accept`` and ``aclose``.
        ValueError: ``listeners`` is empty.
        OSError: accepting failed otherwise than for want of descriptors
            or memory.  Serving stops as on cancellation, then the error
            is raised (as is any other exception from ``accept``).

    Cancellation:
        The listeners are closed, every handler task is cancelled (its
        stream closed forcefully) and awaited, then the cancellation is
        raised.
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
    forget = handlers.discard  # one bound method, not one per connection

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
            task.add_done_callback(forget)

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
    limit: int = DEFAULT_LIMIT,
) -> None:
    """``serve_listeners(handler, await open_tcp_listeners(port, host=host,
    backlog=backlog, limit=limit))``: serve TCP on ``port`` until
    cancelled.  ``limit`` is each connection's default limit for
    ``readuntil`` and ``readline``, as asyncio's ``start_server`` takes it.

    It raises what those two raise.  To serve on port 0 and learn the
    port, call them separately.
    """
    listeners = await open_tcp_listeners(port, host=host, backlog=backlog, limit=limit)
    await serve_listeners(handler, listeners)
