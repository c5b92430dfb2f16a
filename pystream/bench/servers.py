"""The benchmark's Python servers, one per process:

    python -m pystream.bench.servers KIND MODE [FILE]
    python -m pystream.bench.servers KIND tls-echo CERT KEY

KIND is one of ``KINDS``; MODE is ``echo`` (write back what is read) or
``source`` (read an 8-byte big-endian count, send that many bytes in 64 KiB
``send_all`` calls, close).  Two modes send FILE instead (read the count,
send that many of its bytes, fewer if it is shorter, close): ``sendfile``,
the kernel copy (pystream's ``send_file``, asyncio's ``loop.sendfile``),
and ``readfile``, pystream reading 256 KiB chunks and ``send_all``-ing each
(``FILE_MODES`` says which kinds have which).  ``tls-echo`` echoes over TLS
with the certificate and key in CERT and KEY (PEM files); ``TLS_KINDS`` has
the kinds that do (``_tls_servers``).  Each listens on 127.0.0.1 port 0,
prints ``READY <port>`` and serves until killed.  Every server is written
the way its library's documentation shows, with 64 KiB reads; the
``floor`` kinds are the limits of a task-per-connection design, not
libraries (``_floor``).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from typing import Any, Callable, Coroutine, Optional

from ._catalog import TLS_SERVERS
from ._handlers import (
    CHUNK,
    PAYLOAD,
    asyncio_streams_echo,
    read_count,
    stream_echo,
    stream_source,
)

FILE_CHUNK = 256 * 1024  # readfile's reads


def _ready(port: int) -> None:
    print(f"READY {port}", flush=True)


# -- pystream ---------------------------------------------------------------
async def _pystream_main(mode: str, path: Optional[str]) -> None:
    import pystream

    async def send_file(stream: Any) -> None:
        assert path is not None
        try:
            count = await read_count(stream)
            with open(path, "rb") as f:
                await stream.send_file(f, 0, count)
        except (pystream.BrokenResourceError, asyncio.IncompleteReadError):
            pass

    async def read_file(stream: Any) -> None:
        assert path is not None
        try:
            remaining = await read_count(stream)
            with open(path, "rb", buffering=0) as f:
                while remaining:
                    data = f.read(min(remaining, FILE_CHUNK))
                    if not data:
                        break
                    await stream.send_all(data)
                    remaining -= len(data)
        except (pystream.BrokenResourceError, asyncio.IncompleteReadError):
            pass

    handlers = {
        "echo": stream_echo((pystream.BrokenResourceError,)),
        "source": stream_source((pystream.BrokenResourceError, asyncio.IncompleteReadError)),
        "sendfile": send_file,
        "readfile": read_file,
    }
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    _ready(int(listeners[0].local_address[1]))
    await pystream.serve_listeners(handlers[mode], listeners)


# -- asyncio streams ------------------------------------------------------
async def _streams_main(mode: str, path: Optional[str]) -> None:
    async def source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            remaining = await read_count(reader)
            while remaining:
                n = min(remaining, CHUNK)
                writer.write(PAYLOAD[:n] if n < CHUNK else PAYLOAD)
                await writer.drain()
                remaining -= n
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    async def send_file(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert path is not None
        try:
            count = await read_count(reader)
            with open(path, "rb") as f:
                await asyncio.get_running_loop().sendfile(writer.transport, f, 0, count)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    handlers = {
        "echo": asyncio_streams_echo((ConnectionError,)),
        "source": source,
        "sendfile": send_file,
    }
    server = await asyncio.start_server(handlers[mode], "127.0.0.1", 0, limit=CHUNK)
    _ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


# -- asyncio protocols ----------------------------------------------------
class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=1024 * 1024)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


class _SourceProtocol(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.header = b""
        self.remaining = 0
        self.paused = False

    def data_received(self, data: bytes) -> None:
        if len(self.header) >= 8:
            return
        self.header += data
        if len(self.header) >= 8:
            self.remaining = int.from_bytes(self.header[:8], "big")
            self._pump()

    def _pump(self) -> None:
        while self.remaining and not self.paused:
            n = min(self.remaining, CHUNK)
            self.remaining -= n
            self.transport.write(PAYLOAD[:n] if n < CHUNK else PAYLOAD)
            if not self.remaining:
                # Once: after the buffered data is written.  (PyPy 3.9's
                # asyncio logs errors for a second close.)
                self.transport.close()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()


async def _protocol_main(mode: str, path: Optional[str]) -> None:
    loop = asyncio.get_running_loop()
    factory = _EchoProtocol if mode == "echo" else _SourceProtocol
    server = await loop.create_server(factory, "127.0.0.1", 0)
    _ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


# -- trio -----------------------------------------------------------------
def _trio_run(mode: str, path: Optional[str]) -> None:
    import trio

    async def receive_count(stream: Any) -> int:
        # No readexactly on trio's streams.  A header cut short: nothing to send.
        header = b""
        while len(header) < 8:
            more = await stream.receive_some(8 - len(header))
            if not more:
                return 0
            header += more
        return int.from_bytes(header, "big")

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        _ready(listeners[0].socket.getsockname()[1])
        if mode == "echo":
            handler = stream_echo((trio.BrokenResourceError,))
        else:
            handler = stream_source((trio.BrokenResourceError,), receive_count)
        await trio.serve_listeners(handler, listeners)

    trio.run(main)


# -- the floors (limits, not libraries) -----------------------------------
async def _floor_main(mode: str, path: Optional[str], checkpoint: bool) -> None:
    from ._floor import serve_floor

    await serve_floor(mode, checkpoint, _ready)


Runner = Callable[[str, Optional[str]], None]  # (mode, file)


def _run_on_asyncio(main: Coroutine[Any, Any, None], uvloop: bool) -> None:
    if uvloop:
        import uvloop as uv

        asyncio.set_event_loop_policy(uv.EventLoopPolicy())
    asyncio.run(main)


def _asyncio_runner(main: Callable[[str, Optional[str]], Any], uvloop: bool) -> Runner:
    return lambda mode, path: _run_on_asyncio(main(mode, path), uvloop)


def _run_on_own_loop(main: Coroutine[Any, Any, None]) -> None:
    import pystream

    pystream.run(main)


def _own_loop_runner(main: Callable[[str, Optional[str]], Any]) -> Runner:
    """main on pystream's own event loop (pystream.run)."""
    return lambda mode, path: _run_on_own_loop(main(mode, path))


