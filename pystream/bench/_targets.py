"""The performance issue's targets (issue 22), each checked against one
benchmark run: medians of the same run, so both sides of a ratio met the
same machine.  ``format_table`` prints them under the tables; a target
whose servers or workload did not run is listed as not run."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, Optional

from ._catalog import ALL_WORKLOADS

__all__ = ["TARGETS", "Target", "check_targets", "format_targets"]


@dataclass(frozen=True)
class Target:
    label: str
    workload: str  # its name on the command line (ALL_WORKLOADS)
    server: str
    other: str
    figure: str  # a key of the medians
    limit: float  # the ratio server/other must be at most this (lower=True)
    lower: bool = True  # False: at least limit (a rate)
    interpreter: Optional[str] = None  # "CPython" or "PyPy": only there


_CPU = "cpu_us_per_request"
_RATE = "requests_per_s"
_MBS = "mb_per_s"

TARGETS = [
    Target("default loop, 100 x 1 KiB, CPU vs asyncio streams", "echo-1k", "pystream", "asyncio-streams", _CPU, 0.90),
    Target("default loop, ping-pong, CPU vs asyncio streams", "ping-pong", "pystream", "asyncio-streams", _CPU, 0.90),
    Target("own loop, 100 x 1 KiB, CPU vs asyncio streams (default loop)", "echo-1k", "pystream-ownloop", "asyncio-streams", _CPU, 0.85),
    Target("own loop, ping-pong, CPU vs asyncio streams (default loop)", "ping-pong", "pystream-ownloop", "asyncio-streams", _CPU, 0.85),
    Target("uvloop, 100 x 1 KiB, CPU vs uvloop streams", "echo-1k", "pystream-uvloop", "uvloop-streams", _CPU, 1.00),
    Target("uvloop, ping-pong, CPU vs uvloop streams", "ping-pong", "pystream-uvloop", "uvloop-streams", _CPU, 1.00),
    Target("TLS 100 x 1 KiB, CPU vs asyncio streams' TLS", "tls-1k", "pystream", "asyncio-streams", _CPU, 1.00),
    Target("TLS 10 x 64 KiB, CPU vs asyncio streams' TLS", "tls-64k", "pystream", "asyncio-streams", _CPU, 1.00),
    Target("TLS 100 x 1 KiB on uvloop, CPU vs uvloop streams' TLS", "tls-1k", "pystream-uvloop", "uvloop-streams", _CPU, 1.20),
    Target("TLS 10 x 64 KiB on uvloop, CPU vs uvloop streams' TLS", "tls-64k", "pystream-uvloop", "uvloop-streams", _CPU, 1.20),
    Target("10 x 64 KiB, CPU vs asyncio streams (keep 0.87x)", "echo-64k", "pystream", "asyncio-streams", _CPU, 0.87, interpreter="CPython"),
    Target("PyPy, 100 x 1 KiB, requests/s vs asyncio streams", "echo-1k", "pystream", "asyncio-streams", _RATE, 2.4, lower=False, interpreter="PyPy"),
    Target("PyPy, 10 x 64 KiB, MB/s vs asyncio protocols", "echo-64k", "pystream", "asyncio-protocol", _MBS, 1.00, lower=False, interpreter="PyPy"),
]  # fmt: skip


def check_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of this interpreter: its label, the ratio (None: not
    run) and whether it holds."""
    here = platform.python_implementation()
    checked = []
    for target in TARGETS:
        if target.interpreter is not None and target.interpreter != here:
            continue
        ratio = None
        workload = result["workloads"].get(ALL_WORKLOADS[target.workload].name)
        if workload is not None:
            servers = workload["servers"]
            if target.server in servers and target.other in servers:
                other = servers[target.other]["median"].get(target.figure)
                if other:
                    ratio = servers[target.server]["median"][target.figure] / other
        holds = None
        if ratio is not None:
            holds = ratio <= target.limit if target.lower else ratio >= target.limit
        checked.append(
            {
                "label": target.label,
                "limit": f"{'<=' if target.lower else '>='} {target.limit:.2f}x",
                "ratio": ratio,
                "holds": holds,
            }
        )
    return checked


def format_targets(result: dict[str, Any]) -> list[str]:
    """The targets this run measured, a line each, and how many it did
    not (their servers or workloads were not in the run)."""
    checks = check_targets(result)
    ran = [c for c in checks if c["ratio"] is not None]
    if not ran:
        return []
    lines = ["targets (issue 22), ratios of this run's medians:"]
    for check in ran:
        verdict = "holds" if check["holds"] else "misses"
        lines.append(f"  {check['label']}: {check['ratio']:.2f}x ({check['limit']}): {verdict}")
    if len(ran) < len(checks):
        lines.append(
            f"  ({len(checks) - len(ran)} more not run: their servers or workloads were not in this run)"
        )
    return lines
