"""Opening connections and listeners, adopting sockets."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import tempfile

import pytest

import pystream
from pystream._streams import _open, _tcp_connect

from helpers import receive_exactly


async def test_tcp_listeners_on_all_families_share_one_port():
    listeners = await pystream.open_tcp_listeners(0)
    try:
        families = {len(l.local_address) for l in listeners}
        ports = {l.local_address[1] for l in listeners}
        assert len(ports) == 1, "port 0 must give every listener the same port"
        assert 2 in families, "host=None must listen on IPv4"
        if socket.has_ipv6:
            assert 4 in families, "host=None must listen on IPv6 too"
        port = ports.pop()
        for host in ("127.0.0.1", "::1") if socket.has_ipv6 else ("127.0.0.1",):
            client = await pystream.open_tcp_stream(host, port)
            accepted = None
            for listener in listeners:
                if len(listener.local_address) == (4 if ":" in host else 2):
                    accepted = await listener.accept()
            assert accepted is not None
            async with client, accepted:
                await client.send_all(host.encode())
                assert await receive_exactly(accepted, len(host)) == host.encode()
                assert accepted.remote_address[:2] == client.local_address[:2]
    finally:
        for listener in listeners:
            await listener.aclose()


async def test_connect_refused():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    await listeners[0].aclose()
    with pytest.raises(ConnectionRefusedError):
        await pystream.open_tcp_stream("127.0.0.1", port)


async def test_bad_host_and_port():
    for port in (-1, 65536, 10**9):
        with pytest.raises((OverflowError, ValueError)):
            await pystream.open_tcp_stream("127.0.0.1", port)
        with pytest.raises((OverflowError, ValueError)):
            await pystream.open_tcp_listeners(port)
    for port in ("80", 1.5, None):
        with pytest.raises(TypeError):
            await pystream.open_tcp_stream("127.0.0.1", port)
    with pytest.raises(TypeError):
        await pystream.open_tcp_stream(None, 80)
    with pytest.raises(ValueError):
        await pystream.open_tcp_stream("127.0.0.1", 80, happy_eyeballs_delay=-1)
    with pytest.raises(ValueError):
        await pystream.open_tcp_listeners(0, backlog=-1)


async def test_unknown_host_raises_gaierror(monkeypatch):
    # The loop's resolver would ask a DNS server; answer as it would for a
    # name that does not exist, without network traffic.
    loop = asyncio.get_running_loop()

    async def no_such_name(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(loop, "getaddrinfo", no_such_name)
    with pytest.raises(socket.gaierror):
        await pystream.open_tcp_stream("no-such-host.invalid", 80)


async def test_local_address_binds_the_client():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    async with listeners[0]:
        client = await pystream.open_tcp_stream("localhost", port, local_address="127.0.0.1")
        server = await listeners[0].accept()
        async with client, server:
            assert client.local_address[0] == "127.0.0.1"


def test_interleave_alternates_families():
    v6 = [(socket.AF_INET6, 1, 6, "", (f"::{i}", 80, 0, 0)) for i in range(3)]
    v4 = [(socket.AF_INET, 1, 6, "", (f"10.0.0.{i}", 80)) for i in range(2)]
    ordered = _tcp_connect._interleave(v6 + v4)
    assert [info[0] for info in ordered] == [
        socket.AF_INET6,
        socket.AF_INET,
        socket.AF_INET6,
        socket.AF_INET,
        socket.AF_INET6,
    ]


def silent_listener():
    """A loopback address that never answers a connection attempt: a
    listener whose accept queue is full (Linux queues backlog + 1
    connections), so that Linux drops further SYNs and the client retries
    for about two minutes.  Returns (port, sockets to close)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # (PyPy makes 0 into 1)
    port = listener.getsockname()[1]
    fillers = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    return port, fillers + [listener]


def resolve_to(monkeypatch, ports):
    """Make the loop resolve any name to 127.0.0.1 at each of ports, in
    that order (as if it had that many addresses)."""
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host, port, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p)) for p in ports]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


