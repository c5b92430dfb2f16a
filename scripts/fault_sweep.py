"""The fault sweep: every fault site of the C core failed in turn, under
representative scenarios (run by scripts/fault-sweep, in the fault build).

For each scenario, a first run without faults counts the uses of each site
(its "reach").  Then each reached site is made to fail on its 1st, 2nd, ...
use (every one; only the first N with --uses N), one case at a time, each
case in a fresh asyncio loop.  A case passes when:
- the process survives it (no crash, no sanitizer report);
- it ends within CASE_TIMEOUT seconds (no hang);
- the scenario either completes (the core absorbed the failure) with all
  its data checks, or raises one of the documented errors (OSError,
  MemoryError, BrokenResourceError, ClosedResourceError), with the data
  the peer received a prefix of what was sent (nothing reordered or
  garbled; and nothing lost of what a completed send_all promised);
- nothing goes to the loop's exception handler;
- a stream pair opened before the fault still echoes after it (the loop
  keeps serving other streams);
- once the loop is closed, the core's counters are back to zero (no C
  handle, queued write or buffered byte left) and, at the end of each
  scenario's process, LeakSanitizer finds nothing the core allocated.
Each scenario's cases run in one child process; a case that kills it is
reported as a crash and the rest go on in a new one.

Prints every failing case, which sites no scenario reached, and
``sites: N, failed on purpose: N, survived: N`` (sites, not cases: a site
counts as failed on purpose if some case made it fail, and as survived if
every such case passed).  Exit status 1 if any case failed.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Awaitable, Callable

import pystream
from pystream._core import _fault as fault

CASE_TIMEOUT = 10.0
# A child process gets this long per case before it counts as hung in C
# (where the in-process timeout cannot reach).
CHILD_TIMEOUT_PER_CASE = 30.0

ALLOWED = (
    OSError,
    MemoryError,
    pystream.BrokenResourceError,
    pystream.ClosedResourceError,
)

Scenario = Callable[[], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


# Scenarios run on pystream's own event loop (pystream.new_event_loop():
# every fd asyncio watches is a poll handle of the core), bystander and all.
OWN_LOOP: set[str] = set()


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def own_loop(fn: Scenario) -> Scenario:
    OWN_LOOP.add(fn.__name__)
    return fn


class DataLost(AssertionError):
    """The peer's bytes are not what the contract promises."""


def check_prefix(got: bytes, sent: bytes, complete: bool) -> None:
    if not sent.startswith(got):
        raise DataLost(f"received {len(got)} bytes that are not a prefix of those sent")
    if complete and got != sent:
        raise DataLost(f"received {len(got)} of {len(sent)} bytes that send_all accepted")


async def read_to_eof(stream: Any, into: bytearray) -> None:
    """Reads until end of stream into into: what arrived stays there when
    the read fails."""
    while True:
        chunk = await stream.receive_some()
        if not chunk:
            return
        into += chunk


async def read_or_close(receiver: Any, into: bytearray) -> None:
    """read_to_eof, closing the receiver if it fails, as an application
    would: that breaks the sender's send_all instead of leaving it to wait
    for a reader that is gone."""
    try:
        await read_to_eof(receiver, into)
    except BaseException:
        await pystream.aclose_forcefully(receiver)
        raise


PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: more than a socket takes at once


async def transfer(sender: Any, receiver: Any, payload: bytes, eof: str) -> None:
    """send_all payload then end with eof ("send_eof" or "aclose"), while the
    receiver reads to end of stream; check what arrived."""
    got = bytearray()
    reader = asyncio.ensure_future(read_or_close(receiver, got))
    sent = False
    try:
        await sender.send_all(payload)
        if eof == "send_eof":
            await sender.send_eof()
        else:
            await sender.aclose()
        sent = True
    finally:
        if not sent:
            await pystream.aclose_forcefully(sender)
        try:
            await reader
        finally:
            check_prefix(bytes(got), payload, complete=False)
    check_prefix(bytes(got), payload, complete=sent)


@scenario
async def connect_tcp() -> None:
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0] as listener:
        port = listener.local_address[1]
        # From a bound socket (ps_tcp_connect adopts it).
        client = await pystream.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.1")
        async with client:
            server = await listener.accept()
            async with server:
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                assert client.remote_address[1] == port
                await client.wait_send_all_might_not_block()
                await transfer(client, server, b"hello" * 1000, "send_eof")
        # A connected socket wrapped (ps_stream_open adopts it).
        sock = socket.create_connection(("127.0.0.1", port))
        async with await pystream.wrap_socket(sock) as wrapped:
            async with await listener.accept() as server:
                await transfer(wrapped, server, b"wrapped", "send_eof")


