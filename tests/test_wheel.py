"""Packaging: the binary wheel carries its own libuv (scripts/build-wheel),
and the sdist builds and installs."""

from __future__ import annotations

import glob
import os
import platform
import subprocess
import sys

import pytest

from helpers import exit_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    platform.python_implementation() != "CPython",
    reason="wheels are built and repaired with the CPython environment's auditwheel",
)

ROUND_TRIP = """
import asyncio, pystream
async def main():
    a, b = await pystream.open_stream_pair()
    async with a, b:
        await a.send_all(b"from the wheel")
        print(pystream.__file__, await b.receive_some())
asyncio.run(main())
"""


def install_and_run(tmp_path, package):
    """Install package (a wheel or an sdist) into a new venv and run the
    round trip there; return the venv."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", package],
        check=True,
        timeout=300,
        capture_output=True,
    )
    run_round_trip(venv, [], tmp_path)
    return venv


def run_round_trip(venv, prefix, cwd):
    # -I: not this checkout's pystream, the installed one.
    ran = subprocess.run(
        [*prefix, str(venv / "bin" / "python"), "-I", "-c", ROUND_TRIP],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    assert ran.returncode == 0, exit_report(ran)
    assert str(venv) in ran.stdout and "b'from the wheel'" in ran.stdout


def system_libuvs():
    """The files of the libuv the dynamic linker would find by itself."""
    listed = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    paths = {
        os.path.realpath(line.split("=>")[-1].strip())
        for line in listed.splitlines()
        if "libuv.so" in line
    }
    return sorted(p for p in paths if os.path.isfile(p))


def can_mask_files():
    """Whether this process may make a private mount namespace (root, and
    a sandbox that allows unshare) to hide files from one command."""
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True
    )
    return probe.returncode == 0


def test_repaired_wheel_installs_and_runs_on_its_own_libuv(tmp_path):
    built = subprocess.run(
        [os.path.join(ROOT, "scripts", "build-wheel")], capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, exit_report(built)
    wheel = built.stdout.split()[-1]
    assert "manylinux" in wheel
    venv = install_and_run(tmp_path, os.path.join(ROOT, wheel))
    (extension,) = glob.glob(
        str(venv / "lib" / "python*" / "site-packages" / "pystream" / "_pystream_cffi*.so")
    )
    linked = subprocess.run(["ldd", extension], capture_output=True, text=True, check=True).stdout
    libuv = [line for line in linked.splitlines() if "libuv" in line]
    assert libuv and all("pystream.libs" in line for line in libuv), linked
    # The same round trip with the system's libuv made unreadable (each of
    # its files covered by /dev/null, in a mount namespace of that command
    # only): as on a machine without libuv1-dev.
    masked = system_libuvs()
    if masked and can_mask_files():
        covers = " && ".join(f"mount --bind /dev/null {p}" for p in masked)
        prefix = [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'{covers} && exec "$@"',
            "masked",
        ]
        hidden = subprocess.run(
            [*prefix, sys.executable, "-c", "import ctypes; ctypes.CDLL('libuv.so.1')"],
            capture_output=True,
            text=True,
        )
        assert hidden.returncode != 0, "the system's libuv was not hidden"
        run_round_trip(venv, prefix, tmp_path)
    else:
        print(
            "not checked with the system's libuv hidden: no libuv files, "
            "or no permission for a mount namespace here"
        )


def test_sdist_builds_installs_and_runs(tmp_path):
    # python -m build --sdist: everything the build needs is in it (the C
    # core, build_ffi.py, the version, the benchmark's C sources).
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), ROOT],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (sdist,) = glob.glob(str(tmp_path / "pystream-*.tar.gz"))
    venv = install_and_run(tmp_path, sdist)
    (bench_dir,) = glob.glob(str(venv / "lib" / "python*" / "site-packages" / "pystream" / "bench"))
    assert {"loadgen.c", "refserver.c"} <= set(os.listdir(bench_dir))
