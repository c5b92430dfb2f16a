"""TLSStream: TLS over any stream keeps the contract."""

from __future__ import annotations

import asyncio
import ssl

import pytest

import pystream
from pystream.testing import (
    check_half_closeable_stream,
    lockstep_stream_pair,
    memory_stream_pair,
)

from helpers import make_pair, receive_exactly
from tls_helpers import client_context, server_context


def tls_over(transport_maker, *, alpn=None):
    async def maker():
        a, b = await transport_maker()
        client_ctx, server_ctx = client_context(), server_context()
        # TLS 1.3 servers send session tickets after the handshake, while
        # the client may already be sending: over a transport with no buffer
        # at all (lockstep), both would wait for the other to read.
        server_ctx.num_tickets = 0
        if alpn:
            client_ctx.set_alpn_protocols(alpn)
            server_ctx.set_alpn_protocols(alpn)
        client = pystream.TLSStream(a, client_ctx, server_hostname="localhost")
        server = pystream.TLSStream(b, server_ctx, server_side=True)
        return client, server

    return maker


def handshaken(maker):
    """A TLS maker whose pairs finished their handshake: over a lockstep
    transport, a lazy handshake started by the receiving side would wait for
    a sender that waits for it."""

    async def made():
        client, server = await maker()
        await asyncio.gather(client.do_handshake(), server.do_handshake())
        return client, server

    return made


async def memory_maker():
    return memory_stream_pair()


async def lockstep_maker():
    return lockstep_stream_pair()


async def socket_pair_maker():
    return await make_pair("pair")


async def test_tls_over_memory_streams():
    await check_half_closeable_stream(tls_over(memory_maker), handshaken(tls_over(lockstep_maker)))


async def test_tls_over_socket_pair():
    await check_half_closeable_stream(
        tls_over(socket_pair_maker), handshaken(tls_over(lockstep_maker))
    )


async def test_tls_over_tls():
    await check_half_closeable_stream(tls_over(tls_over(memory_maker)), None)


async def test_tls_handshake_alpn_and_certificate():
    client, server = await tls_over(memory_maker, alpn=["h2", "http/1.1"])()
    async with client, server:
        await asyncio.gather(client.do_handshake(), server.do_handshake())
        await client.do_handshake()  # idempotent
        assert client.selected_alpn_protocol() == "h2"
        assert client.getpeercert()["subject"] == ((("commonName", "localhost"),),)
        assert client.version() == "TLSv1.3"


async def test_tls_1_3_half_close():
    client, server = await tls_over(memory_maker)()
    async with client, server:
        await asyncio.gather(client.do_handshake(), server.do_handshake())
        await client.send_all(b"request")
        await client.send_eof()
        await client.send_eof()  # idempotent
        with pytest.raises(pystream.ClosedResourceError):
            await client.send_all(b"more")
        assert await server.read() == b"request"  # up to the close_notify
        await server.send_all(b"response")
        await server.send_eof()
        assert await client.read() == b"response"


async def test_tls_send_eof_keeps_unread_records():
    # close_notify is written by OpenSSL's shutdown, which then reads on
    # for the peer's: a record already in our incoming buffer must survive.
    client, server = await tls_over(memory_maker)()
    async with client, server:
        await asyncio.gather(client.do_handshake(), server.do_handshake())
        await client.send_all(b"a")
        await client.send_all(b"bc")  # a second record
        assert await server.receive_some(1) == b"a"  # both records fed in
        await server.send_eof()
        await client.aclose()
        assert await server.read() == b"bc"


async def test_tls_1_2_has_no_half_close():
    a, b = memory_stream_pair()
    client_ctx = client_context()
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    client = pystream.TLSStream(a, client_ctx, server_hostname="localhost")
    server = pystream.TLSStream(b, server_context(), server_side=True)
    async with client, server:
        await asyncio.gather(client.do_handshake(), server.do_handshake())
        assert client.version() == "TLSv1.2"
        with pytest.raises(NotImplementedError):
            await client.send_eof()
        await client.send_all(b"still usable")
        assert await receive_exactly(server, 12) == b"still usable"


