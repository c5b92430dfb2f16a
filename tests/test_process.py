"""Child processes: open_process, Process, run_process."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import signal
import subprocess
import sys
import threading

import pytest

import pystream
from pystream.testing import check_two_way_stream

from helpers import wait_until

PY = sys.executable


def children() -> set[int]:
    """This process's children (zombies included), from /proc."""
    pids: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            pids.update(int(p) for p in f.read().split())
    return pids


# -- run_process ------------------------------------------------------------


async def test_run_process_exit_status_and_check():
    done = await pystream.run_process(["sh", "-c", "exit 3"], check=False)
    assert done.returncode == 3 and done.stdout is None and done.stderr is None
    with pytest.raises(subprocess.CalledProcessError) as info:
        await pystream.run_process(
            ["sh", "-c", "echo out; echo err >&2; exit 4"], capture_stdout=True, capture_stderr=True
        )
    assert info.value.returncode == 4
    assert (info.value.stdout, info.value.stderr) == (b"out\n", b"err\n")
    done = await pystream.run_process("echo $((6 * 7))", shell=True, capture_stdout=True)
    assert done.stdout == b"42\n" and done.args == "echo $((6 * 7))"


@pytest.mark.patience(90)  # 192 MiB through pipes: slow on PyPy on a busy machine
async def test_run_process_feeds_and_drains_at_once():
    # tee copies each chunk of its stdin to stdout and to stderr as it
    # comes: 64 MiB each way, far more than the pipes hold, so feeding
    # without draining both outputs at once would deadlock.
    data = os.urandom(1 << 20) * 64
    done = await pystream.run_process(
        ["tee", "/dev/stderr"], input=data, capture_stdout=True, capture_stderr=True
    )
    assert done.stdout == data and done.stderr == data


async def test_run_process_child_that_does_not_read_its_input():
    done = await pystream.run_process(["true"], input=b"x" * (4 << 20))
    assert done.returncode == 0


async def test_run_process_through_real_programs():
    lines = b"".join(b"%d\n" % n for n in range(10000, 0, -1))
    done = await pystream.run_process(["sort", "-n"], input=lines, capture_stdout=True)
    assert done.stdout == b"".join(b"%d\n" % n for n in range(1, 10001))
    done = await pystream.run_process(
        [PY, "-c", "import sys; print(sys.argv[1:])", "a b", "c"], capture_stdout=True
    )
    assert done.stdout == b"['a b', 'c']\n"