def record_attempts(monkeypatch):
    """Each connection attempt's start and end, as (event, port), and the
    loop's time of each start by port."""
    loop = asyncio.get_running_loop()
    events, started = [], {}
    real_connect = _tcp_connect._connect_one

    async def connect(info, local_address):
        port = info[4][1]
        started[port] = loop.time()
        events.append(("start", port))
        try:
            stream = await real_connect(info, local_address)
        except asyncio.CancelledError:
            events.append(("cancelled", port))
            raise
        except OSError:
            events.append(("failed", port))
            raise
        events.append(("connected", port))
        return stream

    monkeypatch.setattr(_tcp_connect, "_connect_one", connect)
    return events, started


async def test_happy_eyeballs_starts_the_next_attempt_after_the_delay(monkeypatch):
    # The first address never answers; the second connects at once.  The
    # second attempt starts once the delay has passed (not before: measured
    # on the loop's clock, which only a late timer can stretch), wins, and
    # the first is cancelled.
    silent_port, sockets = silent_listener()
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    resolve_to(monkeypatch, [silent_port, port])
    events, started = record_attempts(monkeypatch)
    try:
        # The silent attempt would hang for minutes: only the delay can
        # start the second one within the 10 s.
        stream = await asyncio.wait_for(
            pystream.open_tcp_stream("two.test", 80, happy_eyeballs_delay=0.5), 10
        )
        server = await listeners[0].accept()
        async with stream, server:
            assert stream.remote_address == ("127.0.0.1", port)
    finally:
        await listeners[0].aclose()
        for sock in sockets:
            sock.close()
    assert events == [
        ("start", silent_port),
        ("start", port),
        ("connected", port),
        ("cancelled", silent_port),
    ]
    waited = started[port] - started[silent_port]
    assert waited >= 0.45, f"the second attempt started {waited:.3f} s after the first"


async def test_happy_eyeballs_no_second_attempt_when_the_first_answers(monkeypatch):
    # The first address answers well within the delay: the second address
    # is never tried.
    listeners = [(await pystream.open_tcp_listeners(0, host="127.0.0.1"))[0] for _ in range(2)]
    ports = [listener.local_address[1] for listener in listeners]
    resolve_to(monkeypatch, ports)
    events, _ = record_attempts(monkeypatch)
    try:
        stream = await pystream.open_tcp_stream("two.test", 80, happy_eyeballs_delay=60)
        server = await listeners[0].accept()
        async with stream, server:
            assert stream.remote_address == ("127.0.0.1", ports[0])
    finally:
        for listener in listeners:
            await listener.aclose()
    assert events == [("start", ports[0]), ("connected", ports[0])]


async def test_happy_eyeballs_moves_on_when_an_attempt_fails(monkeypatch):
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    closed = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    dead_port = closed[0].local_address[1]
    await closed[0].aclose()
    resolve_to(monkeypatch, [dead_port, port])
    events, _ = record_attempts(monkeypatch)
    # A delay of an hour: only the failure can start the second attempt,
    # and does so at once.
    stream = await asyncio.wait_for(
        pystream.open_tcp_stream("two.test", 80, happy_eyeballs_delay=3600), 10
    )
    server = await listeners[0].accept()
    async with stream, server, listeners[0]:
        assert stream.remote_address[1] == port
    assert events == [
        ("start", dead_port),
        ("failed", dead_port),
        ("start", port),
        ("connected", port),
    ]
    resolve_to(monkeypatch, [dead_port, dead_port])
    with pytest.raises(ConnectionRefusedError) as info:
        await pystream.open_tcp_stream("two.test", 80, happy_eyeballs_delay=0.01)
    assert "all connection attempts failed" in str(info.value)


async def test_cancelled_connect_leaves_nothing():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    async with listeners[0]:
        task = asyncio.ensure_future(pystream.open_tcp_stream("127.0.0.1", port))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_listener_accept_busy_and_close_wakes_it():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    accepter = asyncio.ensure_future(listener.accept())
    await asyncio.sleep(0)
    with pytest.raises(pystream.BusyResourceError):
        await listener.accept()
    await listener.aclose()
    await listener.aclose()
    with pytest.raises(pystream.ClosedResourceError):
        await accepter
    with pytest.raises(pystream.ClosedResourceError):
        await listener.accept()
    assert listener.fileno() == -1


