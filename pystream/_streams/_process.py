"""Child processes: ``open_process`` and ``Process`` (``run_process``,
built on them, is in ``_run_process``).

The child is spawned by the C core (libuv's ``uv_spawn``), which also reaps
it: no asyncio child watcher, so it works the same from any thread's loop,
on uvloop and on PyPy.  Its piped stdio are ``PipeStream``s over pipes made
here, so they have the whole Stream API.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import warnings
from typing import Any, Mapping, Optional, Sequence, Union

from .._base._readers import DEFAULT_LIMIT, check_limit
from .._base._util import CHECKPOINT
from .._core import CoreProcess
from .._wrappers._stapled import StapledStream
from ..abc import AsyncResource
from ._pipes import PipeStream, new_pipe, pipe_stream
from ._process_args import (
    StdioSpec,
    StrOrBytesPath,
    argv_of,
    blocking_description,
    cwd_of,
    envp_of,
    stdio_fd,
)

__all__ = ["Process", "open_process", "StrOrBytesPath"]

# run_process, cancelled: how long a terminated child gets before SIGKILL.
_TERMINATE_GRACE = 5.0


class Process(AsyncResource):
    """A running child process, made by ``open_process``.

    ``returncode`` is None while it runs, then its exit status, or ``-N``
    if signal N ended it (as in ``subprocess``).  ``stdin`` is a send
    stream (``send_eof`` closes the pipe), ``stdout`` and ``stderr``
    receive streams, each None unless piped; ``stdio`` staples stdin and
    stdout when both are piped.

    ``aclose()`` closes the pipes, then waits for the exit; cancelled, it
    kills the child and still reaps it.  Signals are never sent once the
    child has exited (its pid may belong to another process by then).
    """

    def __init__(
        self,
        core: CoreProcess,
        args: Any,
        stdin: Optional[PipeStream],
        stdout: Optional[PipeStream],
        stderr: Optional[PipeStream],
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self._core = core
        self.args = args
        self.pid = core.pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.stdio: Optional[StapledStream] = None
        if stdin is not None and stdout is not None:
            self.stdio = StapledStream(stdin, stdout)
        for stream in (stdin, stdout, stderr, self.stdio):
            if stream is not None:
                stream.limit = limit

    def __del__(self) -> None:
        # As subprocess.Popen does: dropping a running child is a mistake
        # worth a warning (it keeps running; the C core reaps it).
        core = getattr(self, "_core", None)
        if core is not None and core.known_status is None:
            warnings.warn(
                f"{self!r} was not waited for (it is still running)",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )

    def __repr__(self) -> str:
        code = self.returncode
        state = "running" if code is None else f"returncode={code}"
        return f"<pystream.Process {self.args!r} pid={self.pid} {state}>"

    @property
    def returncode(self) -> Optional[int]:
        status = self._core.status
        if status is None:
            return None
        code, signum = status
        return -signum if signum else code

    def poll(self) -> Optional[int]:
        """The returncode, without waiting (None while it runs)."""
        return self.returncode

    async def wait(self) -> int:
        """Wait for the child to exit and return its returncode.  A
        checkpoint.

        Raises:
            pystream.ClosedResourceError: the event loop's pystream bridge
                closed first (its teardown killed and reaped the child).

        Cancellation:
            Changes nothing: wait again (several tasks may wait at once).
        """
        if self.returncode is None:
            await asyncio.shield(self._core.exited)
        else:
            await CHECKPOINT
        code = self.returncode
        assert code is not None, "exited without a status"
        return code

    def send_signal(self, sig: int) -> None:
        """Send sig, unless the child has exited (then nothing).

        Raises:
            RuntimeError: called from another thread or loop than the one
                that started the child (its reaping runs there, and a
                signal must never race it to a pid the kernel reused).
            OSError: the system refused (EPERM, say).
        """
        self._core.check_loop()
        self._core.kill(int(sig))

    def terminate(self) -> None:
        """SIGTERM, unless the child has exited."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, unless the child has exited."""
        self.send_signal(signal.SIGKILL)

    def _pipes(self) -> list[PipeStream]:
        return [p for p in (self.stdin, self.stdout, self.stderr) if p is not None]

    async def aclose(self) -> None:
        """Close the pipes, then wait for the child to exit.  Idempotent.

        Raises:
            pystream.ClosedResourceError: as ``wait``.

        Cancellation:
            It kills the child (SIGKILL), waits (at most 5 s) for it to be
            reaped, and re-raises; the C core reaps it even if that wait
            is cut short.  The same if closing fails.
        """
        try:
            for pipe in self._pipes():
                await pipe.aclose()
            await self.wait()
        except BaseException:
            await self._kill_and_reap()
            raise

    async def _kill_and_reap(self) -> None:
        for pipe in self._pipes():
            pipe._close_now()
        self.kill()
        # SIGKILL ends it at once; wait for the reaping, unless cancelled
        # again (the C core still reaps it then).
        if self.returncode is None and not self._core.exited.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._core.exited), _TERMINATE_GRACE)
            except (asyncio.CancelledError, asyncio.TimeoutError):
                pass


