"""The benchmark's processes: which servers can run here, starting a server
and the load generator (each pinned to its own core when there are two or
more) and speaking loadgen's line protocol, and what ``/proc`` says about a
process (CPU time, resident memory)."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
from typing import Any, Optional, Sequence

from ._catalog import REFERENCE, REQUIRES

__all__ = [
    "WRONG_BYTES",
    "LoadgenError",
    "Server",
    "available_servers",
    "cpu_seconds",
    "expect_mark",
    "loadgen_result",
    "pick_cpus",
    "raise_fd_limit",
    "rss_bytes",
    "start_loadgen",
]


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


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- cores --------------------------------------------------------------------


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


def pick_cpus() -> tuple[Optional[int], Optional[int]]:
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


# -- /proc --------------------------------------------------------------------


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


# -- servers ------------------------------------------------------------------


class Server:
    """One server process, started and ready to serve.  ``args`` follow
    the mode on its command line (the file of the file-sending modes)."""

    def __init__(
        self,
        kind: str,
        mode: str,
        refserver: Optional[str],
        cpu: Optional[int],
        args: Sequence[str] = (),
    ) -> None:
        if kind == REFERENCE:
            assert refserver is not None
            argv = [refserver, mode, *args]
        else:
            argv = [sys.executable, "-m", "pystream.bench.servers", kind, mode, *args]
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


# -- the load generator -------------------------------------------------------

# loadgen's exit status when the server sent back bytes other than those
# expected (2: the connection or loadgen itself failed).
WRONG_BYTES = 3


class LoadgenError(RuntimeError):
    """The load generator failed against one server: the message names the
    server and carries what loadgen said on stderr."""


def start_loadgen(loadgen: str, args: list[str], cpu: Optional[int]) -> subprocess.Popen:  # type: ignore[type-arg]
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


def expect_mark(proc: subprocess.Popen[str], mark: str, kind: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != mark:
        raise _fail(proc, kind, f"expected {mark!r}, got {line!r}")


def loadgen_result(proc: subprocess.Popen[str], kind: str) -> dict[str, Any]:
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    proc.stdin.close()
    line = proc.stdout.readline()
    if proc.wait() != 0 or not line:
        raise _fail(proc, kind, "failed")
    proc.stdout.close()
    proc.stderr.close()
    result: dict[str, Any] = json.loads(line)
    return result
