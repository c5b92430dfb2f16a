"""Small asyncio helpers shared by pystream's modules."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable

from ._checkpoint import CHECKPOINT

__all__ = ["CHECKPOINT", "wait_bounded", "require_methods"]


def require_methods(obj: Any, what: str, *names: str) -> None:
    """TypeError unless obj has these methods (streams are duck-typed: any
    object with the methods will do, not only pystream's)."""
    missing = [n for n in names if not callable(getattr(obj, n, None))]
    if missing:
        raise TypeError(
            f"{what} must have the methods {', '.join(missing)}; got {type(obj).__name__}"
        )


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
