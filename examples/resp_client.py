"""A small RESP (Redis protocol) client on pystream: PING, SET and GET of a
1 MiB value, then 1,000 pipelined INCRs in one write.

    python examples/resp_client.py 127.0.0.1 6379
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pystream


def command(*args: Any) -> bytes:
    """One command, encoded as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


async def reply(stream: pystream.SocketStream) -> Any:
    """Read one reply."""
    line = await stream.readuntil(b"\r\n")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        if length < 0:
            return None
        return (await stream.readexactly(length + 2))[:-2]
    if kind == b"*":
        return [await reply(stream) for _ in range(int(rest))]
    raise ValueError(f"bad reply {line!r}")


def expect(what: str, got: Any, wanted: Any) -> None:
    """Fail unless got == wanted (a check that, unlike assert, also runs
    under python -O)."""
    if got != wanted:
        shown = repr(got) if len(repr(got)) < 80 else f"{repr(got)[:80]}..."
        raise RuntimeError(f"{what}: unexpected reply {shown}")


async def exchange(host: str, port: int) -> list[str]:
    report = []
    async with await pystream.open_tcp_stream(host, port) as redis:
        await redis.send_all(command("PING"))
        expect("PING", await reply(redis), "PONG")
        report.append("PING: PONG")

        value = os.urandom(1 << 20)
        await redis.send_all(command("SET", "pystream:value", value))
        expect("SET", await reply(redis), "OK")
        await redis.send_all(command("GET", "pystream:value"))
        expect("GET", await reply(redis), value)
        report.append("SET/GET of 1 MiB: the same bytes back")

        await redis.send_all(command("DEL", "pystream:counter"))
        await reply(redis)
        await redis.send_all(b"".join(command("INCR", "pystream:counter") for _ in range(1000)))
        counts = [await reply(redis) for _ in range(1000)]
        expect("1000 INCRs", counts, list(range(1, 1001)))
        report.append("1000 pipelined INCRs: 1..1000 in order")
    return report


if __name__ == "__main__":
    for line in asyncio.run(exchange(sys.argv[1], int(sys.argv[2]))):
        print(line)
