"""TLSStream: TLS over any pystream Stream, with ``ssl.MemoryBIO`` (works on
CPython and PyPy).  TLSListener, to serve it, is in ``_tls_listener``."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Optional, Union

from .._base._checkpoint import LoopCheckpoint
from .._base._errors import BrokenResourceError, ClosedResourceError, ConflictDetector
from .._base._readers import BufferedReceiveMixin
from .._base._state import EOF_SENT, OPEN, StreamState
from .._base._util import CHECKPOINT, require_methods, wait_bounded
from ..abc import Stream, aclose_forcefully, close_now
from ._tls_engine import TLSConnection
from ._tls_openssl import clear_openssl_errors, write_close_notify

__all__ = ["TLSStream", "check_ssl_context"]

# The most one receive decrypts (SSLObject.read allocates that much).
_MAX_READ = 1 << 20
# aclose sends close_notify, but gives a peer that does not read this long.
_CLOSE_NOTIFY_TIMEOUT = 5.0


def check_ssl_context(ssl_context: Any) -> None:
    if not isinstance(ssl_context, ssl.SSLContext):
        raise TypeError(f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}")


class TLSStream(BufferedReceiveMixin, Stream):
    """A TLS connection over ``transport_stream``.

    The handshake happens on first use, or by ``await do_handshake()``; a
    failed one raises ``BrokenResourceError`` from the ``ssl.SSLError``.
    ``aclose`` sends close_notify and closes the transport without waiting
    for the peer's (at most 5 s).  A cancelled ``send_all``, or a TLS error,
    leaves the stream broken: every later call raises
    ``BrokenResourceError``, and ``aclose`` still closes it.  A cancelled
    receive or handshake that was waiting for the peer leaves it usable.  If
    the transport fails to send (the peer went away), sending is broken but
    what the peer sent before can still be received.

    ``send_eof`` sends close_notify and keeps receiving: TLS 1.3 allows that
    half-close; on TLS 1.2 and older (where close_notify closes both ways)
    it raises ``NotImplementedError``.

    Receiving returns ``b""`` only after the peer's close_notify: a
    transport that ends without one (a truncation attack, or a peer that
    just closed the socket) raises ``BrokenResourceError``, as does any TLS
    error.  The reading helpers work as on every stream.

    Raises:
        TypeError: ``transport_stream`` lacks ``send_all``,
            ``receive_some`` or ``aclose``, or ``ssl_context`` is not an
            ``ssl.SSLContext``.

    Attributes:
        transport_stream: the stream the TLS records travel on.
    """

    def __init__(
        self,
        transport_stream: Stream,
        ssl_context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: Optional[str] = None,
    ) -> None:
        require_methods(transport_stream, "transport_stream", "send_all", "receive_some", "aclose")
        check_ssl_context(ssl_context)
        self.transport_stream = transport_stream
        # The two directions' states (the rules: pystream/_base/_state.py).  A TLS
        # error or a cancelled send_all breaks both; the transport failing
        # to send breaks only sending.
        self._state = StreamState()
        self._pushback = bytearray()
        # The TLS object and the bytes it moves (_tls_engine).
        self._tls = TLSConnection(
            transport_stream,
            ssl_context,
            self._state,
            self._pushback,
            server_side=server_side,
            server_hostname=server_hostname,
        )
        # send_all's checkpoint: the loop's the stream is made in, which
        # knows its loop (before Python 3.12, finding the running loop costs
        # a getpid() system call per send).  On another loop it finds no
        # task of its own loop running and yields every time, the strict
        # rule (and a core transport raises RuntimeError there).
        loop = asyncio._get_running_loop()
        self._checkpoint: Any = CHECKPOINT if loop is None else LoopCheckpoint(loop)
        self._send_conflict = ConflictDetector("another task is already sending on this stream")
        self._receive_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )

    def __repr__(self) -> str:
        return (
            f"<pystream.TLSStream {self._state.receive}/{self._state.send} "
            f"over {self.transport_stream!r}>"
        )

    # -- information ------------------------------------------------------
    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The ``ssl.SSLObject`` doing the TLS, for what the methods here
        do not give.  Reading from or writing to it directly would corrupt
        the stream."""
        return self._tls.ssl

    def selected_alpn_protocol(self) -> Optional[str]:
        """The protocol ALPN chose, or None (no ALPN, or no handshake
        yet)."""
        return self._tls.ssl.selected_alpn_protocol()

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The peer's certificate, as ``ssl.SSLObject.getpeercert`` gives
        it: a dict (empty if it was not validated), DER bytes with
        ``binary_form``, None if the peer sent none.  ``ValueError`` before
        the handshake."""
        return self._tls.ssl.getpeercert(binary_form)

    def version(self) -> Optional[str]:
        """The TLS version in use (``"TLSv1.3"``, ...), or None before the
        handshake."""
        return self._tls.ssl.version()

    def cipher(self) -> Optional[tuple[str, str, int]]:
        """``(name, protocol, secret bits)`` of the cipher in use, or None
        before the handshake."""
        return self._tls.ssl.cipher()

    async def do_handshake(self) -> None:
        """Do the TLS handshake now, unless it is done (every other call
        does it first when needed).  Idempotent.  A checkpoint.

        Raises:
            pystream.BrokenResourceError: the handshake failed (a bad
                certificate, a wrong host name: ``__cause__`` is the
                ``ssl.SSLError``), or the transport broke.  The stream is
                broken for good.
            pystream.ClosedResourceError: the stream was closed.

        Cancellation:
            Nothing is lost: a later call resumes the handshake.
        """
        self._tls.check_usable()
        await CHECKPOINT
        await self._tls.handshake()

    # -- sending ----------------------------------------------------------
    async def send_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Encrypt all of ``data`` and send the records; return once the
        transport's ``send_all`` took them.  Does the handshake first if it
        has not happened.  ``b""`` sends nothing.  ``write`` is another
        name for it.  A checkpoint.

        Raises:
            pystream.BusyResourceError: another task is already in
                ``send_all``, ``wait_send_all_might_not_block`` or
                ``send_eof`` on this stream.
            pystream.ClosedResourceError: the stream was closed (or its
                sending side by ``send_eof``).
            pystream.BrokenResourceError: a TLS error (``__cause__``), the
                transport broke, or an earlier ``send_all`` was cancelled.
            TypeError: ``data`` is not bytes-like.

        Cancellation:
            Cancelled at its first checkpoint or during the handshake, it
            sent nothing and the stream stays usable.  Cancelled later, any
            part of the data may have gone and the stream is broken: every
            later call raises ``BrokenResourceError``; ``aclose`` still
            closes it.
        """
        if isinstance(data, str):
            raise TypeError("send_all needs bytes-like data, not str")
        view = memoryview(data).cast("B")
        tls = self._tls
        state = self._state
        # (The conflict detector by hand and the state checks inlined: a
        # send's hot path.)
        busy = self._send_conflict
        if busy.held:
            raise busy.busy()
        busy.held = True
        try:
            if state.send is not OPEN or state.receive is not OPEN:
                tls.check_send_usable()
            await self._checkpoint
            if state.send is not OPEN or state.receive is not OPEN:
                tls.check_send_usable()
            if not view.nbytes:
                return  # nothing to send (and never an EOF): no handshake
            if not tls.handshake_done:
                await tls.handshake()
            await tls.write_all(view)
        finally:
            busy.held = False

    write = send_all

    async def wait_send_all_might_not_block(self) -> None:
        """Return once records being sent are out and the transport's
        ``send_all`` would probably not wait.  A checkpoint.

        Raises:
            pystream.BusyResourceError: another task is sending on this
                stream.
            pystream.ClosedResourceError: the stream was closed (or its
                sending side by ``send_eof``).
            pystream.BrokenResourceError: the stream is broken.

        Cancellation:
            Nothing changes.
        """
        with self._send_conflict:
            self._tls.check_send_usable()
            await CHECKPOINT
            async with self._tls.send_lock:
                await self.transport_stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Half-close (TLS 1.3 only): send close_notify; receiving goes on.
        Does the handshake first if it has not happened.  Idempotent; then
        ``send_all`` raises ``ClosedResourceError``.  A checkpoint.

        Raises:
            NotImplementedError: the connection is TLS 1.2 or older, where
                close_notify ends both directions (use ``aclose``).
            pystream.BusyResourceError: another task is sending on this
                stream.
            pystream.ClosedResourceError: the stream was closed.
            pystream.BrokenResourceError: the stream is broken, or sending
                close_notify failed.

        Cancellation:
            Cancelled at its first checkpoint or during the handshake,
            nothing changed.  Once it started sending close_notify, that
            goes on in the background: the sending side is closed.
        """
        tls = self._tls
        with self._send_conflict:
            tls.check_usable()
            await CHECKPOINT
            if self._state.send is EOF_SENT:
                return
            tls.check_send_usable()
            await tls.handshake()
            if self._tls.ssl.version() != "TLSv1.3":
                raise NotImplementedError(
                    f"{self._tls.ssl.version()} has no half-close (TLS 1.3 has); use aclose()"
                )
            self._state.send_eof()
            write_close_notify(tls)
            await tls.flush()  # shielded: a cancellation still sends it

    # -- receiving --------------------------------------------------------
    def receive_ready(self) -> bool:
        """Whether a receive would return (or raise) at once, from what this
        stream or its transport holds: plaintext in the pushback buffer or
        decrypted in the ``SSLObject``, records or the transport's end in
        the incoming buffer, the stream closed or broken, or the
        transport's own ``receive_ready()`` (False for a transport without
        it).  No system call.  True may mean only part of a record
        arrived: a promise that the receive will not wait for long."""
        if super().receive_ready():
            return True
        tls = self._tls
        if tls.ssl.pending() or tls.incoming.pending or tls.incoming.eof:
            return True
        ready = getattr(self.transport_stream, "receive_ready", None)
        return bool(ready()) if callable(ready) else False

    def _check_receive_open(self) -> None:
        self._tls.check_usable()

    async def _receive_raw(self, max_bytes: int) -> bytes:
        # SSLObject.read allocates what it is asked for: ask a sane amount.
        max_bytes = min(max_bytes, _MAX_READ)
        tls = self._tls
        if self._state.receive is not OPEN:
            tls.check_usable()
        if tls.handshake_done:
            # The read is the checkpoint: its wait for the transport, or a
            # yield (_retry).  One loop iteration less per receive.
            return await tls.receive(max_bytes, checkpoint=True)
        await CHECKPOINT
        tls.check_usable()
        await tls.handshake()
        return await tls.receive(max_bytes, checkpoint=False)

    # -- closing ----------------------------------------------------------
    async def unwrap(self) -> tuple[Stream, bytes]:
        """End TLS: send close_notify, wait for the peer's, and return
        ``(transport_stream, data)``, where ``data`` is what arrived after
        the peer's close_notify (plain bytes for the transport's next
        user).  This stream is then closed; the transport is not.

        Raises:
            pystream.BusyResourceError: another task is sending or receiving
                on this stream.
            pystream.ClosedResourceError: the stream was closed.
            pystream.BrokenResourceError: a TLS error, the transport broke,
                or it ended before the peer's close_notify.

        Cancellation:
            Cancelled while it waits for the peer's close_notify, it leaves
            ours sent and the stream of no more use (sending raises
            ``BrokenResourceError``); ``aclose`` still closes it.
        """
        tls = self._tls
        with self._send_conflict, self._receive_conflict:
            tls.check_usable()
            await CHECKPOINT
            await tls.handshake()
            after = await tls.unwrap()
            self._state.close()
            return self.transport_stream, after

    async def aclose(self) -> None:
        """Send close_notify, without waiting for the peer's, then close the
        transport.  Idempotent.

        No close_notify is sent if the handshake never happened or the
        stream is broken.  A peer that does not read gets at most 5 s to
        take it; then, as when sending it fails, the transport is closed
        forcefully.  Calls blocked in other tasks wake with
        ``ClosedResourceError`` once the transport is closed.

        Cancellation:
            The transport is closed forcefully, then the cancellation is
            raised.
        """
        if self._state.closed:
            await CHECKPOINT
            return
        # (After send_eof, this only waits for the close_notify in flight.)
        tls = self._tls
        send_notify = (
            self._state.receive is OPEN and tls.handshake_done and tls.send_failure is None
        )
        self._state.close()
        try:
            if send_notify and not await wait_bounded(
                tls.send_close_notify(), _CLOSE_NOTIFY_TIMEOUT
            ):
                await aclose_forcefully(self.transport_stream)
                return
        except asyncio.CancelledError:
            await aclose_forcefully(self.transport_stream)
            raise
        except (BrokenResourceError, ClosedResourceError, ssl.SSLError):
            clear_openssl_errors()
            await aclose_forcefully(self.transport_stream)
            return
        await self.transport_stream.aclose()

    def _send_guard(self) -> ConflictDetector:
        return self._send_conflict

    def _close_now(self) -> None:
        """Forceful close: no close_notify, the transport closed at once."""
        if not self._state.closed:
            self._state.close()
            close_now(self.transport_stream)
