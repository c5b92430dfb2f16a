"""A bounded loopback soak: many connections doing echo, half-close, resets,
cancellations and slow reading against one pystream echo server, in one
process, for a fixed time.

    python -m pystream.testing.soak --seconds 60 --connections 300 [--uvloop]

It prints what was done, the errors by class, and the process's memory, file
descriptors and pystream's C handles at the start and at the end.  Every
echoed byte is checked; a wrong byte, an unexpected error class or anything
left open at the end makes it exit with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Counter, Optional

import pystream

from .._core import counters

__all__ = ["SoakReport", "soak", "main"]


@dataclass
class Snapshot:
    rss_kib: int
    fds: int
    handles: int

    @staticmethod
    def take() -> Snapshot:
        rss = 0
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return Snapshot(rss, len(os.listdir("/proc/self/fd")), counters()["handles"])


@dataclass
class SoakReport:
    seconds: float
    done: Counter[str] = field(default_factory=collections.Counter)
    bytes_echoed: int = 0
    expected_errors: Counter[str] = field(default_factory=collections.Counter)
    unexpected: list[str] = field(default_factory=list)
    start: Optional[Snapshot] = None
    end: Optional[Snapshot] = None

    @property
    def ok(self) -> bool:
        return (
            not self.unexpected
            and self.end is not None
            and self.start is not None
            and self.end.handles == 0
            and self.end.fds <= self.start.fds
        )

    def format(self) -> str:
        lines = [
            f"soak: {self.seconds:.0f} s, {sum(self.done.values())} scenarios, "
            f"{self.bytes_echoed / 1e6:.1f} MB echoed and checked"
        ]
        for name, n in sorted(self.done.items()):
            lines.append(f"  {name:<12} {n}")
        lines.append(
            "expected errors (resets, cancellations): "
            + (", ".join(f"{k} x{v}" for k, v in sorted(self.expected_errors.items())) or "none")
        )
        lines.append(f"unexpected: {len(self.unexpected)}")
        lines.extend(f"  {u}" for u in self.unexpected[:20])
        for label, snap in (("start", self.start), ("end", self.end)):
            if snap is not None:
                lines.append(
                    f"{label:<5}: RSS {snap.rss_kib / 1024:.1f} MiB, "
                    f"{snap.fds} fds, {snap.handles} C handles"
                )
        lines.append("OK" if self.ok else "FAILED")
        return "\n".join(lines)


class _Unexpected(Exception):
    pass


async def _echo(stream: Any) -> None:
    try:
        async for chunk in stream:
            await stream.send_all(chunk)
    except pystream.BrokenResourceError:
        pass  # a client reset: expected in this soak


async def _read_to_eof(stream: Any, into: bytearray) -> None:
    while True:
        chunk = await stream.receive_some()
        if not chunk:
            return
        into += chunk


def _payload(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size) if hasattr(rng, "randbytes") else os.urandom(size)


# -- scenarios: each takes a connected stream and must leave it closed ------


async def _scenario_echo(stream: Any, rng: random.Random, report: SoakReport) -> None:
    async with stream:
        for _ in range(rng.randint(1, 20)):
            data = _payload(rng, rng.choice([1, 100, 1024, 20000]))
            await stream.send_all(data)
            back = await stream.readexactly(len(data))
            if back != data:
                raise _Unexpected("echo came back different")
            report.bytes_echoed += len(data)


async def _scenario_half_close(stream: Any, rng: random.Random, report: SoakReport) -> None:
    async with stream:
        data = _payload(rng, rng.randint(1, 300_000))
        received = bytearray()
        reader = asyncio.ensure_future(_read_to_eof(stream, received))
        await stream.send_all(data)
        await stream.send_eof()
        await reader
        if bytes(received) != data:
            raise _Unexpected(f"half-close: {len(received)} of {len(data)} bytes came back")
        report.bytes_echoed += len(data)


async def _scenario_reset(stream: Any, rng: random.Random, report: SoakReport) -> None:
    await stream.send_all(_payload(rng, rng.randint(1, 100_000)))
    await asyncio.sleep(rng.random() * 0.01)
    await pystream.aclose_forcefully(stream)


async def _scenario_cancel(stream: Any, rng: random.Random, report: SoakReport) -> None:
    async with stream:
        # A receive cancelled at a random moment loses nothing.
        data = _payload(rng, rng.randint(1, 50_000))
        await stream.send_all(data)
        received = bytearray()
        while len(received) < len(data):
            task = asyncio.ensure_future(stream.receive_some(rng.randint(1, 8192)))
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)
            task.cancel()
            try:
                received += await task
            except asyncio.CancelledError:
                report.expected_errors["CancelledError"] += 1
        if bytes(received) != data:
            raise _Unexpected("cancelled receives lost or changed data")
        report.bytes_echoed += len(data)


async def _scenario_slow_reader(stream: Any, rng: random.Random, report: SoakReport) -> None:
    async with stream:
        data = _payload(rng, 2_000_000)
        sender = asyncio.ensure_future(stream.send_all(data))
        await asyncio.sleep(0.05)  # not reading: the echo backs up, sends block
        back = await stream.readexactly(len(data))
        await sender
        if back != data:
            raise _Unexpected("slow reader: data differs")
        report.bytes_echoed += len(data)


SCENARIOS: dict[str, Callable[[Any, random.Random, SoakReport], Any]] = {
    "echo": _scenario_echo,
    "half-close": _scenario_half_close,
    "reset": _scenario_reset,
    "cancel": _scenario_cancel,
    "slow-reader": _scenario_slow_reader,
}
WEIGHTS = [50, 20, 10, 15, 5]


async def soak(seconds: float, connections: int, seed: int = 0) -> SoakReport:
    """Run the soak in the running loop; return its report."""
    report = SoakReport(seconds)
    # The first stream makes this loop's libuv loop (and libuv's process-wide
    # descriptors): count from there.
    a, b = await pystream.open_stream_pair()
    await a.aclose()
    await b.aclose()
    gc.collect()
    report.start = Snapshot.take()
    tmp = tempfile.mkdtemp(prefix="pystream-soak-")
    unix_path = os.path.join(tmp, "sock")
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    listeners.append(await pystream.open_unix_listener(unix_path))
    port = int(listeners[0].local_address[1])
    server = asyncio.ensure_future(pystream.serve_listeners(_echo, listeners))
    deadline = time.monotonic() + seconds

    async def worker(n: int) -> None:
        rng = random.Random(seed * 100_003 + n)
        while time.monotonic() < deadline:
            name = rng.choices(list(SCENARIOS), WEIGHTS)[0]
            try:
                if rng.random() < 0.5:
                    stream = await pystream.open_tcp_stream("127.0.0.1", port)
                else:
                    stream = await pystream.open_unix_stream(unix_path)
                await asyncio.wait_for(SCENARIOS[name](stream, rng, report), 30)
                report.done[name] += 1
            except _Unexpected as exc:
                report.unexpected.append(f"{name}: {exc}")
            except Exception as exc:  # noqa: BLE001 - counted and reported
                report.unexpected.append(f"{name}: {type(exc).__name__}: {exc}")

    try:
        await asyncio.gather(*(worker(n) for n in range(connections)))
    finally:
        server.cancel()
        try:
            await server
        except asyncio.CancelledError:
            pass
        try:
            os.unlink(unix_path)
        except FileNotFoundError:
            pass
        os.rmdir(tmp)
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0)
    report.end = Snapshot.take()
    return report


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pystream.testing.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--connections",
        type=int,
        default=300,
        help="concurrent clients, each running scenarios back to back",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.connections < 1:
        parser.error("--seconds and --connections must be positive")
    run: Callable[..., Any] = asyncio.run
    if args.uvloop:
        import uvloop

        run = uvloop.run
    report = run(soak(args.seconds, args.connections, args.seed))
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
