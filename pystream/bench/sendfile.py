"""``python -m pystream bench-sendfile``: a server sending a file.

One file of ``BULK_BYTE`` (1 GiB by default) is made for the run in a
temporary directory (flushed to disk, so its pages are clean in the page
cache) and removed after it.  Each sender is a server in its own process,
pinned like ``bench``'s, that reads the 8-byte count the load generator's
``bulk`` reader sends and sends that many bytes of the file; the reader
checks every byte and the count.  The senders (``SENDERS``):

- ``send_file``: pystream's ``send_file`` (``sendfile(2)``), default loop;
- ``send_file-uvloop``: the same on uvloop;
- ``read+send_all``: pystream, the file read 256 KiB at a time in the loop
  (the page cache answers) and each chunk ``send_all``-ed;
- ``asyncio-sendfile``: an asyncio streams server calling
  ``loop.sendfile(transport, file, 0, count)``;
- ``c-sendfile``: ``refserver.c``'s sendfile mode, plain C: non-blocking
  ``sendfile(2)``, ``poll(2)`` whenever the socket buffer is full.

Every sender first sends the whole file once, untimed (its first
connection, PyPy's JIT), then all are measured in interleaved rounds, the
first sender rotating.  The figures are the transfer's MB/s, timed by the
reader, and the sender's CPU time per MB (``/proc``, between the reader's
marks); the table gives medians and two ratios, a sender's MB/s to the C
loop's and its CPU per MB to ``read+send_all``'s, with the issue's targets
for ``send_file`` (``TARGETS``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, Any, Optional

from ._build import build, build_refserver
from ._catalog import BULK_BYTE, MIB, REFERENCE
from ._command import (
    add_json_argument,
    add_mib_and_rounds,
    check_host,
    check_mib_and_rounds,
    names_in,
    print_result,
)
from ._measure import Progress, describe_run, measure_bulk, rotated
from ._processes import Server, available_servers, pick_cpus
from ._report import summarize

__all__ = ["SENDERS", "TARGETS", "add_arguments", "format_table", "run", "run_benchmark"]

# name: (server kind, mode); see pystream.bench.servers and refserver.c.
SENDERS = {
    "send_file": ("pystream", "sendfile"),
    "send_file-uvloop": ("pystream-uvloop", "sendfile"),
    "read+send_all": ("pystream", "readfile"),
    "asyncio-sendfile": ("asyncio-streams", "sendfile"),
    "c-sendfile": (REFERENCE, "sendfile"),
}
C_LOOP = "c-sendfile"
COPYING = "read+send_all"
# The targets for pystream's send_file: at least this fraction of
# the C loop's MB/s, at most this fraction of read+send_all's CPU per MB.
TARGETS = {"mb_per_s_vs_c": 0.9, "cpu_vs_read": 0.3}


@dataclass
class Settings:
    senders: list[str]
    rounds: int
    file_bytes: int
    directory: Optional[str] = None  # of the temporary file; None: the system's


def make_file(directory: str, size: int) -> str:
    """A file of size BULK_BYTEs in directory, on disk (so the page cache
    holds clean pages, not dirty ones that writeback would flush during a
    measurement)."""
    path = os.path.join(directory, "bulk.bin")
    block = BULK_BYTE * MIB
    with open(path, "wb") as f:
        for start in range(0, size, MIB):
            f.write(block[: size - start])
        f.flush()
        os.fsync(f.fileno())
    return path


def run_benchmark(settings: Settings, progress_stream: IO[str]) -> dict[str, Any]:
    loadgen = build("loadgen", [])
    refserver, refserver_error = build_refserver()
    kinds, why_not = available_servers(
        sorted({SENDERS[s][0] for s in settings.senders}), refserver_error
    )
    names = [s for s in settings.senders if SENDERS[s][0] in kinds]
    skipped = {s: why_not[SENDERS[s][0]] for s in settings.senders if s not in names}
    if not names:
        raise RuntimeError("no sender to measure")
    cpus = pick_cpus()
    samples: dict[str, list[dict[str, float]]] = {s: [] for s in names}
    progress = Progress(progress_stream, len(names) * settings.rounds)
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="pystream-bench-", dir=settings.directory) as tmp:
        path = make_file(tmp, settings.file_bytes)
        try:
            for name in names:
                kind, mode = SENDERS[name]
                servers[name] = Server(kind, mode, refserver, cpus[0], [path])
            progress_stream.write("warming up the senders...\n")
            for name in names:
                measure_bulk(loadgen, servers[name], settings.file_bytes, cpus[1])
            for rnd in range(settings.rounds):
                for name in rotated(names, rnd):
                    sample = measure_bulk(
                        loadgen, servers[name], settings.file_bytes, cpus[1], transfer=True
                    )
                    samples[name].append(sample)
                    progress.step(
                        f"round {rnd + 1}/{settings.rounds}  {name:<17} "
                        f"{sample['mb_per_s']:,.0f} MB/s, {sample['cpu_us_per_mb']:,.0f} us CPU/MB"
                    )
                for server in servers.values():
                    server.check_alive()
        finally:
            progress.finish()
            for server in servers.values():
                server.stop()
    result: dict[str, Any] = {
        **describe_run(cpus),
        "settings": {"rounds": settings.rounds, "file_bytes": settings.file_bytes},
        "skipped": skipped,
        "senders": {
            name: {"server": SENDERS[name][0], "mode": SENDERS[name][1], **summarize(got)}
            for name, got in samples.items()
        },
    }
    result["ratios"] = ratios(result)
    result["targets"] = targets(result["ratios"])
    return result


def ratios(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per sender: its median MB/s over the C loop's, and its median CPU
    per MB over read+send_all's (where those ran)."""
    senders = result["senders"]
    out: dict[str, dict[str, float]] = {}
    for name, summary in senders.items():
        med = summary["median"]
        out[name] = {}
        if C_LOOP in senders and senders[C_LOOP]["median"]["mb_per_s"]:
            out[name]["mb_per_s_vs_c"] = med["mb_per_s"] / senders[C_LOOP]["median"]["mb_per_s"]
        if COPYING in senders and senders[COPYING]["median"]["cpu_us_per_mb"]:
            copying = senders[COPYING]["median"]["cpu_us_per_mb"]
            out[name]["cpu_vs_read"] = med["cpu_us_per_mb"] / copying
    return out


