"""The connection handlers the benchmark's Python servers share, plain and
TLS (``servers``, ``_tls_servers``): an echo and a source for a
stream with ``receive_some`` and ``send_all`` (pystream's, trio's), and an
echo for asyncio's reader and writer; and reading the count a source's
client asks for.  Each library's errors are its own,
so each handler is made for a tuple of the errors that end a connection
quietly (the client went away)."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from ._catalog import BULK_BYTE

__all__ = [
    "CHUNK",
    "PAYLOAD",
    "Errors",
    "asyncio_streams_echo",
    "read_count",
    "stream_echo",
    "stream_source",
]

CHUNK = 65536  # every server's reads, and a source's sends
PAYLOAD = BULK_BYTE * CHUNK

Errors = tuple[type[BaseException], ...]


def stream_echo(errors: Errors) -> Callable[[Any], Awaitable[None]]:
    """An echo for a stream with ``receive_some`` and ``send_all``: reads
    of CHUNK bytes, each sent back, until end of stream or one of errors."""

    async def echo(stream: Any) -> None:
        try:
            while True:
                data = await stream.receive_some(CHUNK)
                if not data:
                    return
                await stream.send_all(data)
        except errors:
            pass

    return echo


async def read_count(stream: Any) -> int:
    """What a client of a source asks for: an 8-byte big-endian count, read
    with ``readexactly`` (pystream's streams, asyncio's ``StreamReader``)."""
    return int.from_bytes(await stream.readexactly(8), "big")


def stream_source(
    errors: Errors, count: Callable[[Any], Awaitable[int]] = read_count
) -> Callable[[Any], Awaitable[None]]:
    """A source for a stream with ``send_all``: ``count(stream)`` bytes of
    PAYLOAD, CHUNK bytes a call, unless one of errors ends it first."""

    async def source(stream: Any) -> None:
        try:
            remaining = await count(stream)
            while remaining:
                n = min(remaining, CHUNK)
                await stream.send_all(PAYLOAD[:n] if n < CHUNK else PAYLOAD)
                remaining -= n
        except errors:
            pass

    return source


def asyncio_streams_echo(
    errors: Errors,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """An echo for ``asyncio.start_server``: reads of CHUNK bytes, each
    written and drained, until end of stream or one of errors; then the
    writer is closed."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except errors:
            pass
        writer.close()

    return echo
