"""The command line: python -m pystream demo / echo / connect."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from helpers import LOOP_KINDS, exit_report

TIMEOUT = 60


def pystream_cmd(*args):
    return [sys.executable, "-m", "pystream", *args]


def test_demo_runs_and_checks_the_echo():
    out = subprocess.run(
        pystream_cmd("demo", "--clients", "2", "--megabytes", "2", "--pings", "10"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout
    assert "round trips: 20" in out
    assert out.strip().endswith("OK")


@pytest.mark.parametrize("loop", LOOP_KINDS)
def test_echo_server_and_connect_client(loop):
    flags = ["--uvloop"] if loop == "uvloop" else []
    server = subprocess.Popen(
        pystream_cmd(*flags, "echo", "--host", "127.0.0.1", "--port", "0"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        match = re.search(r"\('127\.0\.0\.1', (\d+)\)", line)
        assert match, line
        payload = os.urandom(3 * 1024 * 1024)
        client = subprocess.run(
            pystream_cmd(*flags, "connect", "127.0.0.1", match.group(1)),
            input=payload,
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        )
        # stdin's EOF half-closes; the server echoes everything, then closes.
        assert client.stdout == payload
    finally:
        server.terminate()
        server.wait(TIMEOUT)
        server.stdout.close()


def test_connect_refused_is_a_clear_error():
    result = subprocess.run(
        pystream_cmd("connect", "127.0.0.1", "1"),
        input=b"",
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 1
    assert b"Connection refused" in result.stderr
    assert b"Traceback" not in result.stderr


def test_bad_arguments_show_usage():
    result = subprocess.run(
        pystream_cmd("connect", "127.0.0.1", "not-a-port"),
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert b"usage" in result.stderr


def test_serve_file_and_fetch(tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 17)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    server = subprocess.Popen(
        pystream_cmd("serve-file", str(source), "--host", "127.0.0.1", "--port", "0"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        match = re.search(r"\('127\.0\.0\.1', (\d+)\)", line)
        assert match and f"({len(data)} bytes)" in line, line
        target = tmp_path / "fetched.bin"
        fetched = subprocess.run(
            pystream_cmd("fetch", "127.0.0.1", match.group(1), "-o", str(target), "--progress"),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
        assert target.read_bytes() == data
        import hashlib

        assert f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}" in fetched.stderr
        assert "MiB/s" in fetched.stderr  # the progress line
        assert f"sent {len(data)} bytes" in server.stdout.readline()
    finally:
        server.terminate()
        server.wait(TIMEOUT)
        server.stdout.close()


def test_connect_over_tls(tmp_path):
    from tls_helpers import certificate_files

    cert, key = certificate_files()
    server = subprocess.Popen(
        [
            sys.executable,
            os.path.join(os.path.dirname(__file__), "..", "examples", "tls_echo.py"),
            "serve",
            "--port",
            "0",
            "--cert",
            cert,
            "--key",
            key,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = re.search(r"port (\d+)", server.stdout.readline()).group(1)
        client = subprocess.run(
            pystream_cmd("connect", "localhost", port, "--tls", "--cafile", cert),
            input=b"over TLS\n",
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        )
        assert client.stdout == b"over TLS\n"
        # The certificate is checked: without the CA it is refused, clearly.
        refused = subprocess.run(
            pystream_cmd("connect", "localhost", port, "--tls"),
            input=b"",
            capture_output=True,
            timeout=TIMEOUT,
        )
        assert refused.returncode == 1
        assert b"CERTIFICATE_VERIFY_FAILED" in refused.stderr
        assert refused.stderr.count(b"CERTIFICATE_VERIFY_FAILED") == 1  # said once
        assert b"Traceback" not in refused.stderr
    finally:
        server.terminate()
        server.wait(TIMEOUT)
        server.stdout.close()


@pytest.mark.parametrize(
    "args, message",
    [
        (["connect", "127.0.0.1", "70000"], b"port"),
        (["fetch", "127.0.0.1", "-5"], b"port"),
        (["connect"], b"give HOST and PORT"),
    ],
)
def test_bad_addresses_are_clear_errors(args, message):
    result = subprocess.run(pystream_cmd(*args), input=b"", capture_output=True, timeout=TIMEOUT)
    assert result.returncode > 0, exit_report(result)
    assert message in result.stderr
    assert b"Traceback" not in result.stderr


def test_every_command_has_help():
    for command in ("bench", "demo", "echo", "connect", "serve-file", "fetch"):
        result = subprocess.run(
            pystream_cmd(command, "--help"),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
        assert result.stdout.startswith("usage: python -m pystream " + command)


def test_bench_pipes_moves_every_byte(tmp_path):
    out = tmp_path / "pipes.json"
    done = subprocess.run(
        pystream_cmd(
            "bench-pipes",
            "--mib",
            "8",
            "--rounds",
            "1",
            "--impls",
            "pystream,asyncio",
            "--json",
            str(out),
        ),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, exit_report(done)
    result = json.loads(out.read_text())
    assert set(result["medians"]) == {"pystream", "asyncio"}
    for figures in result["medians"].values():
        assert figures["mb_per_s"] > 0 and figures["cpu_ms_per_mb"] > 0
    assert "8 MiB through cat" in done.stdout
    bad = subprocess.run(
        pystream_cmd("bench-pipes", "--impls", "nope"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert bad.returncode != 0 and "unknown implementation(s) nope" in bad.stderr
    to_stdout = subprocess.run(
        pystream_cmd(
            "bench-pipes", "--mib", "1", "--rounds", "1", "--impls", "pystream", "--json", "-"
        ),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert to_stdout.returncode == 0, exit_report(to_stdout)
    assert set(json.loads(to_stdout.stdout)["medians"]) == {"pystream"}
