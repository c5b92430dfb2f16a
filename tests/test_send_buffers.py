"""SocketStream.send_all of buffers the kernel does not take at once: the
rest waits in libuv's queue, which points into the caller's buffer (pinned
until the write completes).  Every byte must arrive, in order, whatever
kind of buffer it was and whatever the caller does to it meanwhile."""

from __future__ import annotations

import array
import asyncio
import gc
import hashlib
import os
import traceback

import pytest

import pystream

from helpers import make_pair, wait_until

SIZE = 8 * 1024 * 1024  # far more than a socket pair's kernel buffers


def digest(data) -> str:
    return hashlib.sha256(data).hexdigest()


def writes_pending() -> int:
    return pystream._counters(asyncio.get_running_loop())["writes_pending"]


async def receive_slowly(stream: pystream.SocketStream, n: int) -> bytes:
    """Read n bytes in small pieces, pausing now and then, so that the
    sender's write completes in many steps."""
    chunks = []
    while n:
        chunk = await stream.receive_some(min(n, 32 * 1024))
        assert chunk, "EOF before the expected data"
        chunks.append(chunk)
        n -= len(chunk)
        if len(chunks) % 8 == 0:
            await asyncio.sleep(0.001)
    return b"".join(chunks)


def _bytearray(raw):
    return bytearray(raw)


def _memoryview_of_bytearray(raw):
    return memoryview(bytearray(raw))


def _memoryview_slice(raw):
    return memoryview(bytearray(b"<" * 100 + raw + b">" * 100))[100:-100]


def _stepped_memoryview(raw):
    # Not contiguous: every other byte of a buffer twice the size.
    doubled = bytearray(2 * len(raw))
    doubled[::2] = raw
    return memoryview(doubled)[::2]


def _int_array_memoryview(raw):
    return memoryview(array.array("i", raw))  # itemsize 4, format "i"


