"""The build script's failure mode: no libuv, one clear message."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_missing_libuv_is_one_clear_message(tmp_path):
    # pkg-config that knows no libuv, as on a machine without libuv1-dev.
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(tmp_path), PKG_CONFIG_PATH="")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "build_ffi.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )
    assert result.returncode != 0
    assert "libuv1-dev" in result.stderr
    assert "Traceback" not in result.stderr
