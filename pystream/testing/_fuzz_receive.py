"""The receive operations of the stream state machine (``fuzz``), each
checked as it returns against what its arguments allow, and recorded with
the machine's ``_took`` (``_fuzz_machine``), which checks it against what
the peer sent."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

__all__ = ["ReceivingMixin"]


class ReceivingMixin:
    """``_receive`` for a ``StreamMachineBase`` subclass."""

    # The machine's (a mixin's own definition would come first in the MRO).
    ends: list[Any]
    _took: Callable[[int, bytes, bool], None]

    async def _receive(self, i: int, op: str, arg: Any) -> None:
        """One receive operation of end i, recorded as it returns."""
        stream = self.ends[i].stream
        if (
            op != "some"
            and op != "many"
            and not hasattr(
                stream,
                {
                    "into": "receive_into",
                    "exactly": "readexactly",
                    "until": "readuntil",
                    "line": "readline",
                    "read": "read",
                }[op],
            )
        ):
            op, arg = "some", 65536
        if op == "some":
            data = await stream.receive_some(arg)
            assert len(data) <= arg, f"end {i}: receive_some({arg}) returned {len(data)} bytes"
            self._took(i, data, not data)
        elif op == "many":
            for _ in range(arg):
                data = await stream.receive_some(1 << 20)
                self._took(i, data, not data)
                if not data:
                    return
        elif op == "into":
            buffer = bytearray(arg)
            n = await stream.receive_into(buffer)
            assert 0 <= n <= arg, f"end {i}: receive_into({arg} bytes) returned {n}"
            self._took(i, bytes(buffer[:n]), n == 0)
        elif op == "exactly":
            try:
                data = await stream.readexactly(arg)
            except asyncio.IncompleteReadError as exc:
                assert len(exc.partial) < arg, f"end {i}: IncompleteReadError with all {arg} bytes"
                self._took(i, exc.partial, True)
                return
            assert len(data) == arg, f"end {i}: readexactly({arg}) returned {len(data)} bytes"
            self._took(i, data, False)
        elif op in ("until", "line"):
            separator, limit = arg if op == "until" else (b"\n", 65536)
            try:
                if op == "until":
                    data = await stream.readuntil(separator, limit=limit)
                else:
                    data = await stream.readline()
            except asyncio.LimitOverrunError:
                return  # the data stays buffered (the next receives check it)
            except asyncio.IncompleteReadError as exc:
                assert not exc.partial.endswith(separator) or op == "line", (
                    f"end {i}: IncompleteReadError with the separator in it"
                )
                self._took(i, exc.partial, True)
                return
            if data.endswith(separator):
                assert len(data) - len(separator) <= limit, (
                    f"end {i}: readuntil returned more than its limit"
                )
                self._took(i, data, False)
            else:
                assert op == "line", f"end {i}: readuntil returned no separator"
                self._took(i, data, True)  # readline at EOF
        elif op == "read":
            data = await stream.read(arg)
            if arg > 0:
                assert len(data) <= arg, f"end {i}: read({arg}) returned {len(data)} bytes"
                self._took(i, data, not data)
            elif arg < 0:
                self._took(i, data, True)
            else:
                assert data == b"", f"end {i}: read(0) returned data"