@scenario
async def many_streams() -> None:
    # Enough handles at once that the event queue must grow before a pass.
    pairs = []
    try:
        for _ in range(24):
            pairs.append(await pystream.open_stream_pair())
        for a, _b in pairs:
            await a.send_all(b"many")
        for _a, b in pairs:
            got = bytearray()
            while len(got) < 4:
                chunk = await b.receive_some()
                if not chunk:
                    break
                got += chunk
            check_prefix(bytes(got), b"many", complete=True)
    finally:
        for pair in pairs:
            for s in pair:
                await s.aclose()


@scenario
async def second_loop() -> None:
    # A loop of its own in another thread: its bridge makes a new C loop.
    async def inner() -> None:
        a, b = await pystream.open_stream_pair()
        async with a, b:
            await transfer(a, b, b"other loop", "send_eof")

    await asyncio.get_running_loop().run_in_executor(None, asyncio.run, inner())


@scenario
async def listen_accept_unix() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s")
        async with await pystream.open_unix_listener(path) as listener:
            clients = []
            try:
                for _ in range(3):
                    clients.append(await pystream.open_unix_stream(path))
                for client in clients:
                    async with await listener.accept() as server:
                        await client.send_all(b"ping")
                        got = bytearray()
                        while len(got) < 4:
                            chunk = await server.receive_some()
                            if not chunk:
                                break
                            got += chunk
                        check_prefix(bytes(got), b"ping", complete=True)
            finally:
                for client in clients:
                    await client.aclose()


@scenario
async def send_all_queued() -> None:
    a, b = await pystream.open_stream_pair()
    async with a, b:
        await transfer(a, b, PAYLOAD * 4, "send_eof")


@scenario
async def receive() -> None:
    a, b = await pystream.open_stream_pair()
    async with a, b:
        # The receiver waits for more than the high-water mark.
        await transfer(b, a, PAYLOAD, "aclose")


@scenario
async def aclose_with_queued() -> None:
    a, b = await pystream.open_stream_pair()
    async with a, b:
        await transfer(a, b, PAYLOAD, "aclose")


@scenario
async def aclose_forcefully() -> None:
    a, b = await pystream.open_stream_pair()
    async with b:
        await a.send_all(b"x" * 100000)
        await pystream.aclose_forcefully(a)
        got = bytearray()
        try:
            await read_to_eof(b, got)
        finally:
            check_prefix(bytes(got), b"x" * 100000, complete=False)


@scenario
async def send_file() -> None:
    with tempfile.TemporaryFile() as f:
        f.write(PAYLOAD)
        f.flush()
        a, b = await pystream.open_stream_pair()
        async with a, b:
            got = bytearray()
            reader = asyncio.ensure_future(read_or_close(b, got))
            done = False
            try:
                sent = await a.send_file(f)
                assert sent == len(PAYLOAD), sent
                await a.send_eof()
                done = True
            finally:
                if not done:
                    await pystream.aclose_forcefully(a)
                await reader
                check_prefix(bytes(got), PAYLOAD, complete=done)


@scenario
async def pipes() -> None:
    r, w = await pystream.open_pipe()
    async with r, w:
        await transfer(w, r, PAYLOAD, "send_eof")


