"""``open_process``'s arguments: the command line, environment, working
directory and the child's stdio, each checked (``TypeError``,
``ValueError``, ``FileNotFoundError``) before anything starts."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
from typing import IO, Any, Mapping, Optional, Union

from ..abc import AsyncResource

__all__ = [
    "StdioSpec",
    "StrOrBytesPath",
    "argv_of",
    "envp_of",
    "cwd_of",
    "stdio_fd",
    "blocking_description",
]

# The access mode bits of the file status flags (PyPy's os lacks the name).
_ACCMODE = getattr(os, "O_ACCMODE", os.O_RDONLY | os.O_WRONLY | os.O_RDWR)

StrOrBytesPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
StdioSpec = Union[None, int, IO[Any]]


def argv_of(args: Any, shell: bool) -> list[bytes]:
    if shell:
        if not isinstance(args, (str, bytes)):
            raise TypeError("with shell=True, args must be one command line (a str)")
        argv = [b"/bin/sh", b"-c", os.fsencode(args)]
    else:
        if isinstance(args, (str, bytes, os.PathLike)):
            raise TypeError(
                "args must be a sequence of arguments, such as ['ls', '-l'] (or pass "
                "shell=True to run one command line)"
            )
        try:
            argv = [os.fsencode(arg) for arg in args]
        except TypeError as exc:
            raise TypeError(f"args must be str, bytes or path-like: {exc}") from None
        if not argv:
            raise ValueError("args must not be empty")
    for arg in argv:
        if b"\0" in arg:
            raise ValueError("an argument contains a NUL byte")
    return argv


def envp_of(env: Optional[Mapping[Any, Any]]) -> Optional[list[bytes]]:
    if env is None:
        return None
    envp = []
    for key, value in env.items():
        k, v = os.fsencode(key), os.fsencode(value)
        if not k or b"=" in k or b"\0" in k or b"\0" in v:
            raise ValueError(f"bad environment variable name or value: {key!r}")
        envp.append(k + b"=" + v)
    return envp


def cwd_of(cwd: Optional[StrOrBytesPath]) -> Optional[bytes]:
    if cwd is None:
        return None
    path = os.fsencode(cwd)
    # Checked here: libuv reports a failed chdir as the program's ENOENT.
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fsdecode(path))
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fsdecode(path))
    return path


def stdio_fd(spec: StdioSpec, name: str) -> int:
    """The fd a non-PIPE spec gives the child (-1: /dev/null)."""
    if spec is None:
        return {"stdin": 0, "stdout": 1, "stderr": 2}[name]
    if spec == subprocess.DEVNULL and type(spec) is int:
        return -1
    if isinstance(spec, bool):
        raise TypeError(f"{name} must be None, PIPE, DEVNULL, an fd or a file, not a bool")
    if isinstance(spec, AsyncResource):
        # Its buffer has already read ahead of where a child would start.
        raise TypeError(
            f"{name}: a pystream stream cannot be given to a child (it reads ahead into "
            f"its own buffer); to connect two children, give them the ends of an "
            f"os.pipe() and close yours after open_process"
        )
    if isinstance(spec, int):
        if spec < 0:
            raise ValueError(f"{name}: {spec} is neither an fd nor PIPE or DEVNULL")
        return spec
    fileno = getattr(spec, "fileno", None)
    if fileno is None:
        raise TypeError(
            f"{name} must be None, PIPE, DEVNULL, an fd or an object with fileno(), "
            f"not {type(spec).__name__}"
        )
    fd = fileno()
    if not isinstance(fd, int) or fd < 0:
        raise ValueError(f"{name}.fileno() gave {fd!r}")
    return fd


def blocking_description(fd: int, name: str, explicit: bool) -> Optional[int]:
    """A blocking open file description of fd's pipe or FIFO for a child,
    as a new fd the caller closes after the spawn; None to give fd itself.

    O_NONBLOCK belongs to the description, which a child given fd shares:
    a non-blocking one makes its writes fail with EAGAIN once the pipe is
    full (and its reads once it is empty), and programs rarely retry.  A
    pipe or FIFO opened anew through ``/proc/self/fd/N`` is a description
    of its own, in the same direction, which the child may have blocking.
    Another non-blocking fd (a socket, say) cannot be reopened: one given
    explicitly is refused; an inherited one (``None``) is the caller's
    own stdio, passed as it is.
    """
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        mode = os.fstat(fd).st_mode
    except OSError:
        return None  # closed: the spawn reports it (EBADF)
    if not flags & os.O_NONBLOCK or stat.S_ISREG(mode):
        return None  # blocking, or a file, where O_NONBLOCK does nothing
    if stat.S_ISFIFO(mode):
        access = flags & _ACCMODE
        try:
            own = os.open(f"/proc/self/fd/{fd}", access | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            own = -1  # no /proc, or a write end with no reader left (ENXIO)
        if own >= 0:
            os.set_blocking(own, True)  # its own description: nobody else's mode
            return own
    if explicit:
        raise ValueError(
            f"{name}: fd {fd} is in non-blocking mode, which a child shares (its "
            f"reads or writes would fail with EAGAIN); give it a blocking fd, or PIPE"
        )
    return None
