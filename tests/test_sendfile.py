"""send_file on every stream: the kernel copy on socket and pipe streams,
read + send_all elsewhere; ranges, the file position, cancellation, a peer
that goes away, bad arguments."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct

import pytest

import pystream
from pystream.testing import memory_stream_pair

from helpers import clog, make_pair

MIB = 1 << 20


@pytest.fixture
def data_file(tmp_path):
    """A 3 MiB + 5 byte file of known content, open for reading."""
    content = os.urandom(3 * MIB + 5)
    path = tmp_path / "data"
    path.write_bytes(content)
    with open(path, "rb") as f:
        yield f, content


async def receive_n(stream, n):
    got = bytearray()
    while len(got) < n:
        chunk = await stream.receive_some(MIB)
        assert chunk, f"EOF after {len(got)} of {n} bytes"
        got += chunk
    return bytes(got)


async def tls_pair():
    from tls_helpers import client_context, server_context

    a, b = await pystream.open_stream_pair()
    return (
        pystream.TLSStream(a, client_context(), server_hostname="localhost"),
        pystream.TLSStream(b, server_context(), server_side=True),
    )


async def pipe_pair():
    r, w = await pystream.open_pipe()
    return w, r


async def stapled_pair():
    a_out, b_in = memory_stream_pair()
    b_out, a_in = memory_stream_pair()
    return pystream.StapledStream(a_out, a_in), pystream.StapledStream(b_out, b_in)


async def asyncio_pair():
    from test_asyncio_stream import asyncio_pair

    return await asyncio_pair()


async def memory_pair():
    return memory_stream_pair()


KINDS = {
    "tcp": lambda: make_pair("tcp"),
    "unix": lambda: make_pair("unix"),
    "pipe": pipe_pair,
    "tls": tls_pair,
    "memory": memory_pair,
    "stapled": stapled_pair,
    "asyncio": asyncio_pair,
}


@pytest.mark.parametrize("kind", list(KINDS))
async def test_ranges_on_every_stream(kind, data_file):
    f, content = data_file
    a, b = await KINDS[kind]()
    try:
        f.seek(123)
        cases = [
            (0, None),
            (7, 1000),
            (MIB, 2 * MIB),
            (len(content) - 3, 100),
            (len(content), None),
            (len(content) + 10, 5),
            (5, 0),
        ]
        for offset, count in cases:
            sending = asyncio.ensure_future(a.send_file(f, offset, count))
            end = len(content) if count is None else min(len(content), offset + count)
            want = content[offset:end]
            assert await receive_n(b, len(want)) == want
            assert await sending == len(want)
        assert f.tell() == 123  # the file position is the caller's
        assert await a.send_file(f.fileno(), 1, 2) == 2  # an fd will do
        assert await receive_n(b, 2) == content[1:3]
        # Interleaved with send_all, in order.
        await a.send_all(b"head")
        sending = asyncio.ensure_future(a.send_file(f, 0, 10))
        assert await receive_n(b, 14) == b"head" + content[:10]
        assert await sending == 10
    finally:
        await pystream.aclose_forcefully(a)
        await pystream.aclose_forcefully(b)


@pytest.mark.loops("asyncio")
async def test_one_gib_over_tcp(tmp_path):
    path = tmp_path / "big"
    block = os.urandom(MIB)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for i in range(1024):
            piece = struct.pack("<I", i) + block[4:]
            out.write(piece)
            digest.update(piece)
    a, b = await make_pair("tcp")

    async def receive_all():
        got = hashlib.sha256()
        total = 0
        buffer = bytearray(MIB)
        while count := await b.receive_into(buffer):
            got.update(memoryview(buffer)[:count])
            total += count
        return total, got.digest()

    receiving = asyncio.ensure_future(receive_all())
    with open(path, "rb") as f:
        assert await a.send_file(f) == 1024 * MIB
    await a.send_eof()
    assert await receiving == (1024 * MIB, digest.digest())
    await a.aclose()
    await b.aclose()


async def test_cancelled_before_anything_went_leaves_the_stream_usable(data_file):
    f, content = data_file
    a, b = await make_pair("unix")
    async with a, b:
        await clog(a, b)
        sending = asyncio.ensure_future(a.send_file(f))
        await asyncio.sleep(0.05)
        assert not sending.done()  # no room: it waits for writability
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        # Nothing of the file went: the stream goes on as before.
        receiving = asyncio.ensure_future(b.read(-1))
        await a.send_all(b"after")
        await a.send_eof()
        got = await receiving
        assert got.endswith(b"after") and content[:1000] not in got


async def test_cancelled_midway_breaks_sending(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(os.urandom(64 * MIB))
    a, b = await make_pair("unix")
    async with a, b:
        with open(path, "rb") as f:
            sending = asyncio.ensure_future(a.send_file(f))
            await receive_n(b, MIB)  # some went; the rest waits for room
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
        # The peer got a prefix of the range: sending is broken, receiving
        # still works.
        with pytest.raises(pystream.BrokenResourceError):
            await a.send_all(b"x")
        await b.send_all(b"still")
        assert await a.receive_some() == b"still"


async def test_peer_reset_midway(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(os.urandom(64 * MIB))
    a, b = await make_pair("tcp")
    with open(path, "rb") as f:
        sending = asyncio.ensure_future(a.send_file(f))
        await receive_n(b, MIB)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await b.aclose()  # a reset
        with pytest.raises(pystream.BrokenResourceError) as info:
            await sending
        assert isinstance(info.value.__cause__, (ConnectionResetError, BrokenPipeError))
    await a.aclose()


async def test_busy_and_closed(data_file):
    f, _ = data_file
    a, b = await make_pair("unix")
    await clog(a, b)
    sending = asyncio.ensure_future(a.send_file(f))
    await asyncio.sleep(0)
    with pytest.raises(pystream.BusyResourceError):
        await a.send_all(b"x")
    with pytest.raises(pystream.BusyResourceError):
        await a.send_file(f)
    await a.aclose()
    with pytest.raises(pystream.ClosedResourceError):
        await sending
    with pytest.raises(pystream.ClosedResourceError):
        await a.send_file(f)
    await b.aclose()


async def test_bad_arguments(data_file, tmp_path):
    f, _ = data_file
    a, b = await make_pair("unix")
    async with a, b:
        text = open(tmp_path / "t.txt", "w+")
        write_only = open(tmp_path / "w.bin", "wb")
        closed = open(tmp_path / "w.bin", "rb")
        closed.close()
        r, w = os.pipe()
        try:
            for args, error in [
                ((f, -1), ValueError),
                ((f, 0, -1), ValueError),
                ((f, "0"), TypeError),
                ((f, 0, 1.5), TypeError),
                ((text,), TypeError),
                ((closed,), ValueError),
                ((write_only,), ValueError),
                ((r,), ValueError),  # a pipe is not a file
                (("data",), TypeError),
                ((True,), TypeError),
                ((-3,), ValueError),
            ]:
                with pytest.raises(error):
                    await a.send_file(*args)
        finally:
            for thing in (text, write_only):
                thing.close()
            os.close(r)
            os.close(w)
        # Nothing was sent by any of them.
        await a.send_eof()
        assert await b.read() == b""


async def test_the_reading_path_holds_the_send_direction(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(os.urandom(8 * MIB))  # more than a socket pair holds
    a, b = await tls_pair()
    receiving = asyncio.ensure_future(b.receive_some(1))  # (the handshake)
    with open(path, "rb") as f:
        sending = asyncio.ensure_future(a.send_file(f))
        for _ in range(20):  # between chunks, and during one: busy
            await asyncio.sleep(0.005)
            with pytest.raises(pystream.BusyResourceError):
                await a.send_all(b"x")
        got = await receiving + await receive_n(b, 8 * MIB - 1)
        assert await sending == 8 * MIB
        assert got == path.read_bytes()
    await a.send_all(b"after")  # free again
    assert await receive_n(b, 5) == b"after"
    await a.aclose()
    await b.aclose()


async def test_a_file_sendfile_cannot_read_is_read_instead():
    # /proc files are regular files that sendfile(2) refuses (EINVAL).
    a, b = await make_pair("unix")
    async with a, b:
        with open("/proc/self/cmdline", "rb") as f:
            expected = f.read()
            sent = await a.send_file(f)
        assert sent == len(expected) > 0
        assert await receive_n(b, sent) == expected
        await a.send_all(b"usable")  # nothing broke
        assert await receive_n(b, 6) == b"usable"


async def test_what_a_file_object_buffers_is_sent(tmp_path):
    a, b = await make_pair("unix")
    async with a, b:
        with open(tmp_path / "f", "w+b") as f:
            f.write(b"still in the buffer")  # not flushed
            assert await a.send_file(f) == 19
        assert await receive_n(b, 19) == b"still in the buffer"
