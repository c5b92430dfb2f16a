"""Running the benchmark: one measurement of one server under one workload
(the load generator's measuring window, the server's CPU time or memory
around it), and the whole run: every server, warmed up, in interleaved
rounds, with progress on stderr, summed up as the result that the report
and ``--json`` show.  The TLS workloads add a certificate made for the run
and the load generator's TLS build, only when they are asked for."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any, Optional

from ._build import build, build_refserver, build_tls_loadgen
from ._catalog import LIMITS, MIB, TLS_WORKLOADS, WORKLOADS, Workload, servers_for
from ._processes import (
    Server,
    available_servers,
    cpu_seconds,
    expect_mark,
    loadgen_result,
    pick_cpus,
    raise_fd_limit,
    rss_bytes,
    start_loadgen,
)
from ._report import ratios, summarize
from ._targets import check_targets
from ._tls_servers import make_certificate

__all__ = [
    "Progress",
    "Settings",
    "describe_run",
    "measure_bulk",
    "measure_echo",
    "measure_idle",
    "rotated",
    "run_benchmark",
]


# -- one measurement ----------------------------------------------------------


def measure_echo(
    loadgen: str, server: Server, wl: Workload, seconds: float, cpu: Optional[int]
) -> dict[str, float]:
    mode = "tls-echo" if wl.tls else "echo"
    proc = start_loadgen(
        loadgen,
        [mode, "127.0.0.1", str(server.port), str(wl.connections), str(wl.size), str(seconds)],
        cpu,
    )
    expect_mark(proc, "W", server.kind)
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    expect_mark(proc, "E", server.kind)
    cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
    out = loadgen_result(proc, server.kind)
    requests = out["requests"]
    if not requests:
        raise RuntimeError(f"{server.kind}: no request completed in {seconds} s")
    return {
        "requests_per_s": requests / (t1 - t0),
        "mb_per_s": out["bytes"] / (t1 - t0) / 1e6,
        "cpu_us_per_request": (cpu1 - cpu0) * 1e6 / requests,
        "p50_us": out["p50_us"],
        "p99_us": out["p99_us"],
    }


def measure_bulk(
    loadgen: str, server: Server, nbytes: int, cpu: Optional[int], transfer: bool = False
) -> dict[str, float]:
    """The load generator asks the server for nbytes and reads them (all of
    them and only BULK_BYTE, or LoadgenError): the MB/s it read at and the
    server's CPU time per MB in between; with transfer, also the bytes and
    seconds the load generator counted."""
    proc = start_loadgen(loadgen, ["bulk", "127.0.0.1", str(server.port), str(nbytes)], cpu)
    expect_mark(proc, "W", server.kind)
    cpu0 = cpu_seconds(server.pid)
    expect_mark(proc, "E", server.kind)
    cpu1 = cpu_seconds(server.pid)
    out = loadgen_result(proc, server.kind)
    sample = {
        "mb_per_s": out["bytes"] / out["seconds"] / 1e6,
        "cpu_us_per_mb": (cpu1 - cpu0) * 1e6 / (out["bytes"] / 1e6),
    }
    if transfer:
        sample.update(bytes=out["bytes"], seconds=out["seconds"])
    return sample


def measure_idle(
    loadgen: str,
    kind: str,
    refserver: Optional[str],
    connections: int,
    cpus: tuple[Optional[int], Optional[int]],
) -> dict[str, float]:
    server = Server(kind, "echo", refserver, cpus[0])
    try:
        before = rss_bytes(server.pid)
        proc = start_loadgen(
            loadgen, ["idle", "127.0.0.1", str(server.port), str(connections)], cpus[1]
        )
        expect_mark(proc, "R", kind)
        time.sleep(0.05)  # the last handlers settle
        after = rss_bytes(server.pid)
        server.check_alive()
        loadgen_result(proc, kind)
    finally:
        server.stop()
    return {"kib_per_connection": (after - before) / 1024 / connections, "rss_mib": after / MIB}


# -- the run ------------------------------------------------------------------


@dataclass
class Settings:
    servers: list[str]
    rounds: int
    seconds: float
    bulk_bytes: int
    idle_connections: int
    workloads: list[Workload] = field(default_factory=lambda: list(WORKLOADS))


class Progress:
    def __init__(self, stream: IO[str], total: int) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.tty = stream.isatty()

    def step(self, text: str) -> None:
        self.done += 1
        line = f"[{self.done}/{self.total}] {text}"
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def rotated(names: list[str], first: int) -> list[str]:
    """names from the first-th on (modulo their number), then the others:
    with first the round's number, no one always follows the same one."""
    first = first % len(names) if names else 0
    return names[first:] + names[:first]


def describe_run(cpus: tuple[Optional[int], Optional[int]]) -> dict[str, Any]:
    """A result's "python" and "machine": what ran where."""
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": {
            "cpus": os.cpu_count(),
            "pinned": cpus[0] is not None,
            "platform": platform.platform(),
        },
    }


