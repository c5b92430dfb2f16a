"""``CoreProcess``: one child process, on one C process handle.

Part of the core layer: every ``ps_process_*`` call is here, each return
code checked here.  libuv spawns the child and reaps it from its own SIGCHLD
handler, per loop, or the core's 250 ms exit check does when another
SIGCHLD handler is installed: no asyncio child watcher is involved.  The
exit is a
C event (``PS_EV_EXIT``) that resolves ``exited``; the C handle is released
right after, with the exit status kept here.  A handle released while its
child still runs kills it (SIGKILL) and stays in C until libuv has reaped
it, so no zombie is ever left behind.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any, Optional, Sequence

from .._binding import ffi, lib
from ._common import check
from ._handle import Handle
from ._loop import get_bridge

__all__ = ["CoreProcess"]

# libuv's codes are minus errno on Unix.
_UV_ESRCH = -errno.ESRCH
_SIGKILL = 9


class CoreProcess:
    """A spawned child: its pid, its exit, signals to it."""

    __slots__ = ("_h", "pid", "exited", "_status")

    def __init__(self, handle: Handle) -> None:
        self._h = handle
        self.pid: int = lib.ps_process_pid(handle.ptr)
        # (exit status, terminating signal) once known.
        self._status: Optional[tuple[int, int]] = None
        # Resolved by the exit event (with the event's status, 0); failed
        # with ClosedResourceError if the loop closes first (whose teardown
        # kills and reaps the child).
        self.exited: asyncio.Future[Any] = handle.bridge.new_future()
        handle.op.waiter = self.exited
        self.exited.add_done_callback(self._on_exit)

    @classmethod
    def spawn(
        cls,
        file: bytes,
        argv: Sequence[bytes],
        envp: Optional[Sequence[bytes]],
        cwd: Optional[bytes],
        stdio_fds: Sequence[int],
    ) -> CoreProcess:
        """Start file with argv: stdio_fds[i] becomes the child's fd i (-1:
        /dev/null).  Raises the OSError of ps_process_spawn (nothing left
        running then)."""
        bridge = get_bridge()
        handle = Handle(bridge)
        keep = [ffi.new("char[]", arg) for arg in argv]  # alive for the call
        c_argv = ffi.new("char *[]", [*keep, ffi.NULL])
        c_envp: Any = ffi.NULL
        if envp is not None:
            env_keep = [ffi.new("char[]", entry) for entry in envp]
            c_envp = ffi.new("char *[]", [*env_keep, ffi.NULL])
        c_cwd: Any = ffi.NULL if cwd is None else cwd
        fds = ffi.new("int[3]", list(stdio_fds))
        out = ffi.new("ps_process_t **")
        check(lib.ps_process_spawn(bridge.ptr, file, c_argv, c_envp, c_cwd, fds, handle.cdata, out))
        bridge.adopt(handle, out[0])
        bridge.schedule_pass()
        return cls(handle)

    def _read_status(self) -> None:
        h = self._h
        if self._status is None and h.ptr is None and h.bridge.closed:
            # The loop's teardown (ps_loop_close) killed the child with
            # SIGKILL and reaped it, its status gone with the C handle.
            self._status = (0, _SIGKILL)
        if self._status is None and h.ptr is not None:
            code = ffi.new("long long *")
            signum = ffi.new("int *")
            if lib.ps_process_exit_status(h.ptr, code, signum):
                self._status = (int(code[0]), int(signum[0]))

    def _on_exit(self, exited: asyncio.Future[Any]) -> None:
        """The child exited (or the loop closed): keep the status and
        release the C handle."""
        if not exited.cancelled():
            exited.exception()  # retrieved: a closed loop is not an error here
        self._read_status()
        self.release()

    @property
    def status(self) -> Optional[tuple[int, int]]:
        """(exit status, terminating signal or 0) once it exited, else None."""
        self._read_status()
        return self._status

    @property
    def known_status(self) -> Optional[tuple[int, int]]:
        """The status if already read, without calling C (any thread)."""
        return self._status

    def check_loop(self) -> None:
        """RuntimeError unless called from the loop that owns the child
        (signals must not race its reaping, which runs in that loop)."""
        self._h.bridge.check_loop()

    def kill(self, signum: int) -> bool:
        """Send signum; False if the child has exited (it is never sent to
        a pid the kernel may have given to another process)."""
        h = self._h
        if self._status is not None or h.ptr is None:
            return False
        err = lib.ps_process_kill(h.ptr, signum)
        if err == _UV_ESRCH:
            return False
        check(err)
        return True

    def release(self) -> None:
        """Release the C handle (a running child is killed, then reaped by
        the C core).  Idempotent."""
        h = self._h
        if h.ptr is not None:
            self._read_status()
            err = lib.ps_process_close(h.ptr)
            if err < 0 and err != lib.UV_EALREADY:
                check(err)
            h.bridge.schedule_pass()
