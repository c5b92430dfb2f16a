"""Command line: ``python -m pystream {bench,bench-pipes,bench-sendfile,demo,echo,connect,
serve-file,fetch} ...``."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import ssl
import sys
import time
from typing import Optional, Union, cast

import pystream


def _loop_runner(use_uvloop: bool):  # type: ignore[no-untyped-def]
    if not use_uvloop:
        return asyncio.run
    try:
        import uvloop
    except ImportError:
        raise SystemExit("--uvloop: uvloop is not installed (pip install uvloop)") from None
    return uvloop.run


# -- echo -----------------------------------------------------------------


async def _echo_handler(stream: pystream.SocketStream) -> None:
    async for chunk in stream:
        await stream.send_all(chunk)


async def _listen(args: argparse.Namespace) -> list[pystream.SocketListener]:
    """The listeners the server commands use: --unix PATH, or TCP."""
    if args.unix:
        return [await pystream.open_unix_listener(args.unix)]
    return list(await pystream.open_tcp_listeners(args.port, host=args.host))


async def _serve_echo(args: argparse.Namespace) -> None:
    listeners = await _listen(args)
    for listener in listeners:
        print(f"echo server listening on {listener.local_address!r}", flush=True)
    await pystream.serve_listeners(_echo_handler, listeners)


# -- connecting (connect, fetch) ------------------------------------------


async def _open(
    args: argparse.Namespace, command: str
) -> Union[pystream.SocketStream, pystream.TLSStream]:
    """The stream the client commands use: TCP or Unix, then TLS if asked."""
    stream: Union[pystream.SocketStream, pystream.TLSStream]
    if args.unix:
        stream = await pystream.open_unix_stream(args.unix)
    else:
        if args.host is None or args.port is None:
            raise SystemExit(f"{command}: give HOST and PORT, or --unix PATH")
        stream = await pystream.open_tcp_stream(args.host, args.port)
    if args.tls or args.cafile or args.insecure:
        context = ssl.create_default_context(cafile=args.cafile)
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        tls = pystream.TLSStream(stream, context, server_hostname=args.server_hostname or args.host)
        try:
            await tls.do_handshake()
        except BaseException:
            await pystream.aclose_forcefully(tls)
            raise
        stream = tls
    return stream


def _add_listen_arguments(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default=None, help="default: all interfaces")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--unix", metavar="PATH", help="serve on a Unix socket")


def _add_connect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", nargs="?")
    parser.add_argument("port", nargs="?", type=int)
    parser.add_argument("--unix", metavar="PATH", help="connect to a Unix socket")
    parser.add_argument("--tls", action="store_true", help="speak TLS (system CAs)")
    parser.add_argument("--cafile", metavar="PEM", help="TLS: trust these certificates")
    parser.add_argument("--insecure", action="store_true", help="TLS: do not check the certificate")
    parser.add_argument(
        "--server-hostname", metavar="NAME", help="TLS: the name to check (default: HOST)"
    )


class _Progress:
    """Bytes moved and the rate, on one line of stderr, at most 5 times a
    second; only on a terminal unless forced."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.total = 0
        self.start = time.monotonic()
        self.shown = 0.0

    def add(self, n: int) -> None:
        self.total += n
        now = time.monotonic()
        if self.enabled and now - self.shown >= 0.2:
            self.shown = now
            self._show(now, end="")

    def _show(self, now: float, end: str) -> None:
        elapsed = max(now - self.start, 1e-9)
        sys.stderr.write(
            f"\r{self.label} {self.total / 1048576:10.1f} MiB "
            f"{self.total / 1048576 / elapsed:8.1f} MiB/s{end}"
        )
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            self._show(time.monotonic(), end="\n")


# -- serve-file / fetch ---------------------------------------------------


