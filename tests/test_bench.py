"""The benchmark runs and its numbers are well-formed.  (Speed itself is
never asserted: it is measured by ``python -m pystream bench``.)"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from pystream.bench import KEY_FIGURE, SERVERS, build, format_table, ratios

from helpers import exit_report

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

TINY = ["--quick", "--rounds", "2", "--seconds", "0.1", "--bulk-mib", "4", "--idle", "20"]


def run_bench(*args):
    return subprocess.run(
        [sys.executable, "-m", "pystream", "bench", *TINY, *args],
        capture_output=True, text=True, timeout=300,
    )


def test_bench_json_is_well_formed():
    servers = "pystream,asyncio-streams,c-libuv"
    done = run_bench("--servers", servers, "--json", "-")
    assert done.returncode == 0, exit_report(done)
    result = json.loads(done.stdout)
    assert result["settings"]["rounds"] == 2
    assert set(result["workloads"]) == {
        "100 x 1 KiB", "1 x 100 B ping-pong", "10 x 64 KiB", "bulk one-way", "idle connections"}
    for name, wl in result["workloads"].items():
        assert set(wl["servers"]) | set(result["skipped"]) == set(servers.split(","))
        key, _ = KEY_FIGURE[wl["kind"]]
        for server, summary in wl["servers"].items():
            assert len(summary["samples"]) == 2, (name, server)
            for figures in (summary["median"], summary["min"], summary["max"]):
                assert all(math.isfinite(v) for v in figures.values()), (name, server)
            assert summary["min"][key] <= summary["median"][key] <= summary["max"][key]
            if wl["kind"] != "idle":
                assert summary["median"][key] > 0, (name, server)
            if wl["kind"] == "echo":
                assert summary["median"]["requests_per_s"] > 0
    rel = ratios(result)
    if "c-libuv" in result["workloads"]["100 x 1 KiB"]["servers"]:
        assert rel["100 x 1 KiB"]["c-libuv"]["vs_c"] == pytest.approx(1.0)
    assert rel["100 x 1 KiB"]["asyncio-streams"]["vs_asyncio"] == pytest.approx(1.0)
    table = format_table(result)
    for server in result["workloads"]["100 x 1 KiB"]["servers"]:
        assert server in table


def test_bench_table_and_subsets():
    done = run_bench("--servers", "pystream", "--workloads", "ping-pong,bulk")
    assert done.returncode == 0, exit_report(done)
    assert "1 x 100 B ping-pong" in done.stdout and "bulk one-way" in done.stdout
    assert "10 x 64 KiB" not in done.stdout
    assert "[4/4]" in done.stderr  # progress: 2 workloads x 1 server x 2 rounds


def test_bench_rejects_unknown_names():
    done = run_bench("--servers", "nginx")
    assert done.returncode > 0 and "unknown server" in done.stderr, exit_report(done)
    done = run_bench("--workloads", "everything")
    assert done.returncode > 0 and "unknown workload" in done.stderr, exit_report(done)


def test_missing_optional_servers_are_skipped(monkeypatch):
    from pystream import bench

    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: None)
    ok, skipped = bench.available_servers(SERVERS, None)
    assert "pystream" in ok and "c-libuv" in ok
    assert skipped["trio"] == "trio is not installed"
    assert "uvloop" in skipped["pystream-uvloop"]
    ok, skipped = bench.available_servers(["c-libuv"], "could not build it")
    assert ok == [] and skipped == {"c-libuv": "could not build it"}


def test_build_reports_compiler_errors(tmp_path, monkeypatch):
    from pystream import bench

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(bench, "HERE", str(tmp_path))
    (tmp_path / "broken.c").write_text("int main(void) { return missing; }\n")
    with pytest.raises(RuntimeError, match="building broken"):
        build("broken", [])
    (tmp_path / "fine.c").write_text("int main(void) { return 0; }\n")
    path = build("fine", [])
    assert subprocess.run([path]).returncode == 0
    assert build("fine", []) == path  # cached
