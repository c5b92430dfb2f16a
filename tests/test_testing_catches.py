"""The conformance suite catches deliberately broken streams, each with a
message that names the broken behaviour."""

from __future__ import annotations

import pytest

from pystream.testing import check_half_closeable_stream

from broken_streams import BROKEN


@pytest.mark.parametrize(
    "broken, behaviour",
    [
        ("no-checkpoint", "receive_some\\(\\) is a checkpoint even with data buffered"),
        ("loses-data", "aclose delivers all data send_all accepted"),
        ("never-yields", "with the schedule interval at 0, send_all yields"),
        ("no-busy", "one raises BusyResourceError"),
        ("empty-before-eof", "returned b'' \\(EOF\\)"),
        ("aclose-cancel", "aclose\\(\\), cancelled at its start, did not close the stream"),
        ("aclose-closes-nothing", "aclose\\(\\), cancelled at its start, did not close"),
        ("forceful-loses-data", "aclose_forcefully does not destroy data send_all accepted"),
    ],
)
async def test_suite_catches(broken, behaviour):
    with pytest.raises(AssertionError, match=behaviour):
        await check_half_closeable_stream(BROKEN[broken], None)
