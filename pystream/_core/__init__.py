"""The core layer: the only Python code that imports the compiled binding
(``pystream._binding``) or calls the C core.

It mirrors ``c/include/pystream.h``: the loop driver (``Bridge``, one per
asyncio loop, and the ``Handle`` each C handle reports to), the stream
(``CoreStream``: every ``ps_stream_*`` call, the Stream API on top), the
listener (``CoreListener``: every ``ps_listener_*`` call), the child process
(``CoreProcess``: every ``ps_process_*`` call) and the ways to make streams
(``open_fd``, ``connect_tcp``, ``connect_pipe``), and pystream's own
event loop (``EventLoop``: a selector made of ``ps_poll_*`` handles).  Each C call is
made in one place, its return code checked there (``check``), and a call
that may change what libuv watches pokes the bridge there: stream modules
above this layer never see ``lib``, ``ffi`` or a handle's insides.
"""

from .._binding import oserror
from ._accepting import CoreListener
from ._common import Address, check, decode_address
from ._connect import connect_pipe, connect_tcp, open_fd
from ._loop import Bridge, counters, get_bridge
from ._selector import EventLoop
from ._spawning import CoreProcess
from ._stream import KIND_PIPE, KIND_TCP, CoreStream
from ._waiter import Waiter

__all__ = [
    "Address",
    "Bridge",
    "CoreListener",
    "CoreProcess",
    "CoreStream",
    "EventLoop",
    "KIND_PIPE",
    "KIND_TCP",
    "Waiter",
    "check",
    "connect_pipe",
    "connect_tcp",
    "counters",
    "decode_address",
    "get_bridge",
    "open_fd",
    "oserror",
]
