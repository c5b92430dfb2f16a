"""The build script's failure mode: no libuv, one clear message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_missing_libuv_is_one_clear_message(tmp_path):
    # pkg-config that knows no libuv, as on a machine without libuv1-dev.
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(tmp_path), PKG_CONFIG_PATH="")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "build_ffi.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode > 0, result.returncode  # an error, not a crash
    assert "libuv1-dev" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_is_written_once_and_compiled_in():
    from importlib.metadata import version

    import pystream
    from pystream._binding import ffi, lib

    assert pystream.__version__ == version("pystream")
    assert ffi.string(lib.ps_package_version()).decode() == pystream.__version__


def test_core_built_for_another_version_refuses_to_load():
    from pystream._binding import check_core_version

    check_core_version("1.2.3", "1.2.3")
    with pytest.raises(ImportError, match="built for pystream 0.1.0, but this is pystream 0.2.0"):
        check_core_version("0.1.0", "0.2.0")


def test_a_crashing_subprocess_is_reported_with_its_signal():
    from helpers import exit_report

    crashed = subprocess.run(
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
        capture_output=True,
        timeout=60,
    )
    assert exit_report(crashed).startswith("killed by SIGSEGV")
    fine = subprocess.run([sys.executable, "-c", "pass"], capture_output=True, timeout=60)
    assert exit_report(fine).startswith("exit status 0")
