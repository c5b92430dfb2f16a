"""``run_process``: run a child to completion, feeding its input and
draining its outputs at once (never ``communicate``'s deadlock)."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any, Awaitable, Optional, Sequence, Union

from .._base._errors import BrokenResourceError
from ._pipes import PipeStream
from ._process import _TERMINATE_GRACE, Process, StrOrBytesPath, open_process

__all__ = ["run_process"]


async def run_process(
    args: Union[Sequence[StrOrBytesPath], str, bytes],
    *,
    input: Optional[Union[bytes, bytearray, memoryview]] = None,
    capture_stdout: bool = False,
    capture_stderr: bool = False,
    check: bool = True,
    **options: Any,
) -> subprocess.CompletedProcess[Any]:
    """Run a child to completion: ``subprocess.CompletedProcess``.

    ``input`` (bytes) is fed to its stdin, which is then closed; captured
    outputs are read at the same time (a child that fills its pipes never
    deadlocks this), and a child that exits without reading all its input
    is not an error.  Other options are ``open_process``'s, except
    ``stdin``/``stdout``/``stderr=PIPE`` (use ``input``/``capture_*``).

    Raises:
        subprocess.CalledProcessError: ``check`` and a non-zero returncode
            (with the captured output).
        What ``open_process`` raises.

    Cancellation:
        It terminates the child (SIGTERM), kills it (SIGKILL) if it is
        still there 5 s later, reaps it, and re-raises.
    """
    for name in ("stdin", "stdout", "stderr"):
        spec = options.get(name)
        if type(spec) is int and spec == subprocess.PIPE:
            instead = "input=..." if name == "stdin" else f"capture_{name}=True"
            raise ValueError(
                f"run_process: {name}=PIPE would have nobody to serve it; use {instead}"
            )
    if input is not None:
        if isinstance(input, str):
            raise TypeError("input must be bytes-like, not str")
        input = memoryview(input).cast("B")
        if "stdin" in options:
            raise ValueError("pass input or stdin, not both")
        options["stdin"] = subprocess.PIPE
    for flag, name in ((capture_stdout, "stdout"), (capture_stderr, "stderr")):
        if flag:
            if name in options:
                raise ValueError(f"pass capture_{name} or {name}, not both")
            options[name] = subprocess.PIPE
    proc = await open_process(args, **options)
    outputs: dict[str, bytes] = {}
    try:
        jobs: list[Awaitable[None]] = []
        if input is not None:
            jobs.append(_feed(proc, input))
        if capture_stdout:
            jobs.append(_drain(proc.stdout, outputs, "stdout"))
        if capture_stderr:
            jobs.append(_drain(proc.stderr, outputs, "stderr"))
        await _all_or_none(jobs)
        returncode = await proc.wait()
    except BaseException:
        await _stop(proc)
        raise
    finally:
        for pipe in proc._pipes():
            pipe._close_now()
    result: subprocess.CompletedProcess[Any] = subprocess.CompletedProcess(
        proc.args, returncode, outputs.get("stdout"), outputs.get("stderr")
    )
    if check:
        result.check_returncode()
    return result


async def _feed(proc: Process, data: memoryview) -> None:
    assert proc.stdin is not None
    try:
        await proc.stdin.send_all(data)
        await proc.stdin.aclose()
    except BrokenResourceError:
        pass  # it exited, or closed its stdin, without reading all: fine
    finally:
        proc.stdin._close_now()


async def _drain(pipe: Optional[PipeStream], into: dict[str, bytes], name: str) -> None:
    assert pipe is not None
    # receive_into one reused buffer: on PyPy a new bytes per chunk is
    # mostly garbage-collector work.
    chunks = bytearray()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    while True:
        count = await pipe.receive_into(buffer)
        if not count:
            break
        chunks += view[:count]
    into[name] = bytes(chunks)


async def _all_or_none(jobs: list[Awaitable[None]]) -> None:
    """Run jobs at once; the first failure (or a cancellation) cancels the
    rest, which are waited for, and is raised."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved (the first one was raised)


async def _stop(proc: Process) -> None:
    """Terminate, then kill after the grace time; reap.  Runs while a
    cancellation propagates: it must not be stopped by it."""
    if proc.returncode is not None:
        return
    proc.terminate()
    waiting = asyncio.ensure_future(asyncio.shield(proc._core.exited))
    try:
        await asyncio.wait([waiting], timeout=_TERMINATE_GRACE)
    except asyncio.CancelledError:
        pass
    waiting.cancel()
    if proc.returncode is None:
        await proc._kill_and_reap()