def _two_dimensional_memoryview(raw):
    return memoryview(bytearray(raw)).cast("B", shape=[len(raw) // 1024, 1024])


BUFFERS = [
    _bytearray,
    _memoryview_of_bytearray,
    _memoryview_slice,
    _stepped_memoryview,
    _int_array_memoryview,
    _two_dimensional_memoryview,
]


@pytest.mark.parametrize("make_buffer", BUFFERS, ids=lambda f: f.__name__.strip("_"))
async def test_large_send_all_of_a_buffer_arrives_intact(make_buffer):
    raw = os.urandom(SIZE)
    buffer = make_buffer(raw)
    a, b = await make_pair("pair")
    async with a, b:
        sender = asyncio.ensure_future(a.send_all(buffer))
        # The kernel took part; the rest waits in libuv's queue, pinned.
        await wait_until(lambda: writes_pending() == 1, "a queued write")
        received = await receive_slowly(b, SIZE)
        await sender
        assert writes_pending() == 0
        assert digest(received) == digest(raw)
        # The buffer is the caller's again, unchanged.
        assert digest(memoryview(buffer).tobytes()) == digest(raw)


async def test_large_send_all_of_a_bytearray_over_tcp():
    raw = os.urandom(SIZE)
    a, b = await make_pair("tcp")
    async with a, b:
        sender = asyncio.ensure_future(a.send_all(bytearray(raw)))
        received = await receive_slowly(b, SIZE)
        await sender
        assert digest(received) == digest(raw)


def _extend(buffer):
    buffer.extend(b"\xee" * (4 * SIZE))  # grows: reallocates


def _clear(buffer):
    buffer.clear()  # frees the storage


def _delete_front(buffer):
    del buffer[: SIZE // 2]


def _replace_all(buffer):
    buffer[:] = b"\xdd" * 100


RESIZES = [_extend, _clear, _delete_front, _replace_all]


def churn_memory() -> list:
    """Memory as a program would go on using it: what a resize freed is
    collected and likely reused, here for the returned buffers of 0xaa."""
    gc.collect()
    return [bytearray(b"\xaa" * SIZE) for _ in range(4)]


async def cancelled_send(stream: pystream.SocketStream, data) -> None:
    """Start send_all(data), let the kernel take what it can and libuv
    queue the rest, then cancel it."""
    sender = asyncio.ensure_future(stream.send_all(data))
    await wait_until(lambda: writes_pending() == 1, "a queued write")
    sender.cancel()
    try:
        await sender
    except asyncio.CancelledError as exc:
        # The call is over: its frames (and their views of data), which the
        # exception's traceback keeps, go, so only a deliberate pin holds
        # data now.
        traceback.clear_frames(exc.__traceback__)
    else:
        raise AssertionError("send_all finished before it was cancelled")


async def receive_until_eof_slowly(stream: pystream.SocketStream) -> bytes:
    chunks = []
    while True:
        chunk = await stream.receive_some(32 * 1024)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        if len(chunks) % 8 == 0:
            await asyncio.sleep(0.001)


async def delivered(sender: pystream.SocketStream, receiver: pystream.SocketStream) -> bytes:
    """Everything the receiver gets once the sender's queued write ends
    (completed or failed) and the sender closes."""
    receiving = asyncio.ensure_future(receive_until_eof_slowly(receiver))
    try:
        await wait_until(lambda: writes_pending() == 0, "the write's completion")
        await sender.aclose()
        return await receiving
    finally:
        if not receiving.done():
            receiving.cancel()
            await asyncio.gather(receiving, return_exceptions=True)


def outcome(resize, buffer) -> str:
    try:
        resize(buffer)
    except BufferError:
        return "refused"
    return "allowed"


def check_delivered(received: bytes, raw: bytes, resized: str) -> None:
    intact = len(received) == len(raw) and digest(received) == digest(raw)
    assert intact, (
        f"resize {resized} while libuv held the buffer: the peer got "
        f"{len(received)} of {len(raw)} bytes, "
        f"{'the same' if received == raw[: len(received)] else 'different'} ones"
    )


# (On PyPy a pinned bytearray or array resizes all the same: the core
# queues a copy of the rest there, which these tests check too.)


@pytest.mark.parametrize("resize", RESIZES, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("wrap", [bytearray, memoryview], ids=["bytearray", "memoryview"])
async def test_resizing_a_bytearray_after_cancelled_send_all_is_refused_or_safe(resize, wrap):
    # libuv may still hold a pointer into the bytearray after send_all was
    # cancelled: resizing it must raise BufferError or, if allowed, leave
    # what goes out unchanged; the cancelled call sent everything.
    raw = os.urandom(SIZE)
    buffer = bytearray(raw)
    a, b = await make_pair("pair")
    async with a, b:
        view = memoryview(buffer) if wrap is memoryview else buffer
        await cancelled_send(a, view)
        if wrap is memoryview:
            view.release()  # the caller's own view: gone
        del view
        resized = outcome(resize, buffer)
        reused = churn_memory()
        check_delivered(await delivered(a, b), raw, resized)
        del reused
        if resized == "refused":  # unpinned once libuv is done with it
            resize(buffer)


async def test_resizing_an_array_after_cancelled_send_all_is_refused_or_safe():
    numbers = array.array("i", os.urandom(SIZE))
    raw = numbers.tobytes()
    a, b = await make_pair("pair")
    async with a, b:
        await cancelled_send(a, memoryview(numbers))
        resized = outcome(lambda x: x.extend(x), numbers)
        reused = churn_memory()
        check_delivered(await delivered(a, b), raw, resized)
        del reused


async def test_bytearray_is_resizable_again_after_send_all_returns():
    raw = os.urandom(SIZE)
    buffer = bytearray(raw)
    a, b = await make_pair("pair")
    async with a, b:
        sender = asyncio.ensure_future(a.send_all(buffer))
        received = await receive_slowly(b, SIZE)
        await sender
        buffer.extend(b"more")  # no BufferError: nothing holds it now
        buffer.clear()
        assert digest(received) == digest(raw)


async def test_stream_keeps_working_after_cancelled_send_all_completes():
    # The cancelled call's bytes all go out; what is sent later follows them.
    raw = os.urandom(SIZE)
    buffer = bytearray(raw)
    a, b = await make_pair("pair")
    async with a, b:
        await cancelled_send(a, buffer)
        receiving = asyncio.ensure_future(receive_slowly(b, SIZE + 5))
        await wait_until(lambda: writes_pending() == 0, "the write's completion")
        await a.send_all(bytearray(b"after"))
        received = await receiving
        assert digest(received) == digest(raw + b"after")