async def test_listener_queues_connections_made_before_accept():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    clients = [await pystream.open_tcp_stream("127.0.0.1", port) for _ in range(50)]
    for i, client in enumerate(clients):
        await client.send_all(b"%03d" % i)
    servers = [await listeners[0].accept() for _ in clients]
    received = sorted([await receive_exactly(s, 3) for s in servers])
    assert received == [b"%03d" % i for i in range(50)]
    for s in clients + servers:
        await s.aclose()
    await listeners[0].aclose()


async def test_closing_listener_closes_unaccepted_connections():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    client = await pystream.open_tcp_stream("127.0.0.1", port)
    await asyncio.sleep(0.01)  # let the C core accept it into its queue
    await listeners[0].aclose()
    async with client:
        try:
            assert await client.receive_some() == b""
        except pystream.BrokenResourceError:
            pass  # a reset is as good: the connection is gone


async def test_unix_listener_and_stream():
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "server.sock")
    listener = await pystream.open_unix_listener(path)
    assert listener.local_address == path
    client = await pystream.open_unix_stream(path)
    server = await listener.accept()
    async with client, server:
        await client.send_all(b"unix")
        assert await receive_exactly(server, 4) == b"unix"
    await listener.aclose()
    assert not os.path.exists(path), "closing the listener removes its socket file"
    with pytest.raises(FileNotFoundError):
        await pystream.open_unix_stream(path)
    with pytest.raises(ValueError):
        await pystream.open_unix_stream("bad\0path")
    with pytest.raises(OSError):
        await pystream.open_unix_stream(os.path.join(directory, "x" * 200))
    os.rmdir(directory)


async def test_unix_abstract_namespace():
    name = b"\0pystream-test-%d" % os.getpid()
    listener = await pystream.open_unix_listener(name)
    client = await pystream.open_unix_stream(name)
    server = await listener.accept()
    async with client, server, listener:
        await server.send_all(b"abstract")
        assert await receive_exactly(client, 8) == b"abstract"
        assert server.local_address == name


async def test_stale_unix_socket_file_is_replaced():
    path = os.path.join(tempfile.mkdtemp(), "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    async with await pystream.open_unix_listener(path) as listener:
        async with await pystream.open_unix_stream(path) as client:
            async with await listener.accept():
                pass
        assert client.fileno() == -1


async def test_wrap_socket():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    stream = await pystream.wrap_socket(sock)
    assert sock.fileno() == -1, "the stream owns the socket now"
    server = await listeners[0].accept()
    async with stream, server, listeners[0]:
        assert stream.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        await stream.send_all(b"wrapped")
        assert await receive_exactly(server, 7) == b"wrapped"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(ValueError):
            await pystream.wrap_socket(udp)
    with socket.socket() as unconnected:
        with pytest.raises(ValueError):
            await pystream.wrap_socket(unconnected)
    with pytest.raises(TypeError):
        await pystream.wrap_socket(3)


async def test_unclosed_listener_warns_and_is_freed():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    handle = listeners[0]._h
    with pytest.warns(ResourceWarning, match="unclosed"):
        del listeners
        for _ in range(3):  # PyPy may need more than one collection
            gc.collect()
            await asyncio.sleep(0)
    for _ in range(100):
        if handle.ptr is None:
            break
        await asyncio.sleep(0.001)
    assert handle.ptr is None


def record_streams(monkeypatch):
    """The streams open_stream_pair and wrap_socket make, as they make
    them."""
    made = []
    real = _open.stream_from_socket

    def recording(sock):
        stream = real(sock)
        made.append(stream)
        return stream

    monkeypatch.setattr(_open, "stream_from_socket", recording)
    return made


async def cancel_at_its_checkpoint(coro):
    """Run coro up to its first yield, then cancel it there."""
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_open_stream_pair_cancelled_closes_both(monkeypatch):
    made = record_streams(monkeypatch)
    await cancel_at_its_checkpoint(pystream.open_stream_pair())
    assert len(made) == 2
    assert [stream.fileno() for stream in made] == [-1, -1], "the new streams were left open"


async def test_wrap_socket_cancelled_closes_the_stream(monkeypatch):
    made = record_streams(monkeypatch)
    a, b = socket.socketpair()
    with b:
        await cancel_at_its_checkpoint(pystream.wrap_socket(a))
        assert a.fileno() == -1, "the socket is detached all the same"
        assert len(made) == 1
        assert made[0].fileno() == -1, "the new stream was left open"


async def test_open_unix_listener_is_a_checkpoint():
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "sock")
    opened = []

    async def open_with_a_cancellation_pending():
        asyncio.current_task().cancel()
        opened.append(await pystream.open_unix_listener(path))

    task = asyncio.ensure_future(open_with_a_cancellation_pending())
    await asyncio.wait([task])
    for listener in opened:
        await listener.aclose()
    assert not opened, "open_unix_listener is not a checkpoint"
    assert task.cancelled()
    assert not os.path.exists(path), "the cancelled call left a socket file"
    async with await pystream.open_unix_listener(path):
        assert os.path.exists(path)
    os.rmdir(directory)


