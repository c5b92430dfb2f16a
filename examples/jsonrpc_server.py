"""A tiny JSON-RPC 2.0 server speaking newline-delimited JSON over its own
stdin and stdout, the way language servers and agent tool servers do.  It
is what examples/jsonrpc_client.py drives; run alone, type requests:

    $ python examples/jsonrpc_server.py
    {"jsonrpc": "2.0", "id": 1, "method": "add", "params": [2, 3]}
    {"jsonrpc": "2.0", "id": 1, "result": 5}
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pystream

MAX_LINE = 16 << 20

METHODS = {
    "add": lambda a, b: a + b,
    "echo": lambda text: text,
    "length": lambda text: len(text),
}


def answer(line: bytes) -> dict[str, Any]:
    try:
        request = json.loads(line)
        method = METHODS[request["method"]]
    except (ValueError, KeyError, TypeError) as exc:
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": str(exc)}}
    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
    try:
        reply["result"] = method(*request.get("params", []))
    except Exception as exc:  # the caller's mistake, reported to it
        reply["error"] = {"code": -32602, "message": f"{type(exc).__name__}: {exc}"}
    return reply


async def main() -> None:
    # The program's own stdin and stdout as streams: whatever they are (a
    # pipe here, a terminal when run by hand), their blocking mode is left
    # alone for the shell that shares them.
    stdin = await pystream.open_stdin()
    stdout = await pystream.open_stdout()
    async with stdin, stdout:
        while True:
            try:  # lines far longer than asyncio's 64 KiB default are fine
                line = await stdin.readuntil(b"\n", limit=MAX_LINE)
            except asyncio.IncompleteReadError as end:  # the end of input
                line = end.partial
                if not line:
                    break
            if line.strip():
                await stdout.send_all(json.dumps(answer(line)).encode() + b"\n")


if __name__ == "__main__":
    asyncio.run(main())