async def test_tls_wrong_host_name_breaks_the_handshake():
    a, b = memory_stream_pair()
    client = pystream.TLSStream(a, client_context(), server_hostname="not-localhost")
    server = pystream.TLSStream(b, server_context(), server_side=True)
    results = await asyncio.gather(
        client.do_handshake(), server.do_handshake(), return_exceptions=True
    )
    assert isinstance(results[0], pystream.BrokenResourceError)
    assert isinstance(results[0].__cause__, ssl.SSLError)
    assert isinstance(results[1], pystream.BrokenResourceError)
    # A send after it says sending broke (it said "while receiving").
    with pytest.raises(pystream.BrokenResourceError, match="while sending") as info:
        await client.send_all(b"x")
    assert isinstance(info.value.__cause__, ssl.SSLError)
    with pytest.raises(pystream.BrokenResourceError, match="while receiving"):
        await client.receive_some()
    await client.aclose()
    await server.aclose()


async def test_tls_close_without_a_reply_is_bounded():
    # The peer never reads: close_notify cannot even be sent.  aclose still
    # returns within its 5 s bound.
    client, server = await tls_over(lockstep_maker)()
    handshake = asyncio.gather(client.do_handshake(), server.do_handshake())
    await handshake
    loop = asyncio.get_running_loop()
    start = loop.time()
    await client.aclose()
    assert loop.time() - start < 7
    await server.aclose()


async def test_tls_peer_closing_before_our_session_tickets_loses_nothing():
    # The client sends and closes before the server reads its handshake's
    # last message; the server's TLS 1.3 session tickets then fail to reach
    # the closed peer.  What the client sent, and its close_notify, still
    # arrive.
    a, b = memory_stream_pair()
    client = pystream.TLSStream(a, client_context(), server_hostname="localhost")
    server = pystream.TLSStream(b, server_context(), server_side=True)
    client_closed = asyncio.Event()
    receives = 0

    async def hold_second_receive():
        nonlocal receives
        receives += 1
        if receives == 2:  # after the ClientHello
            await client_closed.wait()

    b.receive_hook = hold_second_receive
    receiving = asyncio.ensure_future(server.receive_some(1))
    await client.send_all(b"last words")
    await client.aclose()
    client_closed.set()
    received = await receiving
    while True:
        chunk = await server.receive_some()
        if not chunk:
            break
        received += chunk
    assert received == b"last words"
    with pytest.raises(pystream.BrokenResourceError):
        await server.send_all(b"too late")
    await server.aclose()


async def test_tls_close_with_unread_data_still_sends_close_notify():
    # OpenSSL's shutdown writes close_notify, then reads on and fails on
    # application data left unread in the TLS object
    # (APPLICATION_DATA_AFTER_CLOSE_NOTIFY); on PyPy that error then lingers
    # and fails the peer's next read in the same thread.
    client, server = await tls_over(memory_maker)()
    await asyncio.gather(client.do_handshake(), server.do_handshake())
    await server.send_all(b"xy")  # one record
    assert await client.receive_some(1) == b"x"  # "y" stays in the TLS object
    await client.send_all(b"data")
    await client.aclose()
    assert await receive_exactly(server, 4) == b"data"
    assert await server.receive_some() == b""  # close_notify: a clean EOF
    await server.aclose()


async def test_tls_unwrap_returns_the_transport():
    client, server = await tls_over(memory_maker)()
    await asyncio.gather(client.do_handshake(), server.do_handshake())
    await client.send_all(b"secret")
    assert await receive_exactly(server, 6) == b"secret"
    (a, a_rest), (b, b_rest) = await asyncio.gather(client.unwrap(), server.unwrap())
    assert a_rest == b_rest == b""  # nothing followed either close_notify
    await a.send_all(b"plain")
    assert await receive_exactly(b, 5) == b"plain"
    await a.aclose()
    await b.aclose()


