"""pystream: one awaitable Stream per connection for asyncio, on libuv.

See ``README.md`` and ``docs/`` for the tour; the contract is Trio's stream
contract, translated to asyncio.
"""

from ._base._checkpoint import get_schedule_interval, set_schedule_interval
from ._base._errors import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    EndOfChannel,
)
from ._core import counters as _counters  # noqa: F401 (tests, benchmarks)
from ._eventloop import EventLoopPolicy, new_event_loop, run
from ._streams._listener import SocketListener
from ._streams._open import (
    open_stream_pair,
    open_tcp_listeners,
    open_tcp_stream,
    open_unix_listener,
    open_unix_stream,
    wrap_socket,
)
from ._streams._pipes import PipeStream, open_pipe, wrap_fd
from ._streams._process import Process, open_process
from ._streams._run_process import run_process
from ._streams._serve import serve_listeners, serve_tcp
from ._streams._socket import SocketStream
from ._streams._stdio import ThreadFdStream, open_stderr, open_stdin, open_stdout
from ._version import __version__ as __version__
from ._wrappers._asyncio_stream import AsyncioStream
from ._wrappers._channels import (
    MemoryReceiveChannel,
    MemorySendChannel,
    WouldBlock,
    open_memory_channel,
)
from ._wrappers._stapled import StapledStream
from ._wrappers._tls import TLSStream
from ._wrappers._tls_listener import TLSListener
from .abc import aclose_forcefully

__all__ = [
    "AsyncioStream",
    "BrokenResourceError",
    "BusyResourceError",
    "ClosedResourceError",
    "EndOfChannel",
    "EventLoopPolicy",
    "MemoryReceiveChannel",
    "MemorySendChannel",
    "PipeStream",
    "ThreadFdStream",
    "Process",
    "SocketListener",
    "SocketStream",
    "StapledStream",
    "TLSListener",
    "TLSStream",
    "WouldBlock",
    "aclose_forcefully",
    "get_schedule_interval",
    "new_event_loop",
    "open_memory_channel",
    "open_pipe",
    "open_process",
    "open_stderr",
    "open_stdin",
    "open_stdout",
    "open_stream_pair",
    "open_tcp_listeners",
    "open_tcp_stream",
    "open_unix_listener",
    "open_unix_stream",
    "run",
    "run_process",
    "serve_listeners",
    "serve_tcp",
    "set_schedule_interval",
    "wrap_fd",
    "wrap_socket",
]