async def _serve_file(args: argparse.Namespace) -> None:
    size = os.path.getsize(args.path)  # fails clearly before listening
    listeners = await _listen(args)

    async def send_file(stream: pystream.SocketStream) -> None:
        peer = stream.remote_address or "a client"  # (Unix clients have no name)
        start = time.monotonic()
        with open(args.path, "rb") as f:
            sent = await stream.send_file(f)  # the kernel copies (sendfile)
        await stream.send_eof()
        await stream.read()  # wait for the client to finish reading and close
        elapsed = time.monotonic() - start
        print(f"sent {sent} bytes to {peer!r} in {elapsed:.2f} s", flush=True)

    for listener in listeners:
        print(f"serving {args.path} ({size} bytes) on {listener.local_address!r}", flush=True)
    await pystream.serve_listeners(send_file, listeners)


async def _fetch(args: argparse.Namespace) -> None:
    digest = hashlib.sha256()
    progress = _Progress("fetch", args.progress or sys.stderr.isatty())
    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")
    try:
        async with await _open(args, "fetch") as stream:
            async for chunk in stream:
                out.write(chunk)
                digest.update(chunk)
                progress.add(len(chunk))
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()
    progress.finish()
    print(f"{progress.total} bytes, sha256 {digest.hexdigest()}", file=sys.stderr)


# -- connect --------------------------------------------------------------


async def _connect(args: argparse.Namespace) -> None:
    stream = await _open(args, "connect")
    loop = asyncio.get_running_loop()
    stdin = cast(io.BufferedReader, sys.stdin.buffer)
    stdout = sys.stdout.buffer

    async def pump_stdin() -> None:
        while True:
            # stdin may be a terminal, a pipe or a file: read it in a thread.
            data = await loop.run_in_executor(None, stdin.read1, 65536)
            if not data:
                try:
                    await stream.send_eof()
                except NotImplementedError:
                    pass  # TLS 1.2 has no half-close: keep reading until the server closes
                return
            await stream.send_all(data)

    async with stream:
        sender = asyncio.ensure_future(pump_stdin())
        try:
            async for chunk in stream:
                stdout.write(chunk)
                stdout.flush()
        finally:
            if not sender.done():
                sender.cancel()
            else:
                sender.result()


# -- demo -----------------------------------------------------------------


