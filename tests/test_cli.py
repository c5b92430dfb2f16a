"""The command line: python -m pystream demo / echo / connect."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import LOOP_KINDS

TIMEOUT = 60


def pystream_cmd(*args):
    return [sys.executable, "-m", "pystream", *args]


def test_demo_runs_and_checks_the_echo():
    out = subprocess.run(
        pystream_cmd("demo", "--clients", "2", "--megabytes", "2", "--pings", "10"),
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    ).stdout
    assert "round trips: 20" in out
    assert out.strip().endswith("OK")


@pytest.mark.parametrize("loop", LOOP_KINDS)
def test_echo_server_and_connect_client(loop):
    flags = ["--uvloop"] if loop == "uvloop" else []
    server = subprocess.Popen(
        pystream_cmd(*flags, "echo", "--host", "127.0.0.1", "--port", "0"),
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = server.stdout.readline()
        match = re.search(r"\('127\.0\.0\.1', (\d+)\)", line)
        assert match, line
        payload = os.urandom(3 * 1024 * 1024)
        client = subprocess.run(
            pystream_cmd(*flags, "connect", "127.0.0.1", match.group(1)),
            input=payload, capture_output=True, timeout=TIMEOUT, check=True,
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
        input=b"", capture_output=True, timeout=TIMEOUT,
    )
    assert result.returncode == 1
    assert b"Connection refused" in result.stderr
    assert b"Traceback" not in result.stderr


def test_bad_arguments_show_usage():
    result = subprocess.run(
        pystream_cmd("connect", "127.0.0.1", "not-a-port"),
        capture_output=True, timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert b"usage" in result.stderr