async def test_tls_listener_with_serve_listeners():
    async def handler(stream):
        line = await stream.readline()
        await stream.send_all(line.upper())

    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].local_address[1]
    tls_listeners = [pystream.TLSListener(l, server_context()) for l in listeners]
    server = asyncio.ensure_future(pystream.serve_listeners(handler, tls_listeners))
    transport = await pystream.open_tcp_stream("127.0.0.1", port)
    async with pystream.TLSStream(transport, client_context(), server_hostname="localhost") as tls:
        await tls.send_all(b"hello tls\n")
        assert await tls.readline() == b"HELLO TLS\n"
        assert await tls.receive_some() == b""
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server


# PyPy's ssl module sets OP_IGNORE_UNEXPECTED_EOF on every SSLContext, so
# OpenSSL reports a transport EOF without close_notify as a clean close
# there: TLSStream tells the two apart itself, and these tests hold on both.


async def truncated(transport_maker, receive):
    """The server sends "complete?" and ends its transport without
    close_notify (as a truncation attack would); the client receives the
    data, then calls receive(client).  Returns what that gave, or the
    exception's type and its cause's type."""
    client, server = await tls_over(transport_maker)()
    async with client, server:
        await asyncio.gather(client.do_handshake(), server.do_handshake())
        await server.send_all(b"complete?")
        await server.transport_stream.send_eof()  # EOF below TLS
        assert await receive_exactly(client, 9) == b"complete?"
        try:
            return await receive(client)
        except pystream.BrokenResourceError as exc:
            with pytest.raises(pystream.BrokenResourceError):
                await receive(client)  # broken stays broken
            return type(exc), type(exc.__cause__)


@pytest.mark.parametrize("transport", ["memory", "socket"])
async def test_tls_transport_eof_without_close_notify_is_broken(transport):
    transport_maker = memory_maker if transport == "memory" else socket_pair_maker
    outcome = await truncated(transport_maker, lambda stream: stream.receive_some())
    assert outcome[:1] == (pystream.BrokenResourceError,), f"truncation gave {outcome!r}"
    assert issubclass(outcome[1], ssl.SSLError), outcome


async def test_tls_truncation_with_ignore_unexpected_eof_is_broken():
    """A context with OP_IGNORE_UNEXPECTED_EOF (PyPy's default) still
    reports a truncation as broken, while close_notify stays a clean EOF."""

    def ignoring(context):
        context.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0x80)
        return context

    async def maker():
        a, b = await memory_maker()
        return (
            pystream.TLSStream(a, ignoring(client_context()), server_hostname="localhost"),
            pystream.TLSStream(b, ignoring(server_context()), server_side=True),
        )

    client, server = await maker()
    async with client, server:
        await asyncio.gather(client.do_handshake(), server.do_handshake())
        await server.send_all(b"complete?")
        await server.transport_stream.send_eof()
        assert await receive_exactly(client, 9) == b"complete?"
        with pytest.raises(pystream.BrokenResourceError):
            await client.receive_some()
    client, server = await maker()
    async with client, server:
        await asyncio.gather(client.do_handshake(), server.do_handshake())
        await server.send_all(b"done")
        await server.send_eof()  # close_notify (TLS 1.3 half-close)
        assert await receive_exactly(client, 4) == b"done"
        assert await client.receive_some() == b""
        assert await client.receive_some() == b""


async def test_tls_truncation_fails_the_reading_helpers():
    for receive in (lambda s: s.readline(), lambda s: s.read(), lambda s: s.readexactly(1)):
        outcome = await truncated(memory_maker, receive)
        assert outcome[:1] == (pystream.BrokenResourceError,), f"truncation gave {outcome!r}"