async def test_run_process_cancelled_terminates_and_reaps(tmp_path):
    task = asyncio.ensure_future(pystream.run_process(["sleep", "100"]))
    await wait_until(lambda: children(), "the child to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not children()


async def test_run_process_cancelled_kills_a_child_ignoring_sigterm(tmp_path):
    ready = tmp_path / "ready"
    script = f"trap '' TERM; touch {ready}; while :; do sleep 0.05; done"
    task = asyncio.ensure_future(pystream.run_process(["sh", "-c", script]))
    while not ready.exists():
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    start = loop.time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 4.5 < loop.time() - start < 15  # SIGTERM ignored: SIGKILL after 5 s
    assert not children()


async def test_run_process_bad_input():
    with pytest.raises(TypeError):
        await pystream.run_process(["cat"], input="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await pystream.run_process(["cat"], input=b"", stdin=subprocess.DEVNULL)
    with pytest.raises(ValueError):
        await pystream.run_process(["cat"], capture_stdout=True, stdout=subprocess.DEVNULL)


def test_run_process_refuses_pipes_nobody_would_serve():
    for name in ("stdin", "stdout", "stderr"):
        with pytest.raises(ValueError, match=f"{name}=PIPE"):
            asyncio.run(pystream.run_process(["true"], **{name: subprocess.PIPE}))
    assert not children()


async def test_a_pystream_stream_is_refused_as_stdio():
    r, w = await pystream.open_pipe()
    async with r, w:
        with pytest.raises(TypeError, match="os.pipe"):
            await pystream.open_process(["true"], stdout=w)
    assert not children()


async def test_a_pipeline_through_an_os_pipe():
    r, w = os.pipe()
    try:
        first = await pystream.open_process(["seq", "200000"], stdout=w)
        second = await pystream.open_process(["wc", "-l"], stdin=r, stdout=subprocess.PIPE)
    finally:
        os.close(r)
        os.close(w)
    assert (await second.stdout.read()).strip() == b"200000"
    assert [await first.wait(), await second.wait()] == [0, 0]
    await first.aclose()
    await second.aclose()


async def test_inherited_fds_keep_their_blocking_mode():
    # libuv makes a child's fd 0-2 blocking, on the open file description
    # the parent shares; open_process puts the parent's mode back.
    r, w = os.pipe()
    try:
        os.set_blocking(w, False)
        await pystream.run_process(["true"], stdout=w)
        assert not os.get_blocking(w)
        os.set_blocking(r, False)
        await pystream.run_process(["true"], stdin=r)
        assert not os.get_blocking(r)
    finally:
        os.close(r)
        os.close(w)


async def _late_read_of_child_output(child_end) -> int:
    """Start head writing 10 MB into child_end, read it only 0.5 s later
    (the pipe fills long before), and return how many bytes came."""
    r, w = await pystream.open_pipe()
    async with r:
        try:
            proc = await pystream.open_process(
                ["head", "-c", "10000000", "/dev/zero"], stdout=child_end(w)
            )
        finally:
            await w.aclose()
        await asyncio.sleep(0.5)  # the late reader: the child meets a full pipe
        total = 0
        while chunk := await r.receive_some(1 << 20):
            total += len(chunk)
        assert await proc.wait() == 0
        await proc.aclose()
    return total


async def test_a_child_given_a_pipe_streams_fd_gets_a_blocking_description():
    # Faults issue: the child shared the parent's non-blocking open file
    # description and failed with EAGAIN after 512 KiB; it gets its own.
    assert await _late_read_of_child_output(lambda w: w.fileno()) == 10_000_000


async def test_a_child_given_a_non_blocking_os_pipe_gets_everything():
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        proc = await pystream.open_process(["head", "-c", "3000000", "/dev/zero"], stdout=w)
    finally:
        os.close(w)
    reader = await pystream.wrap_fd(r)
    async with reader:
        await asyncio.sleep(0.5)
        assert len(await reader.read()) == 3_000_000
    assert await proc.wait() == 0
    await proc.aclose()


async def test_a_non_blocking_socket_is_refused_as_stdio():
    import socket

    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        with pytest.raises(ValueError, match="non-blocking"):
            await pystream.open_process(["true"], stdout=a)
        assert not a.getblocking()
        a.setblocking(True)
        done = await pystream.run_process(["echo", "hi"], stdout=a)
        assert done.returncode == 0 and b.recv(10) == b"hi\n"
    assert not children()


def test_returncode_after_the_loop_closed():
    loop = asyncio.new_event_loop()
    try:
        proc = loop.run_until_complete(pystream.open_process(["sleep", "100"]))
        loop.run_until_complete(loop.shutdown_asyncgens())  # the bridge's teardown
    finally:
        loop.close()
    # The teardown killed and reaped it.
    assert proc.returncode == -signal.SIGKILL
    assert proc.pid not in children()
    del proc  # no "still running" warning (warnings are errors here)
    gc.collect()


# -- open_process -------------------------------------------------------------


async def test_hundred_mib_through_cat():
    proc = await pystream.open_process(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    chunk = os.urandom(1 << 20)
    sent, got = hashlib.sha256(), hashlib.sha256()

    async def feed():
        for i in range(100):
            piece = bytes([i]) + chunk[1:]
            sent.update(piece)
            await proc.stdin.send_all(piece)
        await proc.stdin.send_eof()

    async def drain():
        n = 0
        buffer = bytearray(1 << 18)
        while count := await proc.stdout.receive_into(buffer):
            got.update(memoryview(buffer)[:count])
            n += count
        return n

    _, n = await asyncio.gather(feed(), drain())
    assert n == 100 << 20 and got.digest() == sent.digest()
    assert await proc.wait() == 0
    await proc.aclose()


async def test_process_stdio_passes_the_two_way_checks():
    procs: list[pystream.Process] = []

    async def maker():
        # Two cats: each end sends into one and receives from the other.
        one, two = [
            await pystream.open_process(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(2)
        ]
        procs.extend((one, two))
        return (
            pystream.StapledStream(one.stdin, two.stdout),
            pystream.StapledStream(two.stdin, one.stdout),
        )

    await check_two_way_stream(maker, None)
    for proc in procs:
        await proc.aclose()
    assert not children()


async def test_stdio_and_stderr_to_stdout():
    proc = await pystream.open_process(
        ["sh", "-c", "read line; echo got $line; echo oops >&2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stderr is None and proc.stdio is not None
    await proc.stdio.send_all(b"hello\n")
    assert await proc.stdio.readline() == b"got hello\n"
    assert await proc.stdio.read() == b"oops\n"
    assert await proc.wait() == 0
    await proc.aclose()


async def test_signals_and_return_codes():
    for how, expected in (("terminate", -signal.SIGTERM), ("kill", -signal.SIGKILL)):
        proc = await pystream.open_process(["sleep", "100"])
        assert proc.returncode is None and proc.poll() is None
        getattr(proc, how)()
        assert await proc.wait() == expected
        assert proc.returncode == expected
        proc.kill()  # exited: nothing happens
        proc.send_signal(signal.SIGTERM)
        await proc.aclose()
    proc = await pystream.open_process(["sleep", "100"])
    proc.send_signal(signal.SIGUSR1)
    assert await proc.wait() == -signal.SIGUSR1


async def test_wait_is_cancel_safe():
    proc = await pystream.open_process(["sh", "-c", "sleep 0.3; exit 7"])
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(proc.wait(), 0.05)
    waits = [asyncio.ensure_future(proc.wait()) for _ in range(3)]
    assert await asyncio.gather(*waits) == [7, 7, 7]
    assert await proc.wait() == 7
    await proc.aclose()


async def test_aclose_closes_pipes_then_waits():
    proc = await pystream.open_process(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    await proc.stdin.send_all(b"x")
    async with proc:
        pass
    # cat saw EOF on stdin (or SIGPIPE on stdout) and exited.
    assert proc.returncode in (0, -signal.SIGPIPE)
    with pytest.raises(pystream.ClosedResourceError):
        await proc.stdin.send_all(b"y")


async def test_cancelled_aclose_kills_and_reaps():
    proc = await pystream.open_process(["sleep", "100"])
    closing = asyncio.ensure_future(proc.aclose())
    await asyncio.sleep(0)  # it waits for the exit now (sleep never exits)
    assert not closing.done()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert proc.returncode == -signal.SIGKILL
    assert not children()


async def test_fifty_processes_at_once():
    procs = [
        await pystream.open_process(
            [PY, "-c", f"import sys; sys.stdout.write('{i}' * 100000)"], stdout=subprocess.PIPE
        )
        for i in range(50)
    ]
    outputs = await asyncio.gather(*(p.stdout.read() for p in procs))
    assert outputs == [str(i).encode() * 100000 for i in range(50)]
    assert [await p.wait() for p in procs] == [0] * 50
    for proc in procs:
        await proc.aclose()
    assert not children()


async def test_env_cwd_and_inherited_fds(tmp_path):
    done = await pystream.run_process(
        ["sh", "-c", 'echo "$GREETING"; pwd'],
        env={"GREETING": "hi", "PATH": os.environ["PATH"]},
        cwd=tmp_path,
        capture_stdout=True,
    )
    assert done.stdout == b"hi\n" + os.fsencode(os.path.realpath(tmp_path)) + b"\n"
    with open(tmp_path / "out", "wb") as f:
        await pystream.run_process(["echo", "to a file"], stdout=f)
        await pystream.run_process(["echo", "by fd"], stdout=f.fileno(), stderr=subprocess.DEVNULL)
    assert (tmp_path / "out").read_bytes() == b"to a file\nby fd\n"
    done = await pystream.run_process(["cat"], stdin=subprocess.DEVNULL, capture_stdout=True)
    assert done.stdout == b""


async def test_bad_input_leaves_nothing_behind(tmp_path):
    not_executable = tmp_path / "script"
    not_executable.write_text("#!/bin/sh\n")
    cases = [
        (["no-such-program-pystream"], FileNotFoundError),
        ([str(tmp_path / "missing")], FileNotFoundError),
        ([str(not_executable)], PermissionError),
        ("ls", TypeError),  # a str needs shell=True
        (["ls"], TypeError, {"shell": True}),
        ([], ValueError),
        (["ls", 3], TypeError),
        (["ls", "a\0b"], ValueError),
        (["ls"], ValueError, {"env": {"A=B": "c"}}),
        (["ls"], FileNotFoundError, {"cwd": tmp_path / "nowhere"}),
        (["ls"], NotADirectoryError, {"cwd": not_executable}),
        (["ls"], TypeError, {"stdin": "x"}),
        (["ls"], TypeError, {"stdout": True}),
        (["ls"], ValueError, {"stdout": -7}),
        (["ls"], ValueError, {"stdin": subprocess.STDOUT}),
    ]
    for args, error, *options in cases:
        with pytest.raises(error):
            await pystream.open_process(args, **{"stdout": subprocess.PIPE, **dict(*options)})
    with pytest.raises(FileNotFoundError) as info:
        await pystream.open_process(["no-such-program-pystream"])
    assert info.value.filename == "no-such-program-pystream"
    assert not children()


@pytest.mark.patience(90)  # 200 fork/execs: slow on PyPy on a busy machine
async def test_two_hundred_spawns_leave_nothing(tmp_path):
    for _ in range(200):
        proc = await pystream.open_process(
            ["true"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        await proc.aclose()
        assert proc.returncode == 0
    assert not children()
    # (The per-test oracle checks that every fd and C handle is back.)


def test_from_a_threads_own_loop():
    result = []

    def run():
        done = asyncio.run(pystream.run_process(["echo", "thread"], capture_stdout=True))
        result.append(done.stdout)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert result == [b"thread\n"]
    assert pystream._counters()["handles"] == 0


def test_the_jsonrpc_example():
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "jsonrpc_client.py")
    done = subprocess.run([PY, example], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == [
        "add(2, 3) = 5; echo of 1 MiB came back whole: True; length = 1048576",
        "add(1) failed as it should: TypeError: <lambda>() missing 1 required positional "
        "argument: 'b'",
        "server exited with 0",
    ]


# -- exits found without libuv's SIGCHLD handler ----------------------------


def c_sigchld_handler() -> int:
    """The C-level SIGCHLD handler in place, as an address (0 for SIG_DFL):
    what the kernel calls, which ``signal.getsignal`` does not show."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    # glibc's struct sigaction starts with the handler; 512 bytes is more
    # than the whole struct needs.
    action = ctypes.create_string_buffer(512)
    assert libc.sigaction(signal.SIGCHLD, None, action) == 0
    return ctypes.cast(action, ctypes.POINTER(ctypes.c_void_p))[0] or 0


async def test_exits_found_after_sigchld_handler_replaced():
    # A Python handler installed after pystream's first spawn replaces
    # libuv's at the C level, and libuv then hears of no exit: the C core's
    # exit check (every 250 ms) finds them instead.
    signals: list[int] = []
    sleeper = await pystream.open_process(["sleep", "100"])
    libuv_handler = c_sigchld_handler()
    assert libuv_handler != 0
    previous = signal.signal(signal.SIGCHLD, lambda signum, frame: signals.append(signum))
    try:
        assert c_sigchld_handler() != libuv_handler
        done = await asyncio.wait_for(pystream.run_process(["sh", "-c", "exit 5"], check=False), 5)
        assert done.returncode == 5
        sleeper.kill()
        assert await asyncio.wait_for(sleeper.wait(), 5) == -signal.SIGKILL
        assert signals  # the exits went to Python's handler, not to libuv's
    finally:
        sleeper.kill()  # does nothing once it has exited
        await asyncio.wait_for(sleeper.wait(), 5)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL if previous is None else previous)
    # Restoring the previous Python handler does not give libuv its own
    # back.  libuv installs it again when a loop next watches SIGCHLD: at a
    # spawn once every pystream child handle has closed (the last one to
    # close made libuv stop watching, and reset SIGCHLD to SIG_DFL).  Ours
    # have, so later spawns, in this test and the next ones, are reaped by
    # libuv's handler again, without the exit check's delay.
    proc = await pystream.open_process(["true"])
    assert c_sigchld_handler() == libuv_handler
    assert await asyncio.wait_for(proc.wait(), 5) == 0
    assert not children()


async def test_dropping_a_running_process_warns():
    proc = await pystream.open_process(["sleep", "100"])
    pid = proc.pid
    with pytest.warns(ResourceWarning, match="not waited for"):
        del proc
        gc.collect()
    os.kill(pid, signal.SIGKILL)  # (a test's own clean-up: the core reaps it)
    while pid in children():
        await asyncio.sleep(0.01)


# -- SIGCHLD shared with the rest of the process ------------------------------


def c_sigchld_action() -> bytes:
    """SIGCHLD's C-level action, as the bytes of glibc's struct sigaction
    (512 bytes is more than the whole struct needs)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    action = ctypes.create_string_buffer(512)
    assert libc.sigaction(signal.SIGCHLD, None, action) == 0
    return action.raw


def kept_by_kernel(action: bytes) -> tuple[bytes, bytes, bytes]:
    """The parts of an action the kernel keeps, at their offsets in glibc's
    struct sigaction on 64-bit Linux: the handler, the mask's 64 signals and
    the flags.  glibc fills the rest of its 1024-bit mask from its stack."""
    return action[0:8], action[8:16], action[136:140]


def set_c_sigchld_action(raw: bytes) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.sigaction(signal.SIGCHLD, ctypes.create_string_buffer(raw), None) == 0


@pytest.mark.loops("uvloop")
async def test_a_spawn_keeps_uvloops_sigchld_handler():
    # uvloop brings its own copy of libuv, whose SIGCHLD handler is how it
    # hears of its children's exits.  Our libuv installs its handler over it
    # at a spawn, and resets SIGCHLD to SIG_DFL when our last child closes;
    # the C core puts uvloop's back both times (our child's exit is then
    # found by the exit check), so uvloop's wait() still returns.
    proc = await asyncio.create_subprocess_exec("sleep", "0.3")
    uvloops = c_sigchld_action()
    try:
        done = await pystream.run_process(["true"])
        assert done.returncode == 0
        assert kept_by_kernel(c_sigchld_action()) == kept_by_kernel(uvloops)
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            # uvloop lost its handler: it would never hear of the exit, and
            # closing its loop would wait for it forever.  Its handler back,
            # and the signal it missed, make this a failure, not a hang.
            set_c_sigchld_action(uvloops)
            os.kill(os.getpid(), signal.SIGCHLD)
            await asyncio.wait_for(proc.wait(), 5)


@pytest.mark.loops("asyncio")
async def test_a_spawn_keeps_a_sigchld_handler_installed_before_it():
    loop = asyncio.get_running_loop()
    calls: list[None] = []
    called = asyncio.Event()

    def count() -> None:
        calls.append(None)
        called.set()

    loop.add_signal_handler(signal.SIGCHLD, count)
    try:
        done = await pystream.run_process(["sh", "-c", "exit 3"], check=False)
        assert done.returncode == 3  # found by the exit check
        # The handler stayed through the spawn and the close: it had our
        # child's SIGCHLD (and the one the C core sends after each restore),
        # and has the next child's, which is not ours.  Those signals all
        # came to this thread before run_process returned, so the loop
        # reads them together and runs their calls before this task
        # resumes: none is left to set the event after the clear.
        await asyncio.wait_for(called.wait(), 5)
        called.clear()
        seen = len(calls)
        subprocess.run(["true"], check=True)
        await asyncio.wait_for(called.wait(), 5)
        assert len(calls) > seen
    finally:
        loop.remove_signal_handler(signal.SIGCHLD)
