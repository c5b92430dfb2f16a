"""A JSON-RPC client that runs its server as a child process and speaks
newline-delimited JSON over the child's stdin and stdout, with calls in
flight at once.  A reply line may be far longer than asyncio's 64 KiB
StreamReader limit: here the limit is a choice (16 MiB), and hitting it
would raise LimitOverrunError with the data kept, not lose the stream.

    python examples/jsonrpc_client.py
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from typing import Any

import pystream

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jsonrpc_server.py")
MAX_LINE = 16 << 20


class RPCError(Exception):
    pass


class Client:
    """Calls over one stream; a reader task hands each reply to its caller."""

    def __init__(self, stream: pystream.StapledStream) -> None:
        self._stream = stream
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._send_lock = asyncio.Lock()  # one send_all at a time per stream
        self._reader = asyncio.ensure_future(self._read_replies())

    async def call(self, method: str, *params: Any) -> Any:
        request_id = next(self._ids)
        reply = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        async with self._send_lock:
            await self._stream.send_all(line.encode() + b"\n")
        return await reply

    async def _read_replies(self) -> None:
        try:
            while line := await self._stream.readuntil(b"\n", limit=MAX_LINE):
                message = json.loads(line)
                reply = self._waiting.pop(message["id"])
                if "error" in message:
                    reply.set_exception(RPCError(message["error"]["message"]))
                else:
                    reply.set_result(message["result"])
        except asyncio.IncompleteReadError:
            error: BaseException = RPCError("the server closed its stdout")
        except BaseException as exc:
            error = exc
        for reply in self._waiting.values():
            if not reply.done():
                reply.set_exception(error)
        if not isinstance(error, RPCError):
            raise error

    async def aclose(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


async def main() -> None:
    proc = await pystream.open_process(
        [sys.executable, SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    async with proc:
        assert proc.stdio is not None
        client = Client(proc.stdio)
        big = "x" * (1 << 20)  # a 1 MiB line each way
        total, echoed, length = await asyncio.gather(
            client.call("add", 2, 3), client.call("echo", big), client.call("length", big)
        )
        print(
            f"add(2, 3) = {total}; echo of 1 MiB came back whole: {echoed == big}; "
            f"length = {length}"
        )
        try:
            await client.call("add", 1)
        except RPCError as exc:
            print(f"add(1) failed as it should: {exc}")
        await client.aclose()
        await proc.stdin.send_eof()  # the server's stdin ends: it exits
    print(f"server exited with {proc.returncode}")


if __name__ == "__main__":
    asyncio.run(main())
