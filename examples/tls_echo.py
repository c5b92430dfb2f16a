"""TLS with pystream: an echo server, and a client that sends stdin and
prints what comes back.

    python examples/tls_echo.py serve --port 8443 --cert cert.pem --key key.pem
    echo hello | python examples/tls_echo.py connect localhost 8443 --cafile cert.pem
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

import pystream


async def echo(stream: pystream.TLSStream) -> None:
    async for chunk in stream:
        await stream.send_all(chunk)


async def serve(port: int, cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listeners = await pystream.open_tcp_listeners(port, host="127.0.0.1")
    print(f"TLS echo on port {listeners[0].local_address[1]}", flush=True)
    await pystream.serve_listeners(
        echo, [pystream.TLSListener(listener, context) for listener in listeners]
    )


async def connect(host: str, port: int, cafile: str) -> None:
    context = ssl.create_default_context(cafile=cafile)
    transport = await pystream.open_tcp_stream(host, port)
    async with pystream.TLSStream(transport, context, server_hostname=host) as tls:
        data = sys.stdin.buffer.read()
        await tls.send_all(data)
        # TLS has no half-close: an echo sends back as many bytes as it got.
        sys.stdout.buffer.write(await tls.readexactly(len(data)))
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("serve")
    server.add_argument("--port", type=int, default=8443)
    server.add_argument("--cert", required=True)
    server.add_argument("--key", required=True)
    client = commands.add_parser("connect")
    client.add_argument("host")
    client.add_argument("port", type=int)
    client.add_argument("--cafile", required=True)
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(serve(args.port, args.cert, args.key))
    else:
        asyncio.run(connect(args.host, args.port, args.cafile))


if __name__ == "__main__":
    main()