@scenario
async def spawn_with_pipes() -> None:
    p = await pystream.open_process(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    async with p:
        await transfer(p.stdin, p.stdout, b"line\n" * 20000, "send_eof")
        assert await p.wait() == 0


@scenario
async def signal_and_sigchld() -> None:
    p = await pystream.open_process(["sleep", "30"])
    async with p:
        try:
            p.send_signal(signal.SIGTERM)
        except OSError:
            p.kill()  # aclose waits for the child: end it first
            raise
        assert await p.wait() == -signal.SIGTERM
    # With a Python SIGCHLD handler in place: the exit check finds exits.
    previous = signal.signal(signal.SIGCHLD, lambda *_: None)
    try:
        p = await pystream.open_process(["true"])
        async with p:
            assert await p.wait() == 0
    finally:
        signal.signal(signal.SIGCHLD, previous)


@scenario
async def stdin_stdout_on_pipes() -> None:
    saved = os.dup(0), os.dup(1)
    rin, win = os.pipe()
    rout, wout = os.pipe()
    try:
        os.dup2(rin, 0)
        os.dup2(wout, 1)
        for fd in (rin, wout):
            os.close(fd)
        stdin = await pystream.open_stdin()
        stdout = await pystream.open_stdout()
        async with stdin, stdout:
            os.write(win, b"in" * 1000)
            os.close(win)
            win = -1
            got = bytearray()
            await read_to_eof(stdin, got)
            check_prefix(bytes(got), b"in" * 1000, complete=True)
            await stdout.send_all(b"out" * 1000)
        os.dup2(saved[1], 1)
        out = bytearray()
        while True:
            chunk = os.read(rout, 65536)
            if not chunk:
                break
            out += chunk
        check_prefix(bytes(out), b"out" * 1000, complete=True)
    finally:
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        for fd in (*saved, rout, win):
            if fd >= 0:
                os.close(fd)


@scenario
async def loop_teardown() -> None:
    # Left open on purpose: the loop's close tears down streams with
    # queued writes, a listener and a running child.
    a, b = await pystream.open_stream_pair()
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    p = await pystream.open_process(["sleep", "30"])
    task = asyncio.ensure_future(a.send_all(PAYLOAD * 4))
    await asyncio.sleep(0.01)
    task.cancel()
    LEFT_OPEN.extend([a, b, listeners[0], p, task])


LEFT_OPEN: list[Any] = []


async def sock_read_or_close(sock: socket.socket, into: bytearray) -> None:
    """read_or_close for a plain socket, through the loop's sock_recv
    (which watches it with add_reader)."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                return
            into += chunk
    except BaseException:
        sock.close()
        raise


async def sock_transfer(sender: socket.socket, receiver: socket.socket, payload: bytes) -> None:
    """transfer over plain sockets with the loop's sock_* calls (which
    register, modify and unregister their fds as they wait)."""
    loop = asyncio.get_running_loop()
    got = bytearray()
    reader = asyncio.ensure_future(sock_read_or_close(receiver, got))
    sent = False
    try:
        await loop.sock_sendall(sender, payload)
        sender.shutdown(socket.SHUT_WR)
        sent = True
    finally:
        if not sent:
            sender.close()
        try:
            await reader
        finally:
            check_prefix(bytes(got), payload, complete=False)
    check_prefix(bytes(got), payload, complete=sent)


@scenario
@own_loop
async def own_loop_sockets() -> None:
    # asyncio's socket calls: each wait registers the fd with the selector
    # (a poll handle), widens or narrows what it watches, unregisters it.
    loop = asyncio.get_running_loop()
    with socket.socket() as lsock, socket.socket() as csock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        csock.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(lsock))
        try:
            await loop.sock_connect(csock, lsock.getsockname())
            conn, _ = await accept
        finally:
            accept.cancel()
        with conn:
            conn.setblocking(False)
            await sock_transfer(csock, conn, PAYLOAD)
    # Both directions of one fd watched at once: a reader waiting while a
    # send waits for room.
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)
        waiting = asyncio.ensure_future(loop.sock_recv(a, 10))
        try:
            await sock_transfer(a, b, PAYLOAD)
            await loop.sock_sendall(b, b"back")
            assert await waiting == b"back"
        finally:
            waiting.cancel()
    # An fd a pystream stream owns, watched by asyncio too: the poll
    # watches a duplicate.
    a, b = await pystream.open_stream_pair()
    async with a, b:
        writable = loop.create_future()
        loop.add_writer(a.fileno(), lambda: writable.done() or writable.set_result(None))
        try:
            await writable
        finally:
            loop.remove_writer(a.fileno())
        await transfer(a, b, b"owned", "send_eof")


@scenario
@own_loop
async def own_loop_streams() -> None:
    # asyncio's own streams (selector transports) and a pystream stream
    # pair in the same libuv loop.
    got = bytearray()
    failed: list[BaseException] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                got.extend(chunk)
        except ALLOWED as exc:
            failed.append(exc)  # raised below: the serving task has nobody to tell
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(PAYLOAD)
            await writer.drain()
            writer.write_eof()
            assert await reader.read() == b""
        finally:
            writer.close()
        await writer.wait_closed()
        if failed:
            raise failed[0]
        check_prefix(bytes(got), PAYLOAD, complete=True)
    a, b = await pystream.open_stream_pair()
    async with a, b:
        await transfer(a, b, PAYLOAD, "send_eof")


@scenario
async def own_loop_lifetime() -> None:
    # pystream.new_event_loop() made, used and closed (in a thread: this
    # case's own loop runs here): its C loop, the poll of its self-pipe,
    # its first passes.
    def run() -> None:
        loop = pystream.new_event_loop()
        try:

            async def inner() -> None:
                await asyncio.sleep(0.001)
                a, b = await pystream.open_stream_pair()
                async with a, b:
                    await transfer(a, b, b"own loop", "send_eof")

            loop.run_until_complete(inner())
        finally:
            loop.close()

    await asyncio.get_running_loop().run_in_executor(None, run)


# -- running one case ------------------------------------------------------


def counters_clean() -> str:
    counts = pystream._counters()
    left = {k: v for k, v in counts.items() if v}
    return f"core counters not back to zero: {left}" if left else ""


async def bystander_echo(pair: tuple[Any, Any]) -> None:
    a, b = pair
    await a.send_all(b"still serving")
    got = bytearray()
    while len(got) < 13:
        chunk = await b.receive_some()
        assert chunk, "bystander stream ended"
        got += chunk
    assert got == b"still serving", got


def run_case(name: str, site: str, nth: int) -> dict[str, Any]:
    """Runs scenario name with site failing on its nth use (no fault when
    site is empty); returns what happened."""
    result: dict[str, Any] = {"scenario": name, "site": site, "nth": nth, "problems": []}
    problems: list[str] = result["problems"]
    loop = pystream.new_event_loop() if name in OWN_LOOP else asyncio.new_event_loop()
    handler_errors: list[str] = []

    def on_loop_error(_loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
            # A pass that could not start for want of memory, retried: the
            # documented report, with nobody else to tell.
            result["outcome"] = "reported to the loop: out of memory"
            return
        handler_errors.append(f"{context.get('message')}: {exc!r}")

    loop.set_exception_handler(on_loop_error)

    async def main() -> None:
        bystander = await pystream.open_stream_pair()
        try:
            fault.reset()
            if site:
                fault.arm(site, nth)
            started = time.monotonic()
            try:
                await asyncio.wait_for(SCENARIOS[name](), CASE_TIMEOUT)
                result.setdefault("outcome", "completed")
            except asyncio.TimeoutError:
                problems.append(f"hang: not done after {CASE_TIMEOUT} s")
            except DataLost as exc:
                problems.append(f"data: {exc}")
            except ALLOWED as exc:
                result["outcome"] = f"raised {type(exc).__name__}: {exc}"
            except BaseException as exc:  # noqa: BLE001 - reported
                problems.append(
                    "undocumented error: "
                    + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                )
            if time.monotonic() - started >= CASE_TIMEOUT:
                # wait_for's cancellation can end in another error (raised
                # by a finally block): a hang all the same.
                problems.append(f"hang: took {CASE_TIMEOUT} s or more ({result.get('outcome')})")
            result["hits"] = {s: fault.hits(s) for s in fault.sites() if fault.hits(s)}
            result["fired"] = fault.fired(site) if site else 0
            fault.reset()
            try:
                await asyncio.wait_for(bystander_echo(bystander), CASE_TIMEOUT)
            except BaseException as exc:  # noqa: BLE001 - reported
                problems.append(f"the loop stopped serving other streams: {exc!r}")
        finally:
            for s in bystander:
                await s.aclose()

    try:
        loop.run_until_complete(main())
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=CASE_TIMEOUT))
        # Tears pystream's bridge down, as asyncio.run does.
        loop.run_until_complete(loop.shutdown_asyncgens())
    except BaseException as exc:  # noqa: BLE001 - reported
        problems.append(f"harness: {exc!r}")
    finally:
        for obj in LEFT_OPEN:
            if isinstance(obj, asyncio.Task) and obj.done() and not obj.cancelled():
                obj.exception()  # retrieved: the teardown is what is tested
        loop.close()
    LEFT_OPEN.clear()
    gc.collect()
    problems.extend(f"loop exception handler: {m}" for m in handler_errors)
    leaked = counters_clean()
    if leaked:
        problems.append(leaked)
    return result


def child(name: str, cases: list[tuple[str, int]]) -> None:
    """Runs the cases of one scenario, one JSON line per case."""
    import warnings

    warnings.simplefilter("ignore", ResourceWarning)  # loop_teardown's, on purpose
    for site, nth in cases:
        start = time.monotonic()
        result = run_case(name, site, nth)
        result["seconds"] = round(time.monotonic() - start, 2)
        print(json.dumps(result), flush=True)


# -- the parent ------------------------------------------------------------

LEAK_BLOCK = re.compile(r"^(Direct|Indirect) leak of .*?(?=^\S|\Z)", re.M | re.S)


def core_leaks(stderr: str) -> list[str]:
    """LeakSanitizer's reports whose allocation stack runs through the core."""
    return [
        block.group(0).strip()
        for block in LEAK_BLOCK.finditer(stderr)
        if re.search(r" in ps_", block.group(0))
    ]


