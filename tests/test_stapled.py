"""StapledStream: two one-way streams as one keep the contract."""

from __future__ import annotations

import pystream
from pystream.testing import (
    check_half_closeable_stream,
    lockstep_stream_pair,
    memory_stream_pair,
)


async def test_stapled_stream():
    async def maker():
        a_out, b_in = memory_stream_pair()
        b_out, a_in = memory_stream_pair()
        return (pystream.StapledStream(a_out, a_in), pystream.StapledStream(b_out, b_in))

    async def clogged():
        a_out, b_in = lockstep_stream_pair()
        b_out, a_in = lockstep_stream_pair()
        return (pystream.StapledStream(a_out, a_in), pystream.StapledStream(b_out, b_in))

    await check_half_closeable_stream(maker, clogged)
