"""The benchmark runs and its numbers are well-formed.  (Speed itself is
never asserted: it is measured by ``python -m pystream bench``.)"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import pathlib
import subprocess
import sys
import textwrap

import pytest

from pystream.bench import KEY_FIGURE, SERVERS, build, format_table, ratios
from pystream.bench import sendfile as bench_sendfile
from pystream.bench._catalog import ALL_WORKLOADS, FLOOR_OF, LIMITS, TLS_SERVERS

from helpers import exit_report

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

TINY = ["--quick", "--rounds", "2", "--seconds", "0.3", "--bulk-mib", "4", "--idle", "20"]


def run_bench(*args):
    return subprocess.run(
        [sys.executable, "-m", "pystream", "bench", *TINY, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_bench_json_is_well_formed():
    servers = "pystream,asyncio-streams,c-libuv"
    done = run_bench("--servers", servers, "--json", "-")
    assert done.returncode == 0, exit_report(done)
    result = json.loads(done.stdout)
    assert result["settings"]["rounds"] == 2
    assert set(result["workloads"]) == {
        "100 x 1 KiB",
        "1 x 100 B ping-pong",
        "10 x 64 KiB",
        "bulk one-way",
        "idle connections",
    }
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


FLOORS = ["floor", "floor-uvloop", "floor-checkpoint", "floor-checkpoint-uvloop"]


def check_summaries(result, servers):
    """Every workload ran every server asked for (or said why not), with
    two finite samples each; returns the servers that ran."""
    ran = set()
    for name, wl in result["workloads"].items():
        assert set(wl["servers"]) | set(result["skipped"]) >= set(servers), name
        key, _ = KEY_FIGURE[wl["kind"]]
        for server, summary in wl["servers"].items():
            assert len(summary["samples"]) == 2, (name, server)
            for figures in (summary["median"], summary["min"], summary["max"]):
                assert all(math.isfinite(v) for v in figures.values()), (name, server)
            assert summary["min"][key] <= summary["median"][key] <= summary["max"][key]
            if wl["kind"] != "idle":
                assert summary["median"][key] > 0, (name, server)
            ran.add(server)
    return ran


def test_bench_floors_are_limits_with_ratios_to_them():
    servers = ["pystream", "pystream-uvloop", *FLOORS]
    # (Longer windows than TINY's: on a busy machine a starved server can
    # finish no request in 0.3 s.)
    done = run_bench("--servers", ",".join(servers), "--seconds", "0.6", "--json", "-")
    assert done.returncode == 0, exit_report(done)
    result = json.loads(done.stdout)
    # Every default workload, the floors included: the load generator
    # checked every byte of each echo and bulk transfer.
    assert len(result["workloads"]) == 5
    ran = check_summaries(result, servers)
    assert {"pystream", "floor", "floor-checkpoint"} <= ran
    assert set(result["limits"]) == ran & set(FLOORS)
    assert all(result["limits"][k] == LIMITS[k] for k in result["limits"])
    rel = result["ratios"]
    assert rel == ratios(result)
    for name, wl in result["workloads"].items():
        for server in wl["servers"]:
            floor = FLOOR_OF[server]
            if wl["kind"] == "echo" and floor in wl["servers"]:
                cpu = wl["servers"][server]["median"]["cpu_us_per_request"]
                floor_cpu = wl["servers"][floor]["median"]["cpu_us_per_request"]
                assert rel[name][server]["vs_floor"] == pytest.approx(cpu / floor_cpu)
            else:
                assert "vs_floor" not in rel[name][server], (name, server)
    assert rel["100 x 1 KiB"]["floor-checkpoint"]["vs_floor"] == pytest.approx(1.0)
    # The table lists the limits after the libraries, under their heading.
    table = format_table(result)
    section = table.split("100 x 1 KiB  (echo")[1].split("\n\n")[0]
    assert "xfloor" in section
    libraries, limits = section.split("-\n")[-1].split("limits, not libraries:")
    libraries, limits = (
        [row.split()[0] for row in part.strip().splitlines()] for part in (libraries, limits)
    )
    assert "pystream" in libraries and not any(k.startswith("floor") for k in libraries)
    assert "floor-checkpoint" in limits and not any(k.startswith("pystream") for k in limits)


def test_bench_tls_workloads():
    done = run_bench(
        "--servers",
        ",".join(["floor", *TLS_SERVERS]),
        "--workloads",
        "tls-1k,tls-64k",
        "--seconds",
        "0.6",
        "--json",
        "-",
    )
    assert done.returncode == 0, exit_report(done)
    result = json.loads(done.stdout)
    assert set(result["workloads"]) == {"TLS 100 x 1 KiB", "TLS 10 x 64 KiB"}
    for wl in result["workloads"].values():
        assert wl["tls"] and wl["kind"] == "echo"
        assert "floor" not in wl["servers"]  # no TLS there: not run, not started
    assert result["workloads"]["TLS 10 x 64 KiB"]["size"] == 64 * 1024
    ran = check_summaries(result, TLS_SERVERS)
    assert {"pystream", "asyncio-streams"} <= ran
    assert result["limits"] == {}
    for wl in result["workloads"].values():
        for summary in wl["servers"].values():
            assert summary["median"]["mb_per_s"] > 0
    rel = result["ratios"]["TLS 100 x 1 KiB"]
    assert rel["asyncio-streams"]["vs_asyncio"] == pytest.approx(1.0)
    assert "vs_floor" not in rel["pystream"]
    assert "over TLS" in format_table(result)


def test_tls_build_names_the_missing_package(tmp_path, monkeypatch):
    from pystream.bench import _build

    # The real sources, but the header they look for is not there.
    for name in ("loadgen.c", "loadgen_tls.c"):
        text = pathlib.Path(_build.HERE, name).read_text()
        text = text.replace("__has_include(<openssl/ssl.h>)", "__has_include(<openssl/absent.h>)")
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_build, "HERE", str(tmp_path))
    with pytest.raises(RuntimeError) as caught:
        _build.build_tls_loadgen()
    assert str(caught.value) == (
        "the TLS workloads need OpenSSL's development files: "
        "install libssl-dev (apt-get install libssl-dev)"
    )


def test_bench_sendfile_every_sender_sends_the_whole_file(tmp_path):
    mib = 8
    done = subprocess.run(
        [sys.executable, "-m", "pystream", "bench-sendfile", "--mib", str(mib), "--rounds", "1"]
        + ["--dir", str(tmp_path), "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, exit_report(done)
    assert list(tmp_path.iterdir()) == []  # the file is gone
    result = json.loads(done.stdout)
    assert result["settings"] == {"rounds": 1, "file_bytes": mib * 1024 * 1024}
    senders = result["senders"]
    assert set(senders) | set(result["skipped"]) == set(bench_sendfile.SENDERS)
    assert {"send_file", "read+send_all", "asyncio-sendfile", "c-sendfile"} <= set(senders)
    for name, summary in senders.items():
        assert (summary["server"], summary["mode"]) == bench_sendfile.SENDERS[name]
        (sample,) = summary["samples"]
        assert sample["bytes"] == mib * 1024 * 1024, name  # loadgen checked each byte
        assert sample["mb_per_s"] > 0 and sample["cpu_us_per_mb"] >= 0, name
        assert all(math.isfinite(v) for v in summary["median"].values()), name
    rel = result["ratios"]
    assert rel["c-sendfile"]["mb_per_s_vs_c"] == pytest.approx(1.0)
    assert rel["send_file"]["mb_per_s_vs_c"] > 0
    checks = result["targets"]["send_file"]
    assert checks["mb_per_s_vs_c"]["met"] == (checks["mb_per_s_vs_c"]["ratio"] >= 0.9)
    # /proc's CPU time of a process that is running is only brought up to
    # date at the next tick or switch: a transfer this short may show none.
    if senders["read+send_all"]["median"]["cpu_us_per_mb"] > 0:
        assert rel["read+send_all"]["cpu_vs_read"] == pytest.approx(1.0)
        assert set(checks) == set(bench_sendfile.TARGETS)
    table = bench_sendfile.format_table(result)
    for name in senders:
        assert name in table
    assert "target: send_file MB/s >= 0.9x c-sendfile" in table


def test_missing_optional_servers_are_skipped(monkeypatch):
    from pystream.bench._processes import available_servers

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    ok, skipped = available_servers(SERVERS, None)
    assert "pystream" in ok and "c-libuv" in ok
    assert skipped["trio"] == "trio is not installed"
    assert "uvloop" in skipped["pystream-uvloop"]
    assert "uvloop" in skipped["floor-uvloop"] and "uvloop" in skipped["floor-checkpoint-uvloop"]
    assert "floor" in ok and "floor-checkpoint" in ok
    ok, skipped = available_servers(["c-libuv"], "could not build it")
    assert ok == [] and skipped == {"c-libuv": "could not build it"}


def test_build_reports_compiler_errors(tmp_path, monkeypatch):
    from pystream.bench import _build

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(_build, "HERE", str(tmp_path))
    (tmp_path / "broken.c").write_text("int main(void) { return missing; }\n")
    with pytest.raises(RuntimeError, match="building broken"):
        build("broken", [])
    (tmp_path / "fine.c").write_text("int main(void) { return 0; }\n")
    path = build("fine", [])
    assert subprocess.run([path]).returncode == 0
    assert build("fine", []) == path  # cached


# A server that answers like the benchmark's servers but gets one byte
# wrong: echo mode flips bit 5 of the FLIP_AT-th byte of each connection
# (bytes before it come back right), source mode sends one 'y' among the
# 'x's.  Plain sockets and threads: it must not depend on what is tested.
WRONG_SERVER = textwrap.dedent("""
    import socket, sys, threading

    FLIP_AT = int(sys.argv[2])

    def echo(conn):
        seen = 0
        while True:
            data = conn.recv(65536)
            if not data:
                return
            if seen <= FLIP_AT < seen + len(data):
                wrong = bytearray(data)
                wrong[FLIP_AT - seen] ^= 0x20
                data = bytes(wrong)
            seen += len(data)
            conn.sendall(data)

    def source(conn):
        header = b""
        while len(header) < 8:
            more = conn.recv(8 - len(header))
            if not more:
                return
            header += more
        payload = bytearray(b"x" * int.from_bytes(header, "big"))
        payload[FLIP_AT] = ord("y")
        conn.sendall(payload)

    def serve(conn):
        with conn:
            try:
                (echo if sys.argv[1] == "echo" else source)(conn)
            except OSError:
                pass  # the load generator gave up on us

    listener = socket.create_server(("127.0.0.1", 0))
    if len(sys.argv) > 3:  # CERT KEY: over TLS
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        listener = context.wrap_socket(listener, server_side=True)
    print("READY", listener.getsockname()[1], flush=True)
    while True:
        threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
