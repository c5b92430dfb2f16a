"""CFFI build script for pystream's C core (out-of-line API mode).

The declarations come from the CDEF section of ``c/include/pystream.h``, so
the C header stays the single source of truth.  libuv is the system's, found
with pkg-config.  Run by setuptools through ``cffi_modules``; running this
file directly builds the extension in place for development.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
C_DIR = os.path.join(HERE, "c")
HEADER = os.path.join(C_DIR, "include", "pystream.h")
FAULT_HEADER = os.path.join(C_DIR, "src", "fault.h")
SOURCES = [
    "loop.c",
    "stream.c",
    "listener.c",
    "address.c",
    "process.c",
    "sendfile.c",
    "sigchld.c",
    "fault.c",
    "poll.c",
]

MISSING_LIBUV = (
    "pystream needs libuv's development files (uv.h and the libuv pkg-config "
    "file). On Debian or Ubuntu: apt-get install libuv1-dev pkg-config"
)

# Names from uv.h that the Python layer reads besides pystream.h's.
UV_CDEF = """
#define UV_EOF ...
#define UV_EAGAIN ...
#define UV_ECANCELED ...
#define UV_EALREADY ...
#define UV_EBADF ...
#define UV_ENOMEM ...
#define UV_ESRCH ...
const char *uv_strerror(int err);
const char *uv_err_name(int err);
unsigned int uv_version(void);
"""


def _read_cdef(header: str = HEADER, marker: str = "CDEF") -> str:
    with open(header, encoding="utf-8") as f:
        text = f.read()
    match = re.search(rf"/\* {marker} BEGIN \*/(.*)/\* {marker} END \*/", text, re.S)
    if match is None:
        raise SystemExit(f"{header}: no {marker} section")
    return match.group(1)


def _libuv_flags() -> tuple[list[str], list[str]]:
    """Compile and link flags for the system libuv, or a clear stop."""
    if shutil.which("pkg-config") is None:
        raise SystemExit(MISSING_LIBUV)
    try:
        cflags = subprocess.run(
            ["pkg-config", "--cflags", "libuv"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        libs = subprocess.run(
            ["pkg-config", "--libs", "libuv"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except subprocess.CalledProcessError:
        raise SystemExit(MISSING_LIBUV) from None
    return shlex.split(cflags), shlex.split(libs)


def _sanitizer_flags() -> list[str]:
    """PYSTREAM_SANITIZE=address,undefined builds the core with sanitizers."""
    wanted = os.environ.get("PYSTREAM_SANITIZE", "")
    if not wanted:
        return []
    return [f"-fsanitize={wanted}", "-fno-omit-frame-pointer", "-g"]


def _fault_build() -> bool:
    """PYSTREAM_FAULTS=1 builds the fault build (c/src/fault.h): test-only,
    with the ps_fault_* API that scripts/fault-sweep drives."""
    return os.environ.get("PYSTREAM_FAULTS", "") not in ("", "0")


def _coverage_flags() -> list[str]:
    """PYSTREAM_COVERAGE=1 builds the core with gcov's counters, unoptimised
    so that lines map to code (scripts/coverage)."""
    if os.environ.get("PYSTREAM_COVERAGE", "") in ("", "0"):
        return []
    return ["--coverage", "-O0"]


def _package_version() -> str:
    """The version in pystream/_version.py (read, not imported: the package
    needs this very extension to import)."""
    with open(os.path.join(HERE, "pystream", "_version.py"), encoding="utf-8") as f:
        match = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M)
    if match is None:
        raise SystemExit("pystream/_version.py: no __version__")
    return match.group(1)


# The version compiled in: pystream._binding refuses a core built for
# another version of the Python package (a stale build in a checkout).
VERSION_CDEF = "const char *ps_package_version(void);\n"
VERSION_SOURCE = 'const char *ps_package_version(void) {{ return "{}"; }}\n'


def _make_builder() -> FFI:
    cflags, libs = _libuv_flags()
    sanitize = _sanitizer_flags()
    faults = _fault_build()
    coverage = _coverage_flags()
    builder = FFI()
    fault_cdef = _read_cdef(FAULT_HEADER, "FAULT CDEF") if faults else ""
    builder.cdef(_read_cdef() + UV_CDEF + VERSION_CDEF + fault_cdef)
    fault_include = '#include "fault.h"\n' if faults else ""
    builder.set_source(
        "pystream._pystream_cffi",
        '#include <uv.h>\n#include "pystream.h"\n'
        + fault_include
        + VERSION_SOURCE.format(_package_version()),
        sources=[os.path.relpath(os.path.join(C_DIR, "src", s), HERE) for s in SOURCES],
        include_dirs=[os.path.join("c", "include"), os.path.join("c", "src")],
        extra_compile_args=[
            "-std=gnu11",
            "-Wall",
            "-Wextra",
            "-Wno-unused-parameter",
            *cflags,
            *sanitize,
            # The core's assert()s on in the sanitized build
            # (Python's CFLAGS carry -DNDEBUG).
            *(["-UNDEBUG"] if sanitize else []),
            *(["-DPS_FAULT_INJECTION"] if faults else []),
            *coverage,
        ],
        extra_link_args=[*libs, *sanitize, *coverage],
    )
    return builder


ffibuilder = _make_builder()

if __name__ == "__main__":
    os.chdir(HERE)
    sys.exit(0 if ffibuilder.compile(verbose=True) else 1)
