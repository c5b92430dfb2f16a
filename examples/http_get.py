"""Fetch a URL over HTTP/1.1 with pystream; print the status, the body's
size and its SHA-256.

    python examples/http_get.py http://127.0.0.1:8080/big.bin
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from urllib.parse import urlsplit

import pystream


async def read_headers(stream: pystream.SocketStream) -> tuple[int, dict[str, str]]:
    status_line = await stream.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = await stream.readuntil(b"\r\n")
        if line == b"\r\n":
            return status, headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


async def read_body(stream: pystream.SocketStream, headers: dict[str, str], digest) -> int:
    """Hash the body as it arrives; return its length."""
    size = 0
    if "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining:
            chunk = await stream.receive_some(min(remaining, 65536))
            if not chunk:
                raise ConnectionError("the body ended early")
            digest.update(chunk)
            size += len(chunk)
            remaining -= len(chunk)
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            length = int((await stream.readuntil(b"\r\n")).split(b";")[0], 16)
            if length == 0:
                await stream.readuntil(b"\r\n")
                break
            chunk = await stream.readexactly(length)
            digest.update(chunk)
            size += length
            await stream.readexactly(2)
    else:
        async for chunk in stream:
            digest.update(chunk)
            size += len(chunk)
    return size


async def fetch(url: str) -> tuple[int, int, str]:
    """(status, body size, body SHA-256 hex) of a GET of url."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError("only http:// URLs")
    host, port = parts.hostname or "localhost", parts.port or 80
    async with await pystream.open_tcp_stream(host, port) as stream:
        request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode("ascii"))
        status, headers = await read_headers(stream)
        digest = hashlib.sha256()
        size = await read_body(stream, headers, digest)
    return status, size, digest.hexdigest()


if __name__ == "__main__":
    status, size, sha256 = asyncio.run(fetch(sys.argv[1]))
    print(f"status {status}, {size} bytes, sha256 {sha256}")
