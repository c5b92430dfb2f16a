"""Tools for testing streams: in-memory stream pairs and the conformance
suite that any Stream implementation can run on itself (``fuzz`` has the
hypothesis state machine, ``soak`` the soak test).  For example::

    from pystream.testing import check_half_closeable_stream, memory_stream_pair

    async def maker():
        return memory_stream_pair()

    await check_half_closeable_stream(maker, None)
"""

from ._check_streams import check_one_way_stream
from ._check_two_way import check_half_closeable_stream, check_two_way_stream
from ._memory import MemoryStream, lockstep_stream_pair, memory_stream_pair

__all__ = [
    "MemoryStream",
    "check_half_closeable_stream",
    "check_one_way_stream",
    "check_two_way_stream",
    "lockstep_stream_pair",
    "memory_stream_pair",
]
