"""pystream.abc: every Stream has a fallible send_eof (trio#823)."""

from __future__ import annotations

import pytest

import pystream
from pystream.abc import HalfCloseableStream, Stream


def test_every_stream_has_send_eof():
    assert HalfCloseableStream is Stream
    assert "send_eof" in Stream.__dict__
    from pystream.testing import MemoryStream

    for cls in (
        pystream.SocketStream,
        pystream.TLSStream,
        pystream.StapledStream,
        pystream.AsyncioStream,
        MemoryStream,
    ):
        assert issubclass(cls, Stream)
        # Each of pystream's streams can half-close: none keeps the default.
        assert cls.send_eof is not Stream.send_eof, cls


async def test_default_send_eof_raises_not_implemented():
    class Minimal(Stream):
        async def send_all(self, data):
            pass

        async def wait_send_all_might_not_block(self):
            pass

        async def receive_some(self, max_bytes=None):
            return b""

        async def readexactly(self, n):
            return b""

        async def readuntil(self, separator=b"\n", *, limit=65536):
            return b""

        async def read(self, n=-1):
            return b""

        async def aclose(self):
            pass

    with pytest.raises(NotImplementedError):
        await Minimal().send_eof()
