"""open_stdin/open_stdout/open_stderr, in child interpreters whose fd 0, 1
and 2 are each kind of file: a pipe, a regular file, a socket, a terminal,
/dev/null.  And ThreadFdStream (what files and sockets use) on its own."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import select
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

import pystream
from pystream._streams._stdio import ThreadFdStream
from pystream.testing import check_one_way_stream

from helpers import LOOP_KINDS, wait_until

CHILD = textwrap.dedent(
    """
    import asyncio, fcntl, hashlib, os, sys
    import pystream

    if os.environ.get("PYSTREAM_TEST_LOOP") == "uvloop":
        import uvloop
        uvloop.install()

    def flags():
        return [fcntl.fcntl(fd, fcntl.F_GETFL) for fd in (0, 1, 2)]

    async def main():
        before = flags()
        stdin = await pystream.open_stdin()
        stdout = await pystream.open_stdout()
        stderr = await pystream.open_stderr()
        during = flags()  # the shared descriptions: never made non-blocking
        data = await stdin.read()
        digest = hashlib.sha256(data).hexdigest()
        await stdout.send_all(b"got %d bytes %s\\n" % (len(data), digest.encode()))
        await stderr.send_all(b"a line to stderr\\n")
        for stream in (stdin, stdout, stderr):
            await stream.aclose()
        after = flags()
        ok = before == during == after
        print("print still works", flush=True)
        print("modes kept" if ok else f"modes changed: {before} {during} {after}",
              file=sys.stderr, flush=True)

    asyncio.run(main())
    """
)

DATA = os.urandom(300_000)  # more than a pipe or socket buffer holds
EXPECTED = b"got %d bytes %s\n" % (len(DATA), hashlib.sha256(DATA).hexdigest().encode())


def child_env(loop_kind):
    return {**os.environ, "PYSTREAM_TEST_LOOP": loop_kind}


def run_child(loop_kind, **stdio):
    return subprocess.run(
        [sys.executable, "-c", CHILD], env=child_env(loop_kind), timeout=60, **stdio
    )


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_pipes(loop_kind):
    done = run_child(loop_kind, input=DATA, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == EXPECTED + b"print still works\n"
    assert done.stderr == b"a line to stderr\nmodes kept\n"


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_regular_files(loop_kind, tmp_path):
    (tmp_path / "in").write_bytes(DATA)
    with open(tmp_path / "in", "rb") as fin, open(tmp_path / "out", "wb") as fout:
        with open(tmp_path / "err", "wb") as ferr:
            done = run_child(loop_kind, stdin=fin, stdout=fout, stderr=ferr)
    err = (tmp_path / "err").read_bytes()
    assert done.returncode == 0, err.decode()
    assert (tmp_path / "out").read_bytes() == EXPECTED + b"print still works\n"
    assert err == b"a line to stderr\nmodes kept\n"


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_sockets(loop_kind):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            env=child_env(loop_kind),
            stdin=theirs,
            stdout=theirs,
            stderr=subprocess.PIPE,
        )
        theirs.close()
        ours.sendall(DATA)
        ours.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := ours.recv(65536):
            got += chunk
        err = proc.stderr.read()
        proc.stderr.close()
        assert proc.wait(60) == 0, err.decode()
    assert got == EXPECTED + b"print still works\n"
    assert err == b"a line to stderr\nmodes kept\n"


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_dev_null(loop_kind):
    done = run_child(
        loop_kind, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b"a line to stderr\nmodes kept\n"


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_terminal(loop_kind):
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            env=child_env(loop_kind),
            stdin=slave,
            stdout=slave,
            stderr=slave,
        )
        os.close(slave)
        slave = -1
        os.write(master, b"typed line\n\x04")  # a line, then ^D: end of input
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(60) == 0, out
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    line = b"typed line\n"
    expected = b"got %d bytes %s" % (len(line), hashlib.sha256(line).hexdigest().encode())
    assert expected in out and b"modes kept" in out and b"print still works" in out, out


# -- ThreadFdStream on its own --------------------------------------------------


async def thread_pipe():
    r, w = os.pipe2(os.O_CLOEXEC)
    return (
        ThreadFdStream(w, readable=False, writable=True),
        ThreadFdStream(r, readable=True, writable=False),
    )


async def test_thread_fd_stream_passes_the_one_way_checks():
    await check_one_way_stream(thread_pipe, None)


async def test_thread_fd_stream_cancelled_receive_loses_nothing():
    w, r = await thread_pipe()
    receiving = asyncio.ensure_future(r.receive_some(10))
    await asyncio.sleep(0.05)  # its thread is blocked in read()
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    await w.send_all(b"kept")
    assert await r.receive_some(10) == b"kept"
    await w.aclose()
    assert await r.receive_some(10) == b""
    await r.aclose()


def socket_fds():
    a, b = socket.socketpair()
    return a.detach(), b.detach()


def pipe_fds():
    return os.pipe2(os.O_CLOEXEC)


async def until_sleeping_in_kernel(thread):
    """Until thread sleeps in a system call (its read() or poll()), not
    waiting for the GIL (a futex)."""
    task = f"/proc/self/task/{thread.native_id}"
    for _ in range(5000):
        with open(f"{task}/stat") as stat, open(f"{task}/wchan") as wchan:
            state = stat.read().rpartition(")")[2].split()[0]
            if state == "S" and "futex" not in wchan.read():
                return
        await asyncio.sleep(0.001)
    raise AssertionError("the stream's thread never blocked")


@pytest.mark.parametrize("make_fds", [socket_fds, pipe_fds], ids=["socket", "pipe"])
async def test_thread_fd_stream_close_during_a_blocked_read(make_fds):
    # Like open_stdin's stream on a socket (or a pipe where /proc is
    # missing): a duplicate of a descriptor another reader still holds.
    # (A thread left blocked in read() after the close took "later".)
    ours, theirs = make_fds()
    r = ThreadFdStream(os.dup(ours), readable=True, writable=False)
    try:
        threads = set(threading.enumerate())
        receiving = asyncio.ensure_future(r.receive_some(10))
        while not set(threading.enumerate()) - threads:  # (its checkpoint first)
            await asyncio.sleep(0)
        (thread,) = set(threading.enumerate()) - threads
        await until_sleeping_in_kernel(thread)
        await r.aclose()
        with pytest.raises(pystream.ClosedResourceError):
            await receiving
        os.write(theirs, b"later")
        # The stream's thread ends without reading (then its fds close)...
        reading = r._reading
        await asyncio.wait([reading], timeout=5)
        assert reading.done()
        await asyncio.sleep(0)
        # ...so the fd's other holder (plain sys.stdin, a later open_stdin)
        # reads it all.
        ready = select.poll()
        ready.register(ours, select.POLLIN)
        assert ready.poll(0)
        assert os.read(ours, 10) == b"later"
    finally:
        os.close(ours)
        os.close(theirs)


async def test_no_fd_for_the_stop_pipe_fails_the_open_not_a_receive(monkeypatch, tmp_path):
    # Faults issue: the stop pipe was made by the first receive, whose
    # bare OSError (EMFILE) the stream contract does not allow there.
    path = tmp_path / "input"
    path.write_bytes(b"data")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def no_more_fds(flags=0):
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(os, "pipe2", no_more_fds)
    with pytest.raises(OSError) as info:
        ThreadFdStream(fd, readable=True, writable=False)
    assert info.value.errno == errno.EMFILE
    os.fstat(fd)  # still the caller's to close
    os.close(fd)


async def test_a_socket_read_whose_input_another_holder_took_stops_at_close(monkeypatch):
    # Faults issue: between the thread's poll and its read, another holder
    # of the same socket took the input; the read then blocked, outlived
    # the close, and took later input meant for that other holder.
    ours, peer = socket.socketpair()
    with ours, peer:
        stream = ThreadFdStream(os.dup(ours.fileno()), readable=True, writable=False)
        real_poll = select.poll
        stolen: list[bytes] = []

        class StealingPoll:
            """poll(), after which the other holder takes the input once."""

            def __init__(self):
                self._poll = real_poll()

            def register(self, *args):
                self._poll.register(*args)

            def poll(self, *args):
                events = self._poll.poll(*args)
                if not stolen and any(e & select.POLLIN for _, e in events):
                    stolen.append(ours.recv(100))
                return events

        monkeypatch.setattr(select, "poll", StealingPoll)
        peer.sendall(b"first")
        receive = asyncio.ensure_future(stream.receive_some(100))
        await wait_until(lambda: stolen, "the other holder took the input")
        # The stream's thread blocks again (in a read, or in a poll that
        # the close can end), before the close: /proc says it is in a call.
        reader = _stdio_thread()
        await wait_until(lambda: _blocked(reader), "the stream's thread waits")
        receive.cancel()
        await asyncio.wait([receive])
        await stream.aclose()
        peer.sendall(b"later")
        ours.settimeout(5)
        assert stolen == [b"first"]
        assert ours.recv(100) == b"later"  # not taken by the closed stream's thread
        await wait_until(lambda: not reader.is_alive(), "the stream's thread ends")
        await asyncio.sleep(0)  # its outcome, which closes the last fds


def _blocked(thread: threading.Thread) -> bool:
    """Whether a thread is blocked in a system call (Linux's /proc)."""
    try:
        with open(f"/proc/self/task/{thread.native_id}/syscall") as f:
            return f.read().split()[0] not in ("running", "-1")
    except (FileNotFoundError, ProcessLookupError):
        return False


async def test_a_socket_write_the_peer_never_reads_ends_with_the_close():
    # Faults issue: a write blocked in its thread outlived aclose (and
    # aclose_forcefully), holding the thread and the fd for ever.
    ours, peer = socket.socketpair()
    with ours, peer:
        stream = ThreadFdStream(os.dup(ours.fileno()), readable=False, writable=True)
        sending = asyncio.ensure_future(stream.send_all(b"x" * (16 << 20)))
        await wait_until(lambda: _stdio_thread() is not None, "the write starts")
        writer = _stdio_thread()
        await wait_until(lambda: _blocked(writer), "the write waits for the peer")
        await pystream.aclose_forcefully(stream)
        await wait_until(lambda: not writer.is_alive(), "the writing thread ends")
        await asyncio.wait([sending])
        with pytest.raises(pystream.ClosedResourceError):
            sending.result()
        await asyncio.sleep(0)  # the thread's outcome, which closes the last fds


def _stdio_thread():
    """The thread of a ThreadFdStream's read or write, if one runs."""
    return next((t for t in threading.enumerate() if t.name == "pystream-stdio"), None)
