"""Building the benchmark's C programs (``loadgen.c``, ``refserver.c``) with
the system compiler, once per source and compiler, into a cache directory."""

from __future__ import annotations

import hashlib
import os
import subprocess

__all__ = ["HERE", "build", "libuv_flags"]

HERE = os.path.dirname(os.path.abspath(__file__))


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pystream-bench")


def libuv_flags() -> list[str]:
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
