"""An HTTP/1.1 server on pystream and h11: keep-alive, files sent with
``send_file`` (the kernel's sendfile on plain TCP), request bodies, a
streamed (chunked) response, TLS.

    python examples/h11_server.py --root DIR [--port 8080] [--cert C --key K]

    GET  /files/NAME   the file DIR/NAME (Content-Length, sent by send_file)
    POST /sha256       the request body's length and sha256
    GET  /count?n=N    N lines, streamed in chunks as they are made

h11 keeps the protocol's state (framing, keep-alive, 100-continue); this
program moves its bytes.  A file body goes around h11's encoder: h11 is
told its length (``send_with_data_passthrough``), and the bytes go from
the file to the socket without passing through Python.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import ssl
import sys
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlsplit

import h11

import pystream


class FileBody:
    """A file range standing in for body bytes: h11 needs only its length."""

    def __init__(self, file: Any, size: int) -> None:
        self.file = file
        self.size = size

    def __len__(self) -> int:
        return self.size


class Connection:
    def __init__(self, stream: pystream.abc.Stream, root: str) -> None:
        self.stream = stream
        self.root = os.path.realpath(root)
        self.h11 = h11.Connection(h11.SERVER)

    async def next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.h11.they_are_waiting_for_100_continue:
                await self.send(h11.InformationalResponse(status_code=100, headers=[]))
            self.h11.receive_data(await self.stream.receive_some())

    async def send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            await self.stream.send_all(data)

    async def respond(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        headers = [("content-type", content_type), ("content-length", str(len(body)))]
        await self.send(h11.Response(status_code=status, headers=headers))
        await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())

    async def serve(self) -> None:
        """Requests until the client closes, or h11 says the connection
        cannot carry another."""
        while True:
            event = await self.next_event()
            if not isinstance(event, h11.Request):  # ConnectionClosed
                return
            await self.handle(event)
            if self.h11.our_state is h11.MUST_CLOSE:
                return
            # Whatever the handler left of the request body is read now.
            while self.h11.their_state is h11.SEND_BODY:
                if isinstance(await self.next_event(), h11.ConnectionClosed):
                    return
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return
            self.h11.start_next_cycle()

    async def handle(self, request: h11.Request) -> None:
        url = urlsplit(request.target.decode())
        path = unquote(url.path)
        if request.method == b"GET" and path.startswith("/files/"):
            await self.send_file(path[len("/files/") :])
        elif request.method == b"POST" and path == "/sha256":
            digest, size = hashlib.sha256(), 0
            while True:
                event = await self.next_event()
                if isinstance(event, h11.EndOfMessage):
                    break
                digest.update(event.data)
                size += len(event.data)
            await self.respond(200, f"{size} {digest.hexdigest()}\n".encode())
        elif request.method == b"GET" and path == "/count":
            n = int(parse_qs(url.query).get("n", ["10"])[0])
            await self.send(h11.Response(status_code=200, headers=[("content-type", "text/plain")]))
            for i in range(n):  # no Content-Length: h11 sends it chunked
                await self.send(h11.Data(data=b"line %d\n" % i))
            await self.send(h11.EndOfMessage())
        else:
            await self.respond(404, b"not found\n")

    async def send_file(self, name: str) -> None:
        full = os.path.realpath(os.path.join(self.root, name))
        if not full.startswith(self.root + os.sep) or not os.path.isfile(full):
            await self.respond(404, b"not found\n")
            return
        with open(full, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            headers = [
                ("content-type", "application/octet-stream"),
                ("content-length", str(size)),
            ]
            await self.send(h11.Response(status_code=200, headers=headers))
            for part in self.h11.send_with_data_passthrough(h11.Data(data=FileBody(file, size))):
                if isinstance(part, FileBody):
                    sent = await self.stream.send_file(part.file, 0, part.size)
                    if sent != part.size:  # the file shrank: the framing is broken
                        raise OSError(f"{name}: sent {sent} of {size} bytes")
                else:
                    await self.stream.send_all(part)
        await self.send(h11.EndOfMessage())


async def handler(stream: pystream.abc.Stream, root: str) -> None:
    connection = Connection(stream, root)
    try:
        await connection.serve()
    except h11.RemoteProtocolError as exc:
        # A malformed request: answer 400 if h11 still can, then close.
        if connection.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await connection.respond(exc.error_status_hint, str(exc).encode() + b"\n")
    except (pystream.BrokenResourceError, pystream.ClosedResourceError):
        pass  # the client went away


async def main(root: str, port: int, cert: Optional[str], key: Optional[str]) -> None:
    listeners: list[Any] = await pystream.open_tcp_listeners(port, host="127.0.0.1")
    bound = listeners[0].local_address[1]
    scheme = "http"
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.set_alpn_protocols(["http/1.1"])
        listeners = [pystream.TLSListener(listener, context) for listener in listeners]
        scheme = "https"
    print(f"serving {scheme} on port {bound}", flush=True)
    await pystream.serve_listeners(lambda stream: handler(stream, root), listeners)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.root, args.port, args.cert, args.key))
    except KeyboardInterrupt:
        sys.exit(130)