# The Python servers; "c-libuv" (refserver.c) is the benchmark's own.
KINDS: dict[str, Runner] = {
    "pystream": _asyncio_runner(_pystream_main, uvloop=False),
    "pystream-uvloop": _asyncio_runner(_pystream_main, uvloop=True),
    "pystream-ownloop": _own_loop_runner(_pystream_main),
    "asyncio-streams": _asyncio_runner(_streams_main, uvloop=False),
    "asyncio-protocol": _asyncio_runner(_protocol_main, uvloop=False),
    "asyncio-streams-ownloop": _own_loop_runner(_streams_main),
    "asyncio-protocol-ownloop": _own_loop_runner(_protocol_main),
    "uvloop-streams": _asyncio_runner(_streams_main, uvloop=True),
    "uvloop-protocol": _asyncio_runner(_protocol_main, uvloop=True),
    "trio": _trio_run,
    "floor": _asyncio_runner(functools.partial(_floor_main, checkpoint=False), uvloop=False),
    "floor-uvloop": _asyncio_runner(functools.partial(_floor_main, checkpoint=False), uvloop=True),
    "floor-checkpoint": _asyncio_runner(
        functools.partial(_floor_main, checkpoint=True), uvloop=False
    ),
    "floor-checkpoint-uvloop": _asyncio_runner(
        functools.partial(_floor_main, checkpoint=True), uvloop=True
    ),
}


# -- TLS (tls-echo CERT KEY) -----------------------------------------------
TLSRunner = Callable[[str, str], None]  # (certificate file, key file)


def _tls_on_asyncio(
    serve: Callable[[str, str, Callable[[int], None]], Any], uvloop: bool
) -> TLSRunner:
    return lambda cert, key: _run_on_asyncio(serve(cert, key, _ready), uvloop)


def _tls_on_trio(cert: str, key: str) -> None:
    from ._tls_servers import run_trio_tls

    run_trio_tls(cert, key, _ready)


def _tls_kinds() -> dict[str, TLSRunner]:
    from ._tls_servers import serve_asyncio_streams_tls, serve_pystream_tls

    return {
        "pystream": _tls_on_asyncio(serve_pystream_tls, uvloop=False),
        "pystream-uvloop": _tls_on_asyncio(serve_pystream_tls, uvloop=True),
        "pystream-ownloop": lambda cert, key: _run_on_own_loop(
            serve_pystream_tls(cert, key, _ready)
        ),
        "asyncio-streams": _tls_on_asyncio(serve_asyncio_streams_tls, uvloop=False),
        "uvloop-streams": _tls_on_asyncio(serve_asyncio_streams_tls, uvloop=True),
        "trio": _tls_on_trio,
    }


# The kinds with a tls-echo mode: those of _tls_kinds().
TLS_KINDS = TLS_SERVERS


# The modes that send a file, and the kinds that have each.
FILE_MODES = {
    "sendfile": ["pystream", "pystream-uvloop", "asyncio-streams", "uvloop-streams"],
    "readfile": ["pystream", "pystream-uvloop"],
}


def main() -> None:
    args = sys.argv[1:]
    plain = len(args) == 2 and args[0] in KINDS and args[1] in ("echo", "source")
    with_file = len(args) == 3 and args[0] in FILE_MODES.get(args[1], [])
    tls = len(args) == 4 and args[0] in TLS_KINDS and args[1] == "tls-echo"
    if not (plain or with_file or tls):
        raise SystemExit(
            f"usage: python -m pystream.bench.servers {{{','.join(KINDS)}}} echo|source\n"
            "       python -m pystream.bench.servers KIND sendfile|readfile FILE  "
            f"(sendfile: {', '.join(FILE_MODES['sendfile'])}; "
            f"readfile: {', '.join(FILE_MODES['readfile'])})\n"
            "       python -m pystream.bench.servers KIND tls-echo CERT KEY  "
            f"({', '.join(TLS_KINDS)})"
        )
    try:
        if tls:
            _tls_kinds()[args[0]](args[2], args[3])
        else:
            KINDS[args[0]](args[1], args[2] if len(args) == 3 else None)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
