"""Building the benchmark's C programs (``loadgen.c``, ``refserver.c``; the
load generator's TLS build adds ``loadgen_tls.c``) with the system compiler,
warnings on, once per source and compiler, into a cache directory."""

from __future__ import annotations

import hashlib
import os
import subprocess
from typing import Optional, Sequence

__all__ = ["HERE", "TLS_PACKAGE", "build", "build_refserver", "build_tls_loadgen", "libuv_flags"]

HERE = os.path.dirname(os.path.abspath(__file__))


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pystream-bench")


def _pkg_config(package: str, fallback: list[str]) -> list[str]:
    try:
        out = subprocess.run(
            ["pkg-config", "--cflags", "--libs", package],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()
    except (OSError, subprocess.CalledProcessError):
        return fallback


def libuv_flags() -> list[str]:
    return _pkg_config("libuv", ["-luv"])


def build(name: str, extra: list[str], also: Sequence[str] = ()) -> str:
    """Compile ``name``.c next to this file, with the sources named in
    ``also`` (next to it too), once per source and compiler; return the
    executable's path.  Raises RuntimeError with the compiler's message if
    it fails."""
    sources = [os.path.join(HERE, n + ".c") for n in (name, *also)]
    cc = os.environ.get("CC", "cc")
    digest = hashlib.sha256(cc.encode() + " ".join(extra).encode())
    for source in sources:
        with open(source, "rb") as f:
            digest.update(f.read())
    target = os.path.join(_cache_dir(), f"{name}-{digest.hexdigest()[:16]}")
    if os.path.exists(target):
        return target
    os.makedirs(_cache_dir(), exist_ok=True)
    partial = f"{target}.{os.getpid()}.tmp"
    result = subprocess.run(
        [cc, "-O2", "-Wall", "-Wextra", "-o", partial, *sources, *extra],
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"building {name} with {cc} failed:\n{result.stderr.strip()}")
    os.replace(partial, target)
    return target


def build_refserver() -> tuple[Optional[str], Optional[str]]:
    """``refserver.c`` on the system's libuv: (its path, None), or (None,
    why not) if it does not build, and a run goes on without it."""
    try:
        return build("refserver", libuv_flags()), None
    except RuntimeError as exc:
        return None, f"could not build it ({exc})"


# The Debian package with OpenSSL's headers and libraries for the linker.
TLS_PACKAGE = "libssl-dev"


def build_tls_loadgen() -> str:
    """The load generator with its TLS mode (loadgen_tls.c, OpenSSL).
    Raises RuntimeError naming the package to install when OpenSSL's
    development files are missing."""
    try:
        return build(
            "loadgen",
            ["-DLOADGEN_TLS", *_pkg_config("openssl", ["-lssl", "-lcrypto"])],
            also=["loadgen_tls"],
        )
    except RuntimeError as exc:
        said = str(exc)
        # loadgen_tls.c's #error when the headers are missing; the linker's
        # when the libraries are.
        if any(s in said for s in (TLS_PACKAGE, "cannot find -lssl", "cannot find -lcrypto")):
            raise RuntimeError(
                "the TLS workloads need OpenSSL's development files: "
                f"install {TLS_PACKAGE} (apt-get install {TLS_PACKAGE})"
            ) from None
        raise
