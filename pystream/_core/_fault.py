"""The fault build's controls (``c/src/fault.h``), for ``scripts/fault-sweep``.

Only a core built with ``PYSTREAM_FAULTS=1`` has them: every allocation and
every libuv or system call site of the C core counts its uses and can be
told to fail on its Nth use.  In any other build ``AVAILABLE`` is False and
the functions raise ``RuntimeError``.
"""

from __future__ import annotations

from typing import Optional

from .._binding import ffi, lib

AVAILABLE: bool = hasattr(lib, "ps_fault_set")


def _require() -> None:
    if not AVAILABLE:
        raise RuntimeError("this pystream core was not built with PYSTREAM_FAULTS=1")


def sites() -> dict[str, int]:
    """Every site's name and the error (a negative libuv code) it fails
    with by default."""
    _require()
    return {
        ffi.string(lib.ps_fault_site_name(i)).decode("ascii"): lib.ps_fault_site_error(i)
        for i in range(lib.ps_fault_sites())
    }


def _index(site: str) -> int:
    names = list(sites())
    if site not in names:
        raise ValueError(f"no fault site {site!r}")
    return names.index(site)


def arm(site: str, nth: int, error: Optional[int] = None) -> None:
    """Makes the nth use of site from now fail, once, with error (default:
    the site's own); nth 0 disarms it."""
    index = _index(site)
    code = lib.ps_fault_site_error(index) if error is None else error
    if lib.ps_fault_set(index, nth, code) != 0:
        raise ValueError(f"bad fault: {site} {nth} {code}")


def hits(site: str) -> int:
    """The uses of site since the last reset."""
    return int(lib.ps_fault_hits(_index(site)))


def fired(site: str) -> int:
    """The uses of site made to fail since the last reset."""
    return int(lib.ps_fault_fired(_index(site)))


def reset() -> None:
    """Disarms every site and zeroes its counts."""
    _require()
    lib.ps_fault_reset()
