"""The model behind ``pystream.testing.fuzz``: numbered payloads, what a
stream may deliver of each send, and the strategies the machine draws."""

from __future__ import annotations

import array
import asyncio
import functools
import sys
from typing import Any, Optional

from hypothesis import strategies as st

__all__ = [
    "LARGE_SEND",
    "SENT",
    "MAYBE",
    "PREFIX",
    "chunkings",
    "schedules",
    "payloads",
    "receive_ops",
    "consistent",
    "End",
]

LARGE_SEND = 4 * 1024 * 1024

# What a send contributes to the byte stream, as the model knows it.
SENT = "sent"  # whole: its send_all returned
MAYBE = "maybe"  # cancelled under the "whole" rule: all of it or none
PREFIX = "prefix"  # in flight, interrupted or broken: any prefix of it,
# and if not all of it, nothing after it


def chunkings(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """Ways to cut data into non-empty chunks that join back into it."""
    if not data:
        return st.just([])
    return st.lists(
        st.integers(1, len(data) - 1) if len(data) > 1 else st.nothing(),
        unique=True,
        max_size=min(16, len(data) - 1),
    ).map(lambda cuts: [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)])])


def schedules(n_tasks: int, max_steps: int = 50) -> st.SearchStrategy[list[int]]:
    """Orders in which n_tasks tasks take turns (a list of task indexes)."""
    return st.lists(st.integers(0, n_tasks - 1), max_size=max_steps)


def payloads(max_large: int = LARGE_SEND) -> st.SearchStrategy[int]:
    """Send sizes: mostly small (up to 4 KiB, empty included), one in four
    large (64 KiB up to max_large: enough to block a socket)."""
    small = st.integers(0, 4096)
    return st.one_of(small, small, small, st.integers(64 * 1024, max_large))


@functools.lru_cache(maxsize=1)
def pattern() -> bytes:
    """64 MiB of big-endian 32-bit counters (32 MiB per end, several large
    sends before a payload repeats): any slice of 4 bytes or more says
    where in it it was taken."""
    words = array.array("I", range(16 * 1024 * 1024))
    if sys.byteorder == "little":
        words.byteswap()
    return words.tobytes()


def consistent(segments: list[tuple[str, bytes]], received: bytes, complete: bool) -> bool:
    """Whether received is what segments deliver: each SENT one whole, each
    MAYBE one whole or not at all, each PREFIX one any prefix of itself
    (nothing after it if cut short); if not complete, received may stop
    anywhere."""
    n = len(received)
    view = memoryview(received)
    positions = {0}
    for index, (kind, data) in enumerate(segments):
        following = set()
        for pos in positions:
            if kind != SENT:
                following.add(pos)  # none of it
            available = n - pos
            if available >= len(data):
                if view[pos : pos + len(data)] == data:
                    following.add(pos + len(data))
            elif view[pos:] == data[:available]:
                if not complete:
                    return True
                if kind == PREFIX and all(k != SENT for k, _ in segments[index + 1 :]):
                    return True
        positions = following
        if not positions:
            return False
    return n in positions


class End:
    """The model of one end."""

    def __init__(self, stream: Any, index: int) -> None:
        self.stream = stream
        self.index = index
        self.cursor = index * (len(pattern()) // 2)  # where its payloads come from
        self.segments: list[tuple[str, bytes]] = []
        self.received = bytearray()
        self.send_task: Optional[asyncio.Task[Any]] = None
        self.receive_task: Optional[asyncio.Task[Any]] = None
        self.send_done = False  # no more sends: cancelled ("prefix"), failed or EOF
        self.send_broke = False  # its own cancelled send may have broken it
        self.eof_sent = False  # the peer may see EOF
        self.no_half_close = False  # send_eof raised NotImplementedError
        self.closed = False
        self.got_eof = False
        self.receive_broke = False  # a receive ended in an allowed error

    def payload(self, size: int) -> bytes:
        counters = pattern()
        half = len(counters) // 2
        base = self.index * half
        if self.cursor + size > base + half:
            self.cursor = base
        data = counters[self.cursor : self.cursor + size]
        self.cursor += size
        return data


# Receive operations: (name, argument), drawn by hypothesis.
_SEPARATORS = [b"\x00", b"\n", b"\x00\x00\x10", b"\x01\x02\x03\x04"]
receive_ops = st.one_of(
    st.tuples(st.just("some"), st.integers(1, 10000)),
    st.tuples(st.just("some"), st.just(1 << 20)),
    st.tuples(st.just("into"), st.integers(1, 70000)),
    st.tuples(st.just("exactly"), st.integers(0, 70000)),
    st.tuples(
        st.just("until"),
        st.tuples(st.sampled_from(_SEPARATORS), st.sampled_from([1, 16, 1000, 65536])),
    ),
    st.tuples(st.just("line"), st.none()),
    st.tuples(st.just("read"), st.integers(-1, 70000)),
    st.tuples(st.just("many"), st.integers(2, 64)),
)
