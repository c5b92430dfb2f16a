"""What the benchmark compares: the servers, what each needs beyond the
standard library, and the workloads every server runs."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL_WORKLOADS",
    "BASELINE",
    "BULK_BYTE",
    "FLOOR_OF",
    "LIMITS",
    "MIB",
    "REFERENCE",
    "REQUIRES",
    "SERVERS",
    "TLS_SERVERS",
    "TLS_WORKLOADS",
    "WORKLOADS",
    "Workload",
    "servers_for",
]

REFERENCE = "c-libuv"
BASELINE = "asyncio-streams"
FLOOR = "floor-checkpoint"
FLOOR_UVLOOP = "floor-checkpoint-uvloop"
SERVERS = [
    "pystream",
    "pystream-uvloop",
    "pystream-ownloop",
    "asyncio-streams",
    "asyncio-protocol",
    "asyncio-streams-ownloop",
    "asyncio-protocol-ownloop",
    "uvloop-streams",
    "uvloop-protocol",
    "trio",
    "floor",
    "floor-uvloop",
    FLOOR,
    FLOOR_UVLOOP,
    REFERENCE,
]

# The servers that are limits, not libraries: what they show.  Reports
# list them apart (the table under a heading of their own, the JSON's
# "limits", the chart in grey).
LIMITS = {
    "floor": "the thinnest echo with an asyncio task per connection (pystream.bench._floor)",
    "floor-uvloop": "the same on uvloop",
    FLOOR: "the same with one bare yield before each send: the least a checkpoint costs",
    FLOOR_UVLOOP: "the same on uvloop",
    REFERENCE: "an echo server in C on the libuv pystream's core uses (refserver.c)",
}

# Each server on an asyncio loop, and the floor with a checkpoint on the
# same loop: its ratio to that is the cost above its contract's least.
FLOOR_OF = {
    **dict.fromkeys(["pystream", "asyncio-streams", "asyncio-protocol", "floor", FLOOR], FLOOR),
    **dict.fromkeys(
        ["pystream-uvloop", "uvloop-streams", "uvloop-protocol", "floor-uvloop", FLOOR_UVLOOP],
        FLOOR_UVLOOP,
    ),
}

# The servers with a TLS echo (pystream.bench._tls_servers).
TLS_SERVERS = [
    "pystream",
    "pystream-uvloop",
    "pystream-ownloop",
    "asyncio-streams",
    "uvloop-streams",
    "trio",
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
    "floor-uvloop": "uvloop",
    FLOOR_UVLOOP: "uvloop",
}


@dataclass
class Workload:
    name: str
    kind: str  # "echo", "bulk" or "idle"
    connections: int = 1
    size: int = 0  # echo: bytes per request
    tls: bool = False  # echo over TLS (TLS_SERVERS only)


WORKLOADS = [
    Workload("100 x 1 KiB", "echo", 100, 1024),
    Workload("1 x 100 B ping-pong", "echo", 1, 100),
    Workload("10 x 64 KiB", "echo", 10, 64 * 1024),
    Workload("bulk one-way", "bulk"),
    Workload("idle connections", "idle"),
]
# Not in the default run: asked for by name (--workloads tls-1k,tls-64k).
TLS_WORKLOADS = [
    Workload("TLS 100 x 1 KiB", "echo", 100, 1024, tls=True),
    Workload("TLS 10 x 64 KiB", "echo", 10, 64 * 1024, tls=True),
]
# Every workload, by its name on the command line.
ALL_WORKLOADS = dict(
    zip(
        ["echo-1k", "ping-pong", "echo-64k", "bulk", "idle", "tls-1k", "tls-64k"],
        [*WORKLOADS, *TLS_WORKLOADS],
    )
)


def servers_for(workload: Workload, kinds: list[str]) -> list[str]:
    """The servers of kinds that run workload, in the same order."""
    return [k for k in kinds if k in TLS_SERVERS] if workload.tls else list(kinds)
