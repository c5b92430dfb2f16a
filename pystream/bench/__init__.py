"""``python -m pystream bench``: pystream against what users would pick
instead, and against plain C on the same libuv.

Each server runs in its own process (pinned to one core when there are two
or more), driven by a load generator written in C (``loadgen.c``, built on
first use with the system compiler) so that the client is never the
bottleneck.  All servers are measured in the same run, in interleaved rounds
(A B C ... A B C ...), and the report gives medians with min and max.  The
steadiest figure on a shared machine is the server's CPU time per request
(user + system, read from ``/proc/PID/task/*/schedstat`` at the moments the
load generator opens and closes its measuring window).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Optional

__all__ = ["add_arguments", "run", "SERVERS", "WORKLOADS"]

HERE = os.path.dirname(os.path.abspath(__file__))
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


# -- building the C tools ---------------------------------------------------


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pystream-bench")


def _libuv_flags() -> list[str]:
    try:
        out = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "libuv"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()
    except (OSError, subprocess.CalledProcessError):
        return ["-luv"]


def build(name: str, extra: list[str]) -> str:
    """Compile ``name``.c next to this file (once per source and compiler);
    return the executable's path.  Raises RuntimeError with the compiler's
    message if it fails."""
    source = os.path.join(HERE, name + ".c")
    cc = os.environ.get("CC", "cc")
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read() + cc.encode() + " ".join(extra).encode()).hexdigest()
    target = os.path.join(_cache_dir(), f"{name}-{digest[:16]}")
    if os.path.exists(target):
        return target
    os.makedirs(_cache_dir(), exist_ok=True)
    partial = f"{target}.{os.getpid()}.tmp"
    result = subprocess.run(
        [cc, "-O2", "-o", partial, source, *extra], capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"building {name} with {cc} failed:\n{result.stderr.strip()}")
    os.replace(partial, target)
    return target


# -- processes ----------------------------------------------------------------


def _allowed_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    # PyPy 3.9 has no sched_*affinity: read what the kernel says.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                cpus: list[int] = []
                for part in line.split(":", 1)[1].strip().split(","):
                    first, _, last = part.partition("-")
                    cpus.extend(range(int(first), int(last or first) + 1))
                return cpus
    return []


def _cpus() -> tuple[Optional[int], Optional[int]]:
    """(core for the servers, core for the load generator), or Nones."""
    try:
        cpus = _allowed_cpus()
    except (OSError, ValueError):
        return None, None
    if len(cpus) < 2 or not (hasattr(os, "sched_setaffinity") or shutil.which("taskset")):
        return None, None
    return cpus[-1], cpus[0]


def _pin(pid: int, cpu: Optional[int]) -> None:
    if cpu is None:
        return
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(pid, {cpu})
        except OSError:
            pass
    else:
        subprocess.run(
            ["taskset", "-p", "-c", str(cpu), str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of pid so far (schedstat: nanoseconds)."""
    total = 0
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total / 1e9


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Server:
    """One server process, started and ready to serve."""

    def __init__(self, kind: str, mode: str, refserver: Optional[str], cpu: Optional[int]) -> None:
        if kind == REFERENCE:
            assert refserver is not None
            argv = [refserver, mode]
        else:
            argv = [sys.executable, "-m", "pystream.bench.servers", kind, mode]
        self.kind = kind
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        _pin(self.proc.pid, cpu)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(
                f"the {kind} {mode} server did not start (exit {self.proc.returncode})"
            )
        self.port = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the {self.kind} server died (exit {self.proc.returncode})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# loadgen's exit status when the server sent back bytes other than those
# expected (2: the connection or loadgen itself failed).
WRONG_BYTES = 3


class LoadgenError(RuntimeError):
    """The load generator failed against one server: the message names the
    server and carries what loadgen said on stderr."""


