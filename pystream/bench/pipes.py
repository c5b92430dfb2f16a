"""``python -m pystream bench-pipes``: bytes through a child process.

Each implementation starts ``cat``, writes N MiB to its stdin in 1 MiB
pieces while it reads the same N MiB back from its stdout, and reports the
wall time and its own CPU time (the parent's: ``cat``'s work is the same
for every one).  Each run is a fresh interpreter
(``python -m pystream.bench.pipes run IMPL MIB``); implementations are
interleaved, round after round, and the table shows medians.

Compared: pystream's ``open_process`` (default loop and uvloop), asyncio's
``create_subprocess_exec`` streams (default loop and uvloop) and trio's
``open_process``; each skipped if its library is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

from ._catalog import MIB
from ._command import (
    add_json_argument,
    add_mib_and_rounds,
    check_mib_and_rounds,
    names_in,
    print_result,
)

__all__ = ["IMPLS", "add_arguments", "run", "run_benchmark", "format_table"]

IMPLS = ["pystream", "pystream-uvloop", "asyncio", "asyncio-uvloop", "trio"]
_REQUIRES = {"pystream-uvloop": "uvloop", "asyncio-uvloop": "uvloop", "trio": "trio"}


# -- one run, in its own interpreter -----------------------------------------


async def _through_pystream(mib: int) -> int:
    import pystream

    proc = await pystream.open_process(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    chunk = b"x" * MIB

    async def feed() -> None:
        for _ in range(mib):
            await stdin.send_all(chunk)
        await stdin.send_eof()

    async def drain() -> int:
        buffer = bytearray(MIB)
        total = 0
        while count := await stdout.receive_into(buffer):
            total += count
        return total

    _, total = await asyncio.gather(feed(), drain())
    await proc.aclose()
    return int(total)


async def _through_asyncio(mib: int) -> int:
    proc = await asyncio.create_subprocess_exec(
        "cat", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    chunk = b"x" * MIB

    async def feed() -> None:
        for _ in range(mib):
            stdin.write(chunk)
            await stdin.drain()
        stdin.close()

    async def drain() -> int:
        total = 0
        while data := await stdout.read(MIB):
            total += len(data)
        return total

    _, total = await asyncio.gather(feed(), drain())
    await proc.wait()
    return int(total)


def _through_trio(mib: int) -> int:
    import trio

    async def main() -> int:
        proc = await trio.lowlevel.open_process(
            ["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        stdin, stdout = proc.stdin, proc.stdout
        assert stdin is not None and stdout is not None
        chunk = b"x" * MIB
        total = 0

        async def feed() -> None:
            for _ in range(mib):
                await stdin.send_all(chunk)
            await stdin.aclose()

        async def drain() -> None:
            nonlocal total
            while data := await stdout.receive_some(MIB):
                total += len(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            nursery.start_soon(drain)
        await proc.wait()
        return total

    return int(trio.run(main))


def _runner(impl: str) -> Callable[[int], int]:
    if impl == "trio":
        return _through_trio
    coro = _through_pystream if impl.startswith("pystream") else _through_asyncio
    if impl.endswith("uvloop"):
        import uvloop

        return lambda mib: int(uvloop.run(coro(mib)))
    return lambda mib: asyncio.run(coro(mib))


def run_one_here(impl: str, mib: int) -> dict[str, float]:
    runner = _runner(impl)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    total = runner(mib)
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    if total != mib * MIB:
        raise SystemExit(f"{impl}: {total} bytes came back, not {mib * MIB}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {"mb_per_s": mib * MIB / 1e6 / wall, "cpu_ms_per_mb": cpu * 1e3 / (mib * MIB / 1e6)}


# -- the benchmark --------------------------------------------------------------


def available(impls: list[str]) -> list[str]:
    return [
        i for i in impls if i not in _REQUIRES or importlib.util.find_spec(_REQUIRES[i]) is not None
    ]


def run_one(impl: str, mib: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "pystream.bench.pipes", "run", impl, str(mib)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{impl} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def run_benchmark(impls: list[str], rounds: int, mib: int, progress: Any) -> dict[str, Any]:
    impls = available(impls)
    samples: dict[str, list[dict[str, float]]] = {i: [] for i in impls}
    for r in range(rounds):
        for impl in impls if r % 2 == 0 else reversed(impls):
            print(f"  round {r + 1}/{rounds}: {impl}", file=progress, flush=True)
            samples[impl].append(run_one(impl, mib))
    medians = {
        impl: {k: statistics.median(s[k] for s in got) for k in got[0]}
        for impl, got in samples.items()
    }
    return {
        "mib": mib,
        "rounds": rounds,
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "medians": medians,
        "samples": samples,
    }


def format_table(result: dict[str, Any]) -> str:
    medians = result["medians"]
    base = medians.get("asyncio")
    lines = [
        f"{result['mib']} MiB through cat, {result['implementation']} {result['python']}, "
        f"medians of {result['rounds']} rounds",
        f"{'':18} {'MB/s':>8} {'x asyncio':>10} {'CPU ms/MB':>10} {'x asyncio':>10}",
    ]
    for impl, m in medians.items():
        speed = f"{m['mb_per_s'] / base['mb_per_s']:.2f}" if base else "-"
        cpu = f"{m['cpu_ms_per_mb'] / base['cpu_ms_per_mb']:.2f}" if base else "-"
        lines.append(
            f"{impl:18} {m['mb_per_s']:8.0f} {speed:>10} {m['cpu_ms_per_mb']:10.3f} {cpu:>10}"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_mib_and_rounds(parser, 256, "MiB through cat")
    parser.add_argument("--impls", help=f"comma-separated subset of: {','.join(IMPLS)}")
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    impls = IMPLS
    if args.impls:
        impls = names_in(args.impls, IMPLS, "bench-pipes", "implementation")
    check_mib_and_rounds("bench-pipes", args)
    try:
        result = run_benchmark(impls, args.rounds, args.mib, sys.stderr)
    except RuntimeError as exc:
        print(f"pystream bench-pipes: {exc}", file=sys.stderr)
        return 1
    print_result(result, format_table, args.json)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        print(json.dumps(run_one_here(sys.argv[2], int(sys.argv[3]))))
    else:
        raise SystemExit("usage: python -m pystream.bench.pipes run IMPL MIB")