class _Servers:
    """The server processes of a run: per mode ("echo", "source",
    "tls-echo"), the kinds that serve it; stopped together."""

    def __init__(self, refserver: Optional[str], cpu: Optional[int]) -> None:
        self.refserver = refserver
        self.cpu = cpu
        self.by_mode: dict[str, dict[str, Server]] = {}

    def start(self, mode: str, kinds: list[str], args: tuple[str, ...] = ()) -> None:
        servers = self.by_mode.setdefault(mode, {})
        for kind in kinds:
            servers[kind] = Server(kind, mode, self.refserver, self.cpu, args)

    def __getitem__(self, mode: str) -> dict[str, Server]:
        return self.by_mode[mode]

    def all(self) -> list[Server]:
        return [s for servers in self.by_mode.values() for s in servers.values()]


def _measure_one(
    wl: Workload,
    kind: str,
    settings: Settings,
    servers: _Servers,
    loadgens: dict[str, str],
    idle: int,
    cpus: tuple[Optional[int], Optional[int]],
) -> tuple[dict[str, float], str]:
    """One sample of kind under wl, and how to show it in the progress."""
    if wl.kind == "echo":
        mode = "tls-echo" if wl.tls else "echo"
        sample = measure_echo(loadgens[mode], servers[mode][kind], wl, settings.seconds, cpus[1])
        return sample, (
            f"{sample['requests_per_s']:,.0f} req/s, {sample['cpu_us_per_request']:.1f} us CPU/req"
        )
    if wl.kind == "bulk":
        sample = measure_bulk(
            loadgens["echo"], servers["source"][kind], settings.bulk_bytes, cpus[1]
        )
        return sample, f"{sample['mb_per_s']:,.0f} MB/s"
    sample = measure_idle(loadgens["echo"], kind, servers.refserver, idle, cpus)
    return sample, f"{sample['kib_per_connection']:.1f} KiB/connection"


def run_benchmark(settings: Settings, progress_stream: IO[str]) -> dict[str, Any]:
    raise_fd_limit()
    loadgens = {"echo": build("loadgen", [])}
    tls = any(wl.tls for wl in settings.workloads)
    if tls:
        loadgens["tls-echo"] = build_tls_loadgen()
    refserver, refserver_error = build_refserver()
    kinds, skipped = available_servers(settings.servers, refserver_error)
    if not kinds:
        raise RuntimeError("no server to measure")
    runs = {wl.name: servers_for(wl, kinds) for wl in settings.workloads}
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    idle = min(settings.idle_connections, max(0, soft_limit - 200))
    cpus = pick_cpus()
    progress = Progress(progress_stream, sum(map(len, runs.values())) * settings.rounds)
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        wl.name: {k: [] for k in runs[wl.name]} for wl in settings.workloads
    }
    servers = _Servers(refserver, cpus[0])
    certificates = tempfile.mkdtemp(prefix="pystream-bench-") if tls else None
    # Each mode's servers, in the order of kinds: only those a workload uses.
    plain_kinds = kinds if any(not wl.tls for wl in settings.workloads) else []
    tls_kinds = [
        k for k in kinds if any(wl.tls and k in runs[wl.name] for wl in settings.workloads)
    ]
    try:
        servers.start("echo", plain_kinds)
        if any(wl.kind == "bulk" for wl in settings.workloads):
            servers.start("source", plain_kinds)
        if certificates is not None:
            servers.start("tls-echo", tls_kinds, make_certificate(certificates))
        # One untimed run per server first: a server's first burst of
        # connections (and, on PyPy, the JIT's warm-up) is slower than the
        # rest, and with few rounds that would move the median.  Half a
        # second however short the measured windows: PyPy compiling can
        # stall a server for longer than a short window.
        progress_stream.write("warming up the servers...\n")
        for kind in plain_kinds:
            measure_echo(loadgens["echo"], servers["echo"][kind], WORKLOADS[0], 0.5, cpus[1])
        for kind in tls_kinds:
            server = servers["tls-echo"][kind]
            measure_echo(loadgens["tls-echo"], server, TLS_WORKLOADS[0], 0.5, cpus[1])
        for rnd in range(settings.rounds):
            for wl in settings.workloads:
                for kind in rotated(runs[wl.name], rnd):
                    sample, shown = _measure_one(wl, kind, settings, servers, loadgens, idle, cpus)
                    samples[wl.name][kind].append(sample)
                    progress.step(
                        f"round {rnd + 1}/{settings.rounds}  {wl.name:<20} {kind:<23} {shown}"
                    )
            for server in servers.all():
                server.check_alive()
    finally:
        progress.finish()
        for server in servers.all():
            server.stop()
        if certificates is not None:
            shutil.rmtree(certificates, ignore_errors=True)
    result = {
        **describe_run(cpus),
        "settings": {
            "rounds": settings.rounds,
            "seconds": settings.seconds,
            "bulk_bytes": settings.bulk_bytes,
            "idle_connections": idle,
        },
        "skipped": skipped,
        "limits": {k: LIMITS[k] for k in [*plain_kinds, *tls_kinds] if k in LIMITS},
        "workloads": {
            wl.name: {
                "kind": wl.kind,
                "tls": wl.tls,
                "connections": wl.connections if wl.kind != "idle" else idle,
                "size": wl.size,
                "servers": {k: summarize(v) for k, v in samples[wl.name].items()},
            }
            for wl in settings.workloads
        },
    }
    result["ratios"] = ratios(result)
    result["targets"] = check_targets(result)
    return result