def targets(rel: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """For each pystream send_file sender that ran: each target's ratio, and
    whether it is met (a ratio that could not be computed is left out)."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("send_file", "send_file-uvloop"):
        if name not in rel:
            continue
        out[name] = {}
        for key, bound in TARGETS.items():
            if key in rel[name]:
                value = rel[name][key]
                met = value >= bound if key == "mb_per_s_vs_c" else value <= bound
                out[name][key] = {"bound": bound, "ratio": value, "met": met}
    return out


def format_table(result: dict[str, Any]) -> str:
    s = result["settings"]
    header = (
        f"{'sender':<17} {'MB/s [min-max]':>22} {'CPU us/MB [min-max]':>22} "
        f"{'MB/s xC':>8} {'CPU xread':>10}"
    )
    lines = [
        f"pystream bench-sendfile: {result['python']}, a {s['file_bytes'] / MIB:,.0f} MiB file, "
        f"{s['rounds']} rounds, medians [min-max]; servers "
        f"{'pinned to one core' if result['machine']['pinned'] else 'not pinned'}",
        "",
        header,
        "-" * len(header),
    ]
    for name, summary in result["senders"].items():
        med, lo, hi = summary["median"], summary["min"], summary["max"]
        r = result["ratios"][name]
        speed = f"{med['mb_per_s']:,.0f} [{lo['mb_per_s']:,.0f}-{hi['mb_per_s']:,.0f}]"
        cpu = f"{med['cpu_us_per_mb']:,.0f} [{lo['cpu_us_per_mb']:,.0f}-{hi['cpu_us_per_mb']:,.0f}]"
        xc = f"{r['mb_per_s_vs_c']:.2f}" if "mb_per_s_vs_c" in r else "-"
        xread = f"{r['cpu_vs_read']:.2f}" if "cpu_vs_read" in r else "-"
        lines.append(f"{name:<17} {speed:>22} {cpu:>22} {xc:>8} {xread:>10}")
    for name, why in result["skipped"].items():
        lines.append(f"skipped {name}: {why}")
    lines.append("")
    for name, checks in result["targets"].items():
        for key, check in checks.items():
            what = "MB/s >= {:.1f}x {}" if key == "mb_per_s_vs_c" else "CPU/MB <= {:.1f}x {}"
            what = what.format(check["bound"], C_LOOP if key == "mb_per_s_vs_c" else COPYING)
            verdict = "met" if check["met"] else "MISSED"
            lines.append(f"target: {name} {what}: {check['ratio']:.2f}, {verdict}")
    lines.append(
        "CPU = the sending server's user+system time while the reader reads; "
        "xC: MB/s over c-sendfile's; xread: CPU per MB over read+send_all's."
    )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_mib_and_rounds(parser, 1024, "file size in MiB")
    parser.add_argument("--senders", help=f"comma-separated subset of: {','.join(SENDERS)}")
    parser.add_argument(
        "--dir", metavar="DIR", help="where to make the file (default: the system's temp dir)"
    )
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    check_host(
        "bench-sendfile", "sendfile(2), and /proc for CPU time", "for its reader and C sender"
    )
    senders = list(SENDERS)
    if args.senders:
        senders = names_in(args.senders, SENDERS, "bench-sendfile", "sender")
    check_mib_and_rounds("bench-sendfile", args)
    settings = Settings(senders, args.rounds, args.mib * MIB, args.dir)
    try:
        result = run_benchmark(settings, sys.stderr)
    except (RuntimeError, OSError) as exc:  # a sender or the reader failed, or the file
        print(f"pystream bench-sendfile: {exc}", file=sys.stderr)
        return 1
    print_result(result, format_table, args.json)
    return 0