def _loadgen(loadgen: str, args: list[str], cpu: Optional[int]) -> subprocess.Popen:  # type: ignore[type-arg]
    # stderr is kept for the error message: loadgen writes one line there,
    # only when it fails, so the pipe cannot fill.
    proc = subprocess.Popen(
        [loadgen, *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _pin(proc.pid, cpu)
    return proc


def _fail(proc: subprocess.Popen[str], kind: str, what: str) -> LoadgenError:
    """Reap a failed load generator; the error to raise for it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    said = ""
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
    if proc.stderr is not None:
        said = proc.stderr.read().strip()
        proc.stderr.close()
    if proc.returncode == WRONG_BYTES:
        return LoadgenError(f"the {kind} server failed: it sent back wrong bytes ({said})")
    detail = f": {said}" if said else ""
    return LoadgenError(
        f"the {kind} server failed: load generator {what} (exit {proc.returncode}){detail}"
    )


def _expect(proc: subprocess.Popen[str], mark: str, kind: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != mark:
        raise _fail(proc, kind, f"expected {mark!r}, got {line!r}")


def _result(proc: subprocess.Popen[str], kind: str) -> dict[str, Any]:
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    proc.stdin.close()
    line = proc.stdout.readline()
    if proc.wait() != 0 or not line:
        raise _fail(proc, kind, "failed")
    proc.stdout.close()
    proc.stderr.close()
    result: dict[str, Any] = json.loads(line)
    return result


# -- one measurement ----------------------------------------------------------


def measure_echo(
    loadgen: str, server: Server, wl: Workload, seconds: float, cpu: Optional[int]
) -> dict[str, float]:
    proc = _loadgen(
        loadgen,
        ["echo", "127.0.0.1", str(server.port), str(wl.connections), str(wl.size), str(seconds)],
        cpu,
    )
    _expect(proc, "W", server.kind)
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    _expect(proc, "E", server.kind)
    cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
    out = _result(proc, server.kind)
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


def measure_bulk(loadgen: str, server: Server, nbytes: int, cpu: Optional[int]) -> dict[str, float]:
    proc = _loadgen(loadgen, ["bulk", "127.0.0.1", str(server.port), str(nbytes)], cpu)
    _expect(proc, "W", server.kind)
    cpu0 = cpu_seconds(server.pid)
    _expect(proc, "E", server.kind)
    cpu1 = cpu_seconds(server.pid)
    out = _result(proc, server.kind)
    return {
        "mb_per_s": out["bytes"] / out["seconds"] / 1e6,
        "cpu_us_per_mb": (cpu1 - cpu0) * 1e6 / (out["bytes"] / 1e6),
    }


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
        proc = _loadgen(loadgen, ["idle", "127.0.0.1", str(server.port), str(connections)], cpus[1])
        _expect(proc, "R", kind)
        time.sleep(0.05)  # the last handlers settle
        after = rss_bytes(server.pid)
        server.check_alive()
        _result(proc, kind)
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


def available_servers(
    wanted: list[str], refserver_error: Optional[str]
) -> tuple[list[str], dict[str, str]]:
    """The servers that can run here, and why the others cannot."""
    skipped: dict[str, str] = {}
    ok: list[str] = []
    for kind in wanted:
        if kind == REFERENCE:
            if refserver_error:
                skipped[kind] = refserver_error
                continue
        elif kind in REQUIRES and importlib.util.find_spec(REQUIRES[kind]) is None:
            skipped[kind] = f"{REQUIRES[kind]} is not installed"
            continue
        ok.append(kind)
    return ok, skipped


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_benchmark(settings: Settings, progress_stream: IO[str]) -> dict[str, Any]:
    _raise_fd_limit()
    loadgen = build("loadgen", [])
    refserver: Optional[str] = None
    refserver_error: Optional[str] = None
    try:
        refserver = build("refserver", _libuv_flags())
    except RuntimeError as exc:
        refserver_error = f"could not build it ({exc})"
    kinds, skipped = available_servers(settings.servers, refserver_error)
    if not kinds:
        raise RuntimeError("no server to measure")
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    idle = min(settings.idle_connections, max(0, soft_limit - 200))
    cpus = _cpus()
    per_round = len(kinds) * len(settings.workloads)
    progress = Progress(progress_stream, per_round * settings.rounds)
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        wl.name: {k: [] for k in kinds} for wl in settings.workloads
    }
    echo_servers: dict[str, Server] = {}
    source_servers: dict[str, Server] = {}
    try:
        for kind in kinds:
            echo_servers[kind] = Server(kind, "echo", refserver, cpus[0])
            source_servers[kind] = Server(kind, "source", refserver, cpus[0])
        # One untimed run per server first: a server's first burst of
        # connections (and, on PyPy, the JIT's warm-up) is slower than the
        # rest, and with few rounds that would move the median.  Half a
        # second however short the measured windows: PyPy compiling can
        # stall a server for longer than a short window.
        progress_stream.write("warming up the servers...\n")
        for kind in kinds:
            measure_echo(loadgen, echo_servers[kind], WORKLOADS[0], 0.5, cpus[1])
        for rnd in range(settings.rounds):
            # Rotate who goes first, so no server always follows the same one.
            order = kinds[rnd % len(kinds) :] + kinds[: rnd % len(kinds)]
            for wl in settings.workloads:
                for kind in order:
                    if wl.kind == "echo":
                        sample = measure_echo(
                            loadgen, echo_servers[kind], wl, settings.seconds, cpus[1]
                        )
                        shown = f"{sample['requests_per_s']:,.0f} req/s, {sample['cpu_us_per_request']:.1f} us CPU/req"
                    elif wl.kind == "bulk":
                        sample = measure_bulk(
                            loadgen, source_servers[kind], settings.bulk_bytes, cpus[1]
                        )
                        shown = f"{sample['mb_per_s']:,.0f} MB/s"
                    else:
                        sample = measure_idle(loadgen, kind, refserver, idle, cpus)
                        shown = f"{sample['kib_per_connection']:.1f} KiB/connection"
                    samples[wl.name][kind].append(sample)
                    progress.step(
                        f"round {rnd + 1}/{settings.rounds}  {wl.name:<20} {kind:<17} {shown}"
                    )
            for server in [*echo_servers.values(), *source_servers.values()]:
                server.check_alive()
    finally:
        progress.finish()
        for server in [*echo_servers.values(), *source_servers.values()]:
            server.stop()
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": {
            "cpus": os.cpu_count(),
            "pinned": cpus[0] is not None,
            "platform": platform.platform(),
        },
        "settings": {
            "rounds": settings.rounds,
            "seconds": settings.seconds,
            "bulk_bytes": settings.bulk_bytes,
            "idle_connections": idle,
        },
        "skipped": skipped,
        "workloads": {
            wl.name: {
                "kind": wl.kind,
                "connections": wl.connections if wl.kind != "idle" else idle,
                "size": wl.size,
                "servers": {k: summarize(v) for k, v in samples[wl.name].items()},
            }
            for wl in settings.workloads
        },
    }


def summarize(samples: list[dict[str, float]]) -> dict[str, Any]:
    keys = samples[0].keys()
    return {
        "median": {k: statistics.median(s[k] for s in samples) for k in keys},
        "min": {k: min(s[k] for s in samples) for k in keys},
        "max": {k: max(s[k] for s in samples) for k in keys},
        "samples": samples,
    }


# -- the report ---------------------------------------------------------------

# Per workload kind: the figure that ranks servers, lower or higher better.
KEY_FIGURE = {
    "echo": ("cpu_us_per_request", "lower"),
    "bulk": ("mb_per_s", "higher"),
    "idle": ("kib_per_connection", "lower"),
}


def ratios(result: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Per workload and server: its key figure divided by the C reference's
    and by asyncio streams' (where those ran)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, wl in result["workloads"].items():
        key, _ = KEY_FIGURE[wl["kind"]]
        servers = wl["servers"]
        out[name] = {}
        for kind, summary in servers.items():
            mine = summary["median"][key]
            out[name][kind] = {}
            for label, other in (("vs_c", REFERENCE), ("vs_asyncio", BASELINE)):
                if other in servers and servers[other]["median"][key]:
                    out[name][kind][label] = mine / servers[other]["median"][key]
    return out


def format_table(result: dict[str, Any]) -> str:
    lines: list[str] = []
    rel = ratios(result)
    s = result["settings"]
    lines.append(
        f"pystream bench: {result['python']}, {s['rounds']} rounds, medians [min-max]; "
        f"servers {'pinned to one core' if result['machine']['pinned'] else 'not pinned'}"
    )
    for name, wl in result["workloads"].items():
        kind = wl["kind"]
        if kind == "echo":
            title = f"{name}  (echo, {wl['connections']} connection(s) x {wl['size']} B, {s['seconds']} s each)"
            header = f"{'server':<17} {'requests/s':>26} {'MB/s':>8} {'CPU us/req':>20} {'p99 us':>8} {'CPU xC':>7} {'CPU xasyncio':>12}"
        elif kind == "bulk":
            title = f"{name}  ({s['bulk_bytes'] / MIB:.0f} MiB, server send_all of 64 KiB into a C reader)"
            header = f"{'server':<17} {'MB/s':>26} {'CPU us/MB':>20} {'MB/s xC':>8} {'MB/s xasyncio':>13}"
        else:
            title = f"{name}  ({wl['connections']} connections, server RSS growth)"
            header = f"{'server':<17} {'KiB per connection':>26} {'RSS MiB':>10} {'xC':>7} {'xasyncio':>9}"
        lines += ["", title, header, "-" * len(header)]
        for server, summary in wl["servers"].items():
            med, lo, hi = summary["median"], summary["min"], summary["max"]
            r = rel[name][server]
            xc = f"{r['vs_c']:.2f}" if "vs_c" in r else "-"
            xa = f"{r['vs_asyncio']:.2f}" if "vs_asyncio" in r else "-"

            def span(key: str, fmt: str, med=med, lo=lo, hi=hi) -> str:  # type: ignore[no-untyped-def]
                return f"{med[key]:{fmt}} [{lo[key]:{fmt}}-{hi[key]:{fmt}}]"

            if kind == "echo":
                lines.append(
                    f"{server:<17} {span('requests_per_s', ',.0f'):>26} {med['mb_per_s']:>8.1f} "
                    f"{span('cpu_us_per_request', '.1f'):>20} {med['p99_us']:>8.0f} {xc:>7} {xa:>12}"
                )
            elif kind == "bulk":
                lines.append(
                    f"{server:<17} {span('mb_per_s', ',.0f'):>26} {span('cpu_us_per_mb', '.0f'):>20} "
                    f"{xc:>8} {xa:>13}"
                )
            else:
                lines.append(
                    f"{server:<17} {span('kib_per_connection', '.2f'):>26} {med['rss_mib']:>10.1f} "
                    f"{xc:>7} {xa:>9}"
                )
    for kind, why in result["skipped"].items():
        lines.append(f"skipped {kind}: {why}")
    lines.append("")
    lines.append(
        "CPU = the server process's user+system time in the measured window; "
        "xC and xasyncio divide a server's figure by the C reference's and asyncio streams'."
    )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib (pip install matplotlib)") from None
    workloads = list(result["workloads"].items())
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 4.5))
    if len(workloads) == 1:
        axes = [axes]
    labels = {
        "cpu_us_per_request": "server CPU us per request (lower is better)",
        "mb_per_s": "MB/s (higher is better)",
        "kib_per_connection": "KiB per idle connection (lower is better)",
    }
    for ax, (name, wl) in zip(axes, workloads):
        key, _ = KEY_FIGURE[wl["kind"]]
        names = list(wl["servers"])
        med = [wl["servers"][k]["median"][key] for k in names]
        err = [
            [m - wl["servers"][k]["min"][key] for k, m in zip(names, med)],
            [wl["servers"][k]["max"][key] - m for k, m in zip(names, med)],
        ]
        colors = [
            "tab:blue"
            if k.startswith("pystream")
            else "tab:gray"
            if k == REFERENCE
            else "tab:orange"
            for k in names
        ]
        ax.barh(names, med, xerr=err, color=colors)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(labels[key], fontsize=8)
        ax.tick_params(labelsize=8)
    fig.suptitle(
        f"pystream bench, {result['python']}, medians of {result['settings']['rounds']} rounds"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- command line -------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 rounds, short windows, 128 MiB bulk, 1,000 idle connections (under a minute)",
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
        "--workloads", help="comma-separated subset of: echo-1k,ping-pong,echo-64k,bulk,idle"
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the results as JSON ('-': stdout, no table)"
    )
    parser.add_argument("--plot", metavar="FILE.png", help="also draw a chart (needs matplotlib)")


_WORKLOAD_NAMES = dict(zip(["echo-1k", "ping-pong", "echo-64k", "bulk", "idle"], WORKLOADS))


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
        unknown = [w for w in names if w not in _WORKLOAD_NAMES]
        if unknown:
            raise SystemExit(
                f"bench: unknown workload(s) {', '.join(unknown)}; choose from {', '.join(_WORKLOAD_NAMES)}"
            )
        workloads = [_WORKLOAD_NAMES[w] for w in names]
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
