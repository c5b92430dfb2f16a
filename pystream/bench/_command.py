"""What the benchmark's commands (``bench``, ``bench-sendfile``,
``bench-pipes``) share on their command lines: the options each has, the
names a comma-separated option picks, the checks of the host, and the
result printed as a table or JSON."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any, Callable, Iterable, Optional

__all__ = [
    "add_json_argument",
    "add_mib_and_rounds",
    "check_host",
    "check_mib_and_rounds",
    "names_in",
    "print_result",
    "write_json",
]


def check_host(command: str, linux_for: str, cc_for: str) -> None:
    """SystemExit unless this is Linux with a C compiler; the messages say
    what command needs each for."""
    if not sys.platform.startswith("linux"):
        raise SystemExit(f"{command}: Linux only ({linux_for})")
    if shutil.which(os.environ.get("CC", "cc")) is None:
        raise SystemExit(f"{command}: needs a C compiler (cc) {cc_for}")


def names_in(option: str, known: Iterable[str], command: str, what: str) -> list[str]:
    """The names in a comma-separated option, in its order; SystemExit
    naming those not among known (each a what)."""
    known = list(known)
    names = [n.strip() for n in option.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(
            f"{command}: unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    return names


def add_mib_and_rounds(parser: argparse.ArgumentParser, mib: int, mib_help: str) -> None:
    """--mib (default mib) and --rounds, for the commands that move MiB."""
    parser.add_argument("--mib", type=int, default=mib, help=f"{mib_help} (default {mib})")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")


def check_mib_and_rounds(command: str, args: argparse.Namespace) -> None:
    if args.mib < 1 or args.rounds < 1:
        raise SystemExit(f"{command}: --mib and --rounds must be positive")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """--json FILE, where '-' is stdout instead of the table (print_result)."""
    parser.add_argument(
        "--json", metavar="FILE", help="also write the results as JSON ('-': stdout, no table)"
    )


def write_json(result: dict[str, Any], path: str) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=1)


def print_result(
    result: dict[str, Any], format_table: Callable[[dict[str, Any]], str], json_file: Optional[str]
) -> None:
    """The table on stdout, and the JSON in json_file if given; with '-',
    the JSON on stdout and no table."""
    if json_file == "-":
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print(format_table(result))
        if json_file:
            write_json(result, json_file)
