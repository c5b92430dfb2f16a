"""A tiny JSON-RPC 2.0 server speaking newline-delimited JSON over its own
stdin and stdout, the way language servers and agent tool servers do.  It
is what examples/jsonrpc_client.py drives; run alone, type requests:

    $ python examples/jsonrpc_server.py
    {"jsonrpc": "2.0", "id": 1, "method": "add", "params": [2, 3]}
    {"jsonrpc": "2.0", "id": 1, "result": 5}
"""

from __future__ import annotations

import json
import sys
from typing import Any

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


def main() -> None:
    for line in sys.stdin.buffer:
        if line.strip():
            sys.stdout.write(json.dumps(answer(line)) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
