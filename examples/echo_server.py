"""An echo server on pystream: everything a client sends comes back, and
its EOF (half-close) ends the echo.

    python examples/echo_server.py --port 7777
    socat -t 30 - TCP:127.0.0.1:7777 < big.file > echoed.file
"""

from __future__ import annotations

import argparse
import asyncio

import pystream


async def echo(stream: pystream.SocketStream) -> None:
    async for chunk in stream:
        await stream.send_all(chunk)
    # The client half-closed; serve_listeners closes our side now.


async def main(port: int) -> None:
    listeners = await pystream.open_tcp_listeners(port, host="127.0.0.1")
    print(f"echo on port {listeners[0].local_address[1]}", flush=True)
    await pystream.serve_listeners(echo, listeners)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="pystream echo server")
    parser.add_argument("--port", type=int, default=7777)
    asyncio.run(main(parser.parse_args().port))
