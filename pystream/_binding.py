"""The only importer of the compiled CFFI module, and the one place where
libuv error codes become Python exceptions."""

from __future__ import annotations

import errno as _errno
import os

try:
    from ._pystream_cffi import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    if getattr(exc, "name", None) == __name__.rpartition(".")[0] + "._pystream_cffi":
        problem = "is missing"
    else:  # it exists but does not load: a shared library it needs, say
        problem = f"does not load ({exc})"
    raise ImportError(
        f"pystream's compiled core {problem}: install the package with "
        "'pip install .' (building needs libuv1-dev; a wheel from "
        "scripts/build-wheel carries its own libuv)"
    ) from exc

from ._version import __version__

__all__ = ["ffi", "lib", "oserror", "UV_EOF", "UV_EAGAIN", "UV_ECANCELED"]


def check_core_version(built_for: str, version: str) -> None:
    """Refuse a compiled core built for another version of the package (a
    stale build left in a checkout)."""
    if built_for != version:
        raise ImportError(
            f"pystream's compiled core was built for pystream {built_for}, but "
            f"this is pystream {version}: rebuild it ('pip install .', or "
            f"'pip install -e .' in a checkout)"
        )


check_core_version(ffi.string(lib.ps_package_version()).decode("ascii"), __version__)

UV_EOF: int = lib.UV_EOF
UV_EAGAIN: int = lib.UV_EAGAIN
UV_ECANCELED: int = lib.UV_ECANCELED


def oserror(code: int) -> OSError:
    """The OSError (of the matching subclass) for a negative libuv code.

    On Unix, libuv codes are minus errno, so ``OSError(errno, ...)`` picks
    ``ConnectionResetError``, ``BrokenPipeError`` and so on by itself.  The
    codes without an errno (end of file, resolver errors) keep libuv's name.
    """
    number = -code
    if 0 < number < 4000 and number in _errno.errorcode:
        return OSError(number, os.strerror(number))
    name = ffi.string(lib.uv_err_name(code)).decode("ascii", "replace")
    text = ffi.string(lib.uv_strerror(code)).decode("utf-8", "replace")
    return OSError(f"{name}: {text}")