async def _demo(args: argparse.Namespace) -> None:
    """An echo server and clients in one process: shows the API working and
    what it moves.  Not a benchmark: ``bench`` compares servers."""
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = int(listeners[0].local_address[1])
    server = asyncio.ensure_future(pystream.serve_listeners(_echo_handler, listeners))
    print(
        f"echo server on 127.0.0.1:{port}; {args.clients} clients, "
        f"{args.megabytes} MiB each way per client",
        flush=True,
    )

    block = os.urandom(64 * 1024)
    per_client = args.megabytes * 1024 * 1024
    latencies: list[float] = []

    async def client() -> None:
        async with await pystream.open_tcp_stream("127.0.0.1", port) as stream:
            for _ in range(args.pings):
                start = time.perf_counter()
                await stream.send_all(b"ping\n")
                assert await stream.readline() == b"ping\n"
                latencies.append(time.perf_counter() - start)
            sent = hashlib.sha256()
            got = hashlib.sha256()

            async def send() -> None:
                for offset in range(0, per_client, len(block)):
                    chunk = block[: per_client - offset]
                    sent.update(chunk)
                    await stream.send_all(chunk)
                await stream.send_eof()

            async def receive() -> int:
                total = 0
                async for chunk in stream:
                    got.update(chunk)
                    total += len(chunk)
                return total

            _, total = await asyncio.gather(send(), receive())
            if total != per_client or sent.digest() != got.digest():
                raise SystemExit("demo: the echo came back different")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.clients)))
    elapsed = time.perf_counter() - start
    server.cancel()
    try:
        await server
    except asyncio.CancelledError:
        pass
    latencies.sort()
    moved = 2 * per_client * args.clients / (1024 * 1024)
    median = latencies[len(latencies) // 2] * 1e6 if latencies else 0.0
    print(f"round trips: {len(latencies)}, median {median:.0f} us")
    print(
        f"echoed {moved:.0f} MiB (both directions) in {elapsed:.2f} s, "
        f"{moved / elapsed:.0f} MiB/s, every byte checked by SHA-256"
    )
    print("OK")


# -- entry ----------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pystream",
        description="pystream: one awaitable Stream per connection for asyncio.",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser(
        "bench",
        help="benchmark pystream against asyncio, uvloop, trio and plain C",
        description="Echo, ping-pong, bulk and idle-connection workloads against each "
        "server in its own process, driven by a load generator in C; "
        "interleaved rounds, medians, server CPU per request.",
    )
    from .bench import add_arguments

    add_arguments(bench)

    bench_pipes = commands.add_parser(
        "bench-pipes",
        help="benchmark bytes through a child process (cat)",
        description="pystream's open_process against asyncio's subprocess streams and "
        "trio's open_process: MiB through cat, MB/s and the parent's CPU per MB, "
        "interleaved rounds, medians.",
    )
    from .bench.pipes import add_arguments as add_pipes_arguments

    add_pipes_arguments(bench_pipes)

    bench_sendfile = commands.add_parser(
        "bench-sendfile",
        help="benchmark sending a file: send_file against read + send_all, asyncio and C",
        description="A server sends a 1 GiB file to a C reader: pystream's send_file "
        "(default loop, uvloop), read + send_all, asyncio's loop.sendfile and a C "
        "sendfile(2) loop; MB/s and the sender's CPU per MB, interleaved rounds, medians.",
    )
    from .bench.sendfile import add_arguments as add_sendfile_arguments

    add_sendfile_arguments(bench_sendfile)

    demo = commands.add_parser("demo", help="echo server and clients in one process")
    demo.add_argument("--clients", type=int, default=4)
    demo.add_argument(
        "--megabytes", type=int, default=64, help="MiB each client sends (and gets back)"
    )
    demo.add_argument(
        "--pings", type=int, default=200, help="line round trips per client before the bulk"
    )

    echo = commands.add_parser("echo", help="run an echo server")
    _add_listen_arguments(echo, port=7777)

    connect = commands.add_parser(
        "connect",
        help="netcat-like: stdin to the stream, the stream to stdout",
        description="Sends stdin, prints what comes back; stdin's EOF half-closes.",
    )
    _add_connect_arguments(connect)

    serve_file = commands.add_parser(
        "serve-file",
        help="send a file to every client that connects",
        description="Each connection gets the whole file, then EOF.",
    )
    serve_file.add_argument("path")
    _add_listen_arguments(serve_file, port=7778)

    fetch = commands.add_parser(
        "fetch",
        help="receive what a server sends, to a file, with progress",
        description="Reads until the server's EOF; prints the size and SHA-256.",
    )
    _add_connect_arguments(fetch)
    fetch.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    fetch.add_argument(
        "--progress", action="store_true", help="show progress even when stderr is not a terminal"
    )

    args = parser.parse_args(argv)
    if args.command == "bench":
        from .bench import run as run_bench

        return run_bench(args)
    if args.command == "bench-pipes":
        from .bench.pipes import run as run_bench_pipes

        return run_bench_pipes(args)
    if args.command == "bench-sendfile":
        from .bench.sendfile import run as run_bench_sendfile

        return run_bench_sendfile(args)
    run = _loop_runner(args.uvloop)
    target = {
        "demo": _demo,
        "echo": _serve_echo,
        "connect": _connect,
        "serve-file": _serve_file,
        "fetch": _fetch,
    }[args.command]
    try:
        run(target(args))
    except KeyboardInterrupt:
        return 130
    except (OverflowError, ValueError, TypeError) as exc:  # a bad address or port
        print(f"pystream {args.command}: {exc}", file=sys.stderr)
        return 2
    except (OSError, pystream.BrokenResourceError) as exc:
        # The cause, unless the message already says it (a TLS error's
        # does: "TLS failed: <the SSL message>").
        reason = exc.__cause__
        cause = f" ({reason})" if reason is not None and str(reason) not in str(exc) else ""
        print(f"pystream {args.command}: {exc}{cause}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