async def test_tls_unwrap_returns_the_bytes_after_close_notify():
    client, server = await tls_over(memory_maker)()
    await asyncio.gather(client.do_handshake(), server.do_handshake())
    await server.send_eof()  # close_notify (TLS 1.3 keeps server receiving)...
    await server.transport_stream.send_all(b"plain after TLS")  # ...then plaintext
    a, trailing = await client.unwrap()
    assert a is client.transport_stream
    assert trailing == b"plain after TLS"
    b, trailing = await server.unwrap()  # reads the client's close_notify
    assert b is server.transport_stream
    assert trailing == b""
    await a.send_all(b"plain reply")
    assert await receive_exactly(b, 11) == b"plain reply"
    await b.send_all(b"and more")
    assert await receive_exactly(a, 8) == b"and more"
    await a.aclose()
    await b.aclose()


async def test_tls_listener_checks_ssl_context_when_made():
    listeners = await pystream.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0]:
        for bad in (None, "context", ssl.create_default_context):
            with pytest.raises(TypeError, match="ssl_context"):
                pystream.TLSListener(listeners[0], bad)


async def test_tls_listener_closes_a_stream_it_cannot_wrap():
    # Wrapping fails (here: the accepted object is no stream): the
    # connection just accepted is closed, not left open.
    class NotAStream:
        closed = False

        async def aclose(self):
            self.closed = True

    accepted = NotAStream()

    class OneConnection:
        async def accept(self):
            return accepted

        async def aclose(self):
            pass

    listener = pystream.TLSListener(OneConnection(), server_context())
    with pytest.raises(TypeError, match="transport_stream"):
        await listener.accept()
    assert accepted.closed, "the accepted connection was left open"


async def test_tls_receive_returns_every_record_it_has():
    # SSLObject.read gives one record (16 KiB at most) per call; a receive
    # decrypts every whole record the transport's bytes hold, as asyncio's
    # SSLProtocol does, up to max_bytes.
    client, server = await handshaken(tls_over(memory_maker))()
    data = bytes(range(256)) * 240  # 61,440 bytes: four records
    await client.send_all(data)
    first = await server.receive_some(65536)
    assert len(first) > 3 * 16384, f"one receive returned {len(first)} bytes"
    rest = await receive_exactly(server, len(data) - len(first))
    assert first + rest == data
    await client.send_all(data)
    assert len(await server.receive_some(1000)) == 1000, "max_bytes is the limit"
    assert await receive_exactly(server, len(data) - 1000) == data[1000:]
    await client.aclose()
    await server.aclose()


async def cancel_at_its_first_yield(call):
    """Run call until it first yields to the loop, cancel it there, and
    check that it raised CancelledError."""
    task = asyncio.ensure_future(call)
    await asyncio.sleep(0)  # it runs to its first yield
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


FORGED_RECORD = b"\x17\x03\x03\x00\x20" + bytes(32)  # application data, bad MAC


async def test_tls_error_behind_records_comes_after_them():
    # A receive that decrypts records and then meets a bad one returns the
    # good ones and breaks the stream at once: its alert goes out (the peer
    # does not hang), every later call raises BrokenResourceError with the
    # TLS error as cause, and no other connection in the thread is touched
    # (PyPy's ssl leaves errors in OpenSSL's per-thread queue).
    healthy_client, healthy_server = await handshaken(tls_over(memory_maker))()
    client, server = await handshaken(tls_over(memory_maker))()
    await client.send_all(b"first")
    await client.send_all(b"second")
    await client.transport_stream.send_all(FORGED_RECORD)
    assert await server.receive_some() == b"firstsecond"
    for call in (server.send_eof, lambda: server.send_all(b"x"), server.receive_some):
        with pytest.raises(pystream.BrokenResourceError) as failure:
            await call()
        assert getattr(failure.value.__cause__, "reason", None) == (
            "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"
        )
    with pytest.raises(pystream.BrokenResourceError):
        await asyncio.wait_for(client.receive_some(), 10)
    await healthy_client.send_all(b"still fine")
    assert await receive_exactly(healthy_server, 10) == b"still fine"
    for stream in (client, server, healthy_client, healthy_server):
        await stream.aclose()