def run_child(name: str, cases: list[tuple[str, int]]) -> tuple[list[dict[str, Any]], str]:
    """Runs cases in child processes until all are done; a case that
    kills its process (or hangs it) is reported and the rest go on."""
    results: list[dict[str, Any]] = []
    notes = ""
    todo = list(cases)
    while todo:
        with tempfile.TemporaryFile("w+") as err:
            env = dict(os.environ)
            # LeakSanitizer in the children only: their reports are read
            # for the core's leaks (core_leaks).
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=1"
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", name, json.dumps(todo)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            try:
                out, _ = proc.communicate(timeout=CHILD_TIMEOUT_PER_CASE * len(todo) + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            err.seek(0)
            stderr = err.read()
        done = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        results += done
        todo = todo[len(done) :]
        leaks = core_leaks(stderr)
        if leaks:
            notes += "\n".join(leaks) + "\n"
        if todo:
            site, nth = todo.pop(0)
            results.append(
                {
                    "scenario": name,
                    "site": site,
                    "nth": nth,
                    "fired": 1,
                    "problems": [
                        f"crash or hang in C (exit status {proc.returncode}):\n" + stderr[-3000:]
                    ],
                }
            )
        elif (
            proc.returncode != 0
            and "ERROR: LeakSanitizer" not in stderr
            or "ERROR: AddressSanitizer" in stderr
            or "runtime error" in stderr
        ):
            notes += f"{name}: child exit status {proc.returncode}\n{stderr[-3000:]}\n"
    return results, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--uses", type=int, default=0, help="fail only the first N uses of each site (0: all)"
    )
    parser.add_argument("--scenario", action="append", help="only these scenarios")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not fault.AVAILABLE:
        print("fault_sweep: this pystream core was not built with PYSTREAM_FAULTS=1")
        return 2
    if args.child:
        child(args.child[0], [tuple(c) for c in json.loads(args.child[1])])
        return 0
    start = time.monotonic()
    names = args.scenario or list(SCENARIOS)
    all_sites = list(fault.sites())
    reached: dict[str, int] = {}
    failed_sites: set[str] = set()
    bad_sites: set[str] = set()
    cases = 0
    bad = 0
    slowest: list[tuple[float, str]] = []
    notes_all = ""
    for name in names:
        baseline, notes = run_child(name, [("", 0)])
        notes_all += notes
        base = baseline[0]
        if base["problems"]:
            print(f"FAIL {name} without faults: {base['problems']}")
            bad += 1
            continue
        todo = []
        for site, uses in base["hits"].items():
            reached[site] = reached.get(site, 0) + uses
            count = min(uses, args.uses) if args.uses > 0 else uses
            todo += [(site, nth) for nth in range(1, count + 1)]
        results, notes = run_child(name, todo)
        notes_all += notes
        for r in results:
            cases += 1
            slowest.append((r.get("seconds", 0.0), f"{name} {r['site']} {r['nth']}"))
            if r.get("fired"):
                failed_sites.add(r["site"])
            if r["problems"]:
                bad += 1
                bad_sites.add(r["site"])
                print(f"FAIL {name}: {r['site']} failing on use {r['nth']}:")
                for p in r["problems"]:
                    print("    " + p.replace("\n", "\n    "))
        outcomes: dict[str, int] = {}
        for r in results:
            if r.get("fired"):
                key = r.get("outcome", "problem").split(":")[0]
                outcomes[key] = outcomes.get(key, 0) + 1
        print(
            f"{name}: {len(results)} cases, {len(base['hits'])} sites reached; "
            + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())),
            flush=True,
        )
    if notes_all:
        bad += 1
        print("FAIL: the core leaked, or a child failed outside its cases:\n" + notes_all)
    unreached = [s for s in all_sites if s not in reached]
    fired_not = [s for s in reached if s not in failed_sites]
    print(f"cases: {cases}, failing: {bad}, in {time.monotonic() - start:.0f} s")
    slowest.sort(reverse=True)
    print("slowest cases: " + ", ".join(f"{what} ({t:.1f} s)" for t, what in slowest[:5]))
    if unreached:
        print("sites no scenario reached: " + ", ".join(unreached))
    if fired_not:
        print("sites reached but never made to fail: " + ", ".join(fired_not))
    survived = len(failed_sites - bad_sites)
    print(f"sites: {len(all_sites)}, failed on purpose: {len(failed_sites)}, survived: {survived}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