""")


@pytest.fixture
def wrong_server(tmp_path):
    """start(mode, flip_at) runs WRONG_SERVER; returns (process, port)."""
    script = tmp_path / "wrong_server.py"
    script.write_text(WRONG_SERVER)
    procs = []

    def start(mode, flip_at, *tls_files):
        proc = subprocess.Popen(
            [sys.executable, str(script), mode, str(flip_at), *tls_files],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        procs.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("READY "), line
        return proc, int(line.split()[1])

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_loadgen_fails_on_wrong_echo(wrong_server):
    # The third 1 KiB request of each connection comes back with a byte
    # flipped: the first two pass, the third fails, and loadgen says where.
    _, port = wrong_server("echo", 2 * 1024 + 100)
    loadgen = build("loadgen", [])
    done = subprocess.run(
        [loadgen, "echo", "127.0.0.1", str(port), "2", "1024", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, exit_report(done)
    assert "loadgen: wrong bytes from the server: connection " in done.stderr
    assert "request 2 of 1024 bytes, byte 100 is" in done.stderr, done.stderr


def test_tls_loadgen_fails_on_wrong_echo(wrong_server, tmp_path):
    from pystream.bench._build import build_tls_loadgen
    from pystream.bench._tls_servers import make_certificate

    _, port = wrong_server("echo", 3 * 1024 + 7, *make_certificate(str(tmp_path)))
    done = subprocess.run(
        [build_tls_loadgen(), "tls-echo", "127.0.0.1", str(port), "2", "1024", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, exit_report(done)
    assert "request 3 of 1024 bytes, byte 7 is" in done.stderr, done.stderr


def test_loadgen_fails_on_wrong_bulk(wrong_server):
    _, port = wrong_server("source", 3 * 65536 + 7)
    loadgen = build("loadgen", [])
    done = subprocess.run(
        [loadgen, "bulk", "127.0.0.1", str(port), str(1024 * 1024)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, exit_report(done)
    assert "wrong bytes from the server: bulk, byte 196615 is 0x79, expected 0x78" in done.stderr


def test_bench_fails_the_server_that_echoes_wrong_bytes(wrong_server, monkeypatch, capsys):
    from pystream import bench
    from pystream.bench import _measure

    class WrongServer(_measure.Server):
        def __init__(self, kind, mode, refserver, cpu, args=()):
            self.kind = kind
            self.proc, self.port = wrong_server(mode, 5000)

    # Replaced where the run looks them up.
    monkeypatch.setattr(_measure, "Server", WrongServer)
    monkeypatch.setattr(_measure, "raise_fd_limit", lambda: None)  # not in pytest's process
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args([*TINY, "--servers", "asyncio-streams"])
    assert bench.run(args) == 1
    err = capsys.readouterr().err
    assert (
        "pystream bench: the asyncio-streams server failed: it sent back wrong bytes "
        "(loadgen: wrong bytes from the server: connection "
    ) in err, err


def test_targets_are_checked_against_the_medians_of_one_run():
    from pystream.bench._targets import TARGETS, check_targets, format_targets

    def echo(**cpu):
        return {
            "servers": {
                server: {"median": {"cpu_us_per_request": us, "requests_per_s": 1e6 / us}}
                for server, us in cpu.items()
            }
        }

    kw = {"asyncio-streams": 10.0, "pystream": 8.5, "pystream-ownloop": 9.0}
    result = {"workloads": {"100 x 1 KiB": echo(**kw), "1 x 100 B ping-pong": echo(**kw)}}
    checked = {c["label"]: c for c in check_targets(result)}
    default = checked["default loop, 100 x 1 KiB, CPU vs asyncio streams"]
    assert default["ratio"] == pytest.approx(0.85) and default["holds"] is True
    own = checked["own loop, ping-pong, CPU vs asyncio streams (default loop)"]
    assert own["ratio"] == pytest.approx(0.90) and own["holds"] is False
    assert checked["TLS 100 x 1 KiB, CPU vs asyncio streams' TLS"]["ratio"] is None
    assert {t.workload for t in TARGETS} <= set(ALL_WORKLOADS)
    lines = format_targets(result)
    assert "  default loop, 100 x 1 KiB, CPU vs asyncio streams: 0.85x (<= 0.90x): holds" in lines
    assert (
        "  own loop, ping-pong, CPU vs asyncio streams (default loop): 0.90x (<= 0.85x): misses"
        in lines
    )
    assert lines[-1].startswith("  (") and "not run" in lines[-1]
    assert format_targets({"workloads": {}}) == []
