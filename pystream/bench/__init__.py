"""``python -m pystream bench``: pystream against what users would pick
instead, and against plain C on the same libuv.

Each server runs in its own process (pinned to one core when there are two
or more), driven by a load generator written in C (``loadgen.c``, built on
first use with the system compiler) so that the client is never the
bottleneck.  All servers are measured in the same run, in interleaved rounds
(A B C ... A B C ...), and the report gives medians with min and max.  The
steadiest figure on a shared machine is the server's CPU time per request
(user + system, read from ``/proc/PID/task/*/schedstat`` at the moments the
load generator opens and closes its measuring window).

The modules, in the order a run uses them: ``_cli`` (the options, the
entry point; what it shares with the two commands below is in
``_command``), ``_catalog`` (the servers and the workloads), ``_build``
(compiling ``loadgen.c`` and ``refserver.c``), ``_processes`` (starting
servers and the load generator, cores, ``/proc``), ``_measure`` (one
measurement, and the rounds of the whole run), ``_report`` (statistics,
the table, the chart).  ``servers`` holds the Python servers, each run in
its own process with ``python -m pystream.bench.servers`` (the connection
handlers they share, plain and TLS, in ``_handlers``), and ``_floor`` the
floors: limits, not libraries, the thinnest echo with an asyncio task per
connection, with and without a checkpoint before each send.  The TLS
workloads (``tls-1k``, ``tls-64k``, asked for by name) add
``_tls_servers`` and the load generator's TLS client, ``loadgen_tls.c`` on
OpenSSL.

Two more commands live here: ``pipes`` (``bench-pipes``: bytes through a
child process) and ``sendfile`` (``bench-sendfile``: a server sending a
file, ``send_file`` against the other ways; it reuses the processes, the
load generator's bulk reader and the statistics above).
"""

from ._build import build
from ._catalog import SERVERS, WORKLOADS
from ._cli import add_arguments, run
from ._report import KEY_FIGURE, format_table, ratios

__all__ = [
    "KEY_FIGURE",
    "SERVERS",
    "WORKLOADS",
    "add_arguments",
    "build",
    "format_table",
    "ratios",
    "run",
]