async def race_to(monkeypatch, connect):
    """Run open_tcp_stream over two addresses (no delay between attempts),
    each attempt being connect(index, the task calling open_tcp_stream).
    Returns (that task, what the call returned if it did)."""
    resolve_to(monkeypatch, [0, 1])

    async def attempt(info, local_address):
        return await connect(info[4][1], task)

    monkeypatch.setattr(_tcp_connect, "_connect_one", attempt)
    returned = []

    async def call():
        returned.append(await pystream.open_tcp_stream("two.test", 80, happy_eyeballs_delay=0))
        await asyncio.sleep(0)  # where a cancellation left pending lands

    task = asyncio.ensure_future(call())
    await asyncio.wait([task])
    return task, returned


async def test_open_tcp_stream_cancelled_closing_the_loser_closes_the_winner(monkeypatch):
    # Both attempts connect in the same round; the call is cancelled while
    # it closes the loser.  Whatever it did not return is closed.
    pairs = [await pystream.open_stream_pair() for _ in range(2)]
    ends = [a for a, _ in pairs]
    both_started = asyncio.Event()
    to_cancel = []

    async def connect(index, caller):
        if index == 1:
            to_cancel.append(caller)
            both_started.set()
        await both_started.wait()
        return ends[index]

    real_close_now = pystream.SocketStream._close_now

    def close_now_and_cancel_the_caller(stream):
        if to_cancel:
            to_cancel.pop().cancel()
        real_close_now(stream)

    monkeypatch.setattr(pystream.SocketStream, "_close_now", close_now_and_cancel_the_caller)
    task, returned = await race_to(monkeypatch, connect)
    open_ends = [s for s in ends if s.fileno() != -1 and s not in returned]
    for a, b in pairs:
        await a.aclose()
        await b.aclose()
    assert not to_cancel, "the loser was never closed"
    assert task.cancelled()
    assert not open_ends, "a stream the call did not return was left open"


async def test_open_tcp_stream_cancelled_while_an_attempt_ends_closes_the_winner(monkeypatch):
    # The first attempt wins while the second still runs; the call is
    # cancelled while it waits for the cancelled second attempt to end.
    # The cancellation is raised, and the winner closed.
    a, b = await pystream.open_stream_pair()
    first_may_win = asyncio.Event()

    async def connect(index, caller):
        if index == 0:
            await first_may_win.wait()
            return a
        first_may_win.set()
        try:
            await asyncio.get_running_loop().create_future()  # never done
        except asyncio.CancelledError:
            caller.cancel()
            await asyncio.sleep(0)  # an attempt slow to end
            raise

    task, returned = await race_to(monkeypatch, connect)
    async with a, b:
        assert task.cancelled(), "the cancellation was lost"
        assert not returned
        assert a.fileno() == -1, "the winner was left open"


async def test_open_unix_listener_names_the_path_it_could_not_bind(tmp_path):
    path = str(tmp_path / "no-such-dir" / "sock")
    with pytest.raises(FileNotFoundError) as info:
        await pystream.open_unix_listener(path)
    assert info.value.filename == path and path in str(info.value)
