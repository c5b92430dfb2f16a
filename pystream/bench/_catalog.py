"""What the benchmark compares: the servers, what each needs beyond the
standard library, and the workloads every server runs."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BASELINE",
    "BULK_BYTE",
    "MIB",
    "REFERENCE",
    "REQUIRES",
    "SERVERS",
    "WORKLOADS",
    "Workload",
]

REFERENCE = "c-libuv"
BASELINE = "asyncio-streams"
SERVERS = [
    "pystream",
    "pystream-uvloop",
    "asyncio-streams",
    "asyncio-protocol",
    "uvloop-streams",
    "uvloop-protocol",
    "trio",
    REFERENCE,
]
MIB = 1024 * 1024
# Every byte a bulk source sends, and the load generator checks (loadgen.c).
BULK_BYTE = b"x"

# What a server needs beyond the standard library (missing: skipped).  The
# servers module is run with -m and never imported here (runpy warns).
REQUIRES = {
    "pystream-uvloop": "uvloop",
    "uvloop-streams": "uvloop",
    "uvloop-protocol": "uvloop",
    "trio": "trio",
}


@dataclass
class Workload:
    name: str
    kind: str  # "echo", "bulk" or "idle"
    connections: int = 1
    size: int = 0  # echo: bytes per request


WORKLOADS = [
    Workload("100 x 1 KiB", "echo", 100, 1024),
    Workload("1 x 100 B ping-pong", "echo", 1, 100),
    Workload("10 x 64 KiB", "echo", 10, 64 * 1024),
    Workload("bulk one-way", "bulk"),
    Workload("idle connections", "idle"),
]