async def test_tls_error_cancelled_at_its_checkpoint_still_breaks():
    # The bad record is in the TLS object already, so the receive meets
    # the error without waiting and yields before it raises: cancelled
    # there, the stream is broken all the same and the alert is sent.
    client, server = await handshaken(tls_over(memory_maker))()
    await client.transport_stream.send_all(FORGED_RECORD)
    server._tls.incoming.write(await server.transport_stream.receive_some())
    await cancel_at_its_first_yield(server.receive_some())
    with pytest.raises(pystream.BrokenResourceError):
        await asyncio.wait_for(client.receive_some(), 10)  # the alert came
    with pytest.raises(pystream.BrokenResourceError) as failure:
        await server.receive_some()
    assert isinstance(failure.value.__cause__, ssl.SSLError)
    await client.aclose()
    await server.aclose()


async def test_tls_receive_is_a_checkpoint_when_it_does_not_wait():
    # Data decrypted already, or a transport that raises at once: the
    # receive still yields before it returns or raises.
    for transport in (memory_maker, socket_pair_maker):
        client, server = await handshaken(tls_over(transport))()
        await client.send_all(bytes(100))
        assert await server.receive_some(10) == bytes(10)
        receiving = asyncio.ensure_future(server.receive_some(10))
        await asyncio.sleep(0)
        assert not receiving.done(), "a receive of decrypted data did not yield"
        assert await receiving == bytes(10)
        await pystream.aclose_forcefully(server.transport_stream)
        await receive_exactly(server, 80)  # what the TLS object holds
        receiving = asyncio.ensure_future(server.receive_some())
        await asyncio.sleep(0)
        assert not receiving.done(), "a receive from a closed transport did not yield"
        with pytest.raises((pystream.ClosedResourceError, pystream.BrokenResourceError)):
            await receiving
        await client.aclose()
        await server.aclose()


async def test_tls_cancelled_receive_keeps_order_with_send_eof():
    # A receive cancelled at its yield puts its bytes back in front of
    # what a send_eof in another task moved to the same buffer meanwhile.
    client, server = await handshaken(tls_over(memory_maker))()
    data = bytes(range(100))
    await client.send_all(data)
    got = await server.receive_some(10)
    eof = asyncio.ensure_future(server.send_eof())
    await cancel_at_its_first_yield(server.receive_some(10))
    await eof
    got += await receive_exactly(server, len(data) - len(got))
    assert got == data
    await client.aclose()
    await server.aclose()


async def test_tls_receive_cancelled_after_decrypting_loses_nothing():
    # When decrypted bytes are there already, the receive reads them and
    # then yields (its checkpoint); cancelled at that yield, it keeps the
    # bytes for the next receive.
    client, server = await handshaken(tls_over(memory_maker))()
    data = bytes(range(100))
    await client.send_all(data)
    assert await server.receive_some(10) == data[:10]
    for _ in range(5):
        await cancel_at_its_first_yield(server.receive_some(10))
    assert await receive_exactly(server, 90) == data[10:]
    await client.aclose()
    await server.aclose()


async def test_a_huge_max_bytes_returns_what_is_there():
    client, server = await handshaken(tls_over(memory_maker))()
    async with client, server:
        await client.send_all(b"huge")
        assert await server.receive_some(2**100) == b"huge"


async def test_tls_receive_ready_looks_through_to_the_transport():
    from helpers import wait_until

    client, server = await handshaken(tls_over(socket_pair_maker))()
    assert server.receive_ready() is False  # idle, records and socket alike
    await client.send_all(b"hello")
    # The record sits in the socket's C buffer: the TLS stream asks it.
    await wait_until(server.receive_ready, "the record seen through the TLS layer")
    assert await server.receive_some() == b"hello"
    assert server.receive_ready() is False
    await client.send_all(b"ab")
    await wait_until(server.receive_ready, "the second record")
    assert await server.receive_some(1) == b"a"
    assert server.receive_ready() is True  # decrypted, in the pushback buffer
    assert await server.receive_some() == b"b"
    await client.aclose()  # close_notify, then the transport's end
    await wait_until(server.receive_ready, "the close seen")
    assert await server.receive_some() == b""
    await server.aclose()
    assert server.receive_ready() is True  # closed: a receive raises at once