# -- open_process ---------------------------------------------------------


async def open_process(
    args: Union[Sequence[StrOrBytesPath], str, bytes],
    *,
    stdin: StdioSpec = None,
    stdout: StdioSpec = None,
    stderr: StdioSpec = None,
    cwd: Optional[StrOrBytesPath] = None,
    env: Optional[Mapping[Any, Any]] = None,
    shell: bool = False,
    limit: int = DEFAULT_LIMIT,
) -> Process:
    """Start a child process.  A checkpoint.

    ``args`` is a non-empty sequence (``args[0]`` is looked up in ``PATH``
    when it has no slash), or one command line with ``shell=True``.  Each
    of ``stdin``/``stdout``/``stderr``: None (inherited),
    ``subprocess.PIPE``, ``subprocess.DEVNULL``, an fd or an object with
    ``fileno()`` (not a pystream stream, which has read ahead: connect two
    children with an ``os.pipe()``); ``stderr`` may be
    ``subprocess.STDOUT``.  The fds the child inherits keep their blocking
    mode in this process; the child never shares a non-blocking one (a
    pipe's end, ``open_pipe``'s say, is opened anew for it, blocking).  libuv forks and execs the child, in this thread:
    the loop waits for the exec (a large parent makes that slower).
    ``limit`` is the default limit for ``readuntil`` and ``readline`` of
    the piped streams and ``stdio`` (their ``limit`` property), as asyncio's
    ``create_subprocess_exec`` takes it.

    Raises:
        FileNotFoundError: no such program (``filename`` names it), or no
            such ``cwd``.
        PermissionError: the program cannot be run.
        TypeError, ValueError: bad arguments (``limit`` not an int >= 1,
            say), or an fd in non-blocking mode that cannot be opened anew
            (a socket).
        OSError: the system refused (too many processes or fds, say).
        In every case nothing is left running or open.

    Cancellation:
        At its checkpoint, before anything starts: nothing happened.
    """
    limit = check_limit(limit)
    argv = argv_of(args, shell)
    envp = envp_of(env)
    c_cwd = cwd_of(cwd)
    if stdin == subprocess.STDOUT or stdout == subprocess.STDOUT:
        raise ValueError("only stderr may be subprocess.STDOUT")
    await CHECKPOINT
    made: list[int] = []  # fds opened here, all closed on failure
    child_fds: list[int] = []
    parent_fds: list[Optional[int]] = []
    try:
        for name, spec in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            if spec == subprocess.PIPE and type(spec) is int:
                read_fd, write_fd = new_pipe()
                made += (read_fd, write_fd)
                if name == "stdin":
                    child_fds.append(read_fd)
                    parent_fds.append(write_fd)
                else:
                    child_fds.append(write_fd)
                    parent_fds.append(read_fd)
            elif name == "stderr" and spec == subprocess.STDOUT and type(spec) is int:
                child_fds.append(child_fds[1])
                parent_fds.append(None)
            else:
                fd = stdio_fd(spec, name)
                own = None if fd < 0 else blocking_description(fd, name, spec is not None)
                if own is not None:
                    made.append(own)
                    fd = own
                child_fds.append(fd)
                parent_fds.append(None)
        # libuv makes the child's fd 0-2 blocking, which changes the open
        # file description the parent shares: put the parent's mode back.
        inherited = {fd: os.get_blocking(fd) for fd in child_fds if fd >= 0 and fd not in made}
        try:
            core = CoreProcess.spawn(argv[0], argv, envp, c_cwd, child_fds)
        except OSError as exc:
            if exc.errno is not None and exc.filename is None:
                raise OSError(exc.errno, exc.strerror, os.fsdecode(argv[0])) from None
            raise
        finally:
            for fd, blocking in inherited.items():
                if os.get_blocking(fd) != blocking:
                    os.set_blocking(fd, blocking)
    except BaseException:
        for fd in made:
            os.close(fd)
        raise
    # The child has its ends (libuv dup'ed them into it): close ours.
    for fd in made:
        if fd not in parent_fds:
            os.close(fd)
    made = [fd for fd in made if fd in parent_fds]
    streams: list[Optional[PipeStream]] = []
    try:
        for parent_fd in parent_fds:
            streams.append(None if parent_fd is None else _adopt(parent_fd, made))
    except BaseException:
        for stream in streams:
            if stream is not None:
                stream._close_now()
        for fd in made:
            os.close(fd)
        core.release()  # kills it; the C core reaps it
        raise
    stdin_end, stdout_end, stderr_end = streams
    return Process(core, args, stdin_end, stdout_end, stderr_end, limit)


def _adopt(fd: int, unowned: list[int]) -> PipeStream:
    unowned.remove(fd)  # pipe_stream owns it now, even if it fails
    return pipe_stream(fd)
