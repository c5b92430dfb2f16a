"""``timeout(delay)``: asyncio.timeout where it exists (3.11), the same
for one awaited call before; None waits for ever."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Optional

__all__ = ["timeout"]

if sys.version_info >= (3, 11):
    timeout = asyncio.timeout
else:  # pragma: no cover - exercised on 3.9/3.10 only

    @asynccontextmanager
    async def timeout(delay: Optional[float]) -> AsyncIterator[None]:
        # asyncio.timeout's behaviour for one awaited call: cancel the
        # task when the delay passes, and turn that cancellation (and only
        # that one) into TimeoutError.
        if delay is None:
            yield
            return
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def expire() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(delay, expire)
        try:
            yield
        except asyncio.CancelledError as exc:
            if fired:
                raise TimeoutError from exc
            raise
        finally:
            handle.cancel()
