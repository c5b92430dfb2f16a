"""Small asyncio helpers shared by pystream's modules."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable

from ._checkpoint import CHECKPOINT
from .abc import AsyncResource

__all__ = ["CHECKPOINT", "aclose_forcefully", "close_now", "wait_bounded", "require_methods"]


def require_methods(obj: Any, what: str, *names: str) -> None:
    """TypeError unless obj has these methods (streams are duck-typed: any
    object with the methods will do, not only pystream's)."""
    missing = [n for n in names if not callable(getattr(obj, n, None))]
    if missing:
        raise TypeError(
            f"{what} must have the methods {', '.join(missing)}; got {type(obj).__name__}"
        )


async def aclose_forcefully(resource: AsyncResource) -> None:
    """Close resource at once, without waiting for anything; never blocks.

    Forceful means "do not wait", not "discard": what ``send_all`` already
    handed over is still delivered (a socket's kernel sends it, then a FIN;
    a memory stream's peer keeps its buffer).  To abort a TCP connection
    with a reset on purpose, set ``SO_LINGER`` to 0 with ``setsockopt``
    first.  For a resource that is not pystream's, its ``aclose()`` is run
    as if cancelled at its first await, which the contract says makes it
    close forcefully.  Idempotent.  A checkpoint, after the close.

    Raises:
        RuntimeError: a resource that is not pystream's still ran its
            ``aclose()`` after 100 cancellations (it ignores them, against
            the contract).
        Exception: what such an ``aclose()`` raises, other than
            ``CancelledError``.  pystream's own resources raise nothing
            here.

    Cancellation:
        The resource is closed all the same (the close comes before the
        checkpoint), then the cancellation is raised.
    """
    close_now(resource)
    await CHECKPOINT


def close_now(resource: AsyncResource) -> None:
    """Close resource forcefully, synchronously (no checkpoint)."""
    if isinstance(resource, AsyncResource):
        resource._close_now()
    else:  # duck-typed: the default, aclose cancelled at every await
        AsyncResource._close_now(resource)


async def wait_bounded(awaitable: Awaitable[Any], timeout: float) -> bool:
    """Wait for awaitable at most timeout seconds: True if it finished (its
    exception, if any, is raised), False if it was cancelled for time.

    Unlike ``asyncio.wait_for`` before Python 3.12, this never swallows a
    cancellation of the caller that coincides with the awaitable finishing.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait([task], timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        return False
    task.result()
    return True
