"""``python -m pystream bench``'s command line: its options, the settings
they make, and the run that prints the table, the JSON or the chart."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._catalog import ALL_WORKLOADS, MIB, SERVERS, WORKLOADS
from ._command import add_json_argument, check_host, names_in, print_result
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
    add_json_argument(parser)
    parser.add_argument("--plot", metavar="FILE.png", help="also draw a chart (needs matplotlib)")


def settings_from(args: argparse.Namespace) -> Settings:
    def pick(value: Any, full: Any, quick: Any) -> Any:
        return value if value is not None else (quick if args.quick else full)

    servers = SERVERS
    if args.servers:
        servers = names_in(args.servers, SERVERS, "bench", "server")
    workloads = list(WORKLOADS)
    if args.workloads:
        names = names_in(args.workloads, ALL_WORKLOADS, "bench", "workload")
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
    check_host("bench", "it reads /proc for CPU time and memory", "to build its load generator")
    settings = settings_from(args)
    try:
        result = run_benchmark(settings, sys.stderr)
    except RuntimeError as exc:
        print(f"pystream bench: {exc}", file=sys.stderr)
        return 1
    print_result(result, format_table, args.json)
    if args.plot:
        plot(result, args.plot)
    return 0
