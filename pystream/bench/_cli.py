"""``python -m pystream bench``'s command line: its options, the settings
they make, and the run that prints the table, the JSON or the chart."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

from ._catalog import ALL_WORKLOADS, MIB, SERVERS, WORKLOADS
from ._measure import Settings, run_benchmark
from ._report import format_table, plot

__all__ = ["add_arguments", "run", "settings_from"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 rounds, short windows, 128 MiB bulk, 1,000 idle connections (about a minute)",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 2)")
    parser.add_argument(
        "--seconds", type=float, help="measured window per echo run (default 2; quick 0.5)"
    )
    parser.add_argument(
        "--bulk-mib", type=int, help="bulk transfer size in MiB (default 1024; quick 128)"
    )
    parser.add_argument("--idle", type=int, help="idle connections (default 10000; quick 1000)")
    parser.add_argument("--servers", help=f"comma-separated subset of: {','.join(SERVERS)}")
    parser.add_argument(
        "--workloads",
        help="comma-separated, of: echo-1k,ping-pong,echo-64k,bulk,idle (the default set) "
        "and tls-1k,tls-64k (TLS echo, needs libssl-dev and openssl)",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the results as JSON ('-': stdout, no table)"
    )
    parser.add_argument("--plot", metavar="FILE.png", help="also draw a chart (needs matplotlib)")


def settings_from(args: argparse.Namespace) -> Settings:
    def pick(value: Any, full: Any, quick: Any) -> Any:
        return value if value is not None else (quick if args.quick else full)

    servers = SERVERS
    if args.servers:
        servers = [s.strip() for s in args.servers.split(",") if s.strip()]
        unknown = [s for s in servers if s not in SERVERS]
        if unknown:
            raise SystemExit(
                f"bench: unknown server(s) {', '.join(unknown)}; choose from {', '.join(SERVERS)}"
            )
    workloads = list(WORKLOADS)
    if args.workloads:
        names = [w.strip() for w in args.workloads.split(",") if w.strip()]
        unknown = [w for w in names if w not in ALL_WORKLOADS]
        if unknown:
            raise SystemExit(
                f"bench: unknown workload(s) {', '.join(unknown)}; choose from {', '.join(ALL_WORKLOADS)}"
            )
        workloads = [ALL_WORKLOADS[w] for w in names]
    settings = Settings(
        servers=servers,
        rounds=pick(args.rounds, 5, 2),
        seconds=pick(args.seconds, 2.0, 0.5),
        bulk_bytes=pick(args.bulk_mib, 1024, 128) * MIB,
        idle_connections=pick(args.idle, 10000, 1000),
        workloads=workloads,
    )
    if (
        settings.rounds < 1
        or settings.seconds <= 0
        or settings.bulk_bytes <= 0
        or settings.idle_connections < 1
    ):
        raise SystemExit("bench: rounds, seconds, bulk size and idle connections must be positive")
    return settings


def run(args: argparse.Namespace) -> int:
    if not sys.platform.startswith("linux"):
        raise SystemExit("bench: Linux only (it reads /proc for CPU time and memory)")
    if shutil.which(os.environ.get("CC", "cc")) is None:
        raise SystemExit("bench: needs a C compiler (cc) to build its load generator")
    settings = settings_from(args)
    try:
        result = run_benchmark(settings, sys.stderr)
    except RuntimeError as exc:
        print(f"pystream bench: {exc}", file=sys.stderr)
        return 1
    if args.json == "-":
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print(format_table(result))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
    if args.plot:
        plot(result, args.plot)
    return 0
