"""``TLSConnection``: the one object that moves bytes between OpenSSL and
the transport for a ``TLSStream`` (``_tls.py``, the API on top, which
holds one).

It owns the TLS object (``ssl.SSLObject`` over two ``MemoryBIO``s), the
locks on the transport's two directions, the flush in flight and what
TLS knows beyond the state table: the handshake done, the transport's
send failure, the peer's close_notify seen.  The stream's ``StreamState``
and pushback buffer are shared with the stream.

One task at a time sends the TLS object's output to the transport (the
flush) and one reads the transport into it (the feed, which a second
reader waits for rather than duplicates).  There are two ways to flush:

- ``flush``: shielded, in a task of its own, for the handshake's,
  close_notify's and a reader's records: a cancelled caller never cuts
  those, so the stream stays usable;
- ``flush_from_writer``: ``send_all``'s, from the caller's task (asyncio's
  ``SSLProtocol`` takes no task either); a cancellation there breaks the
  stream, as a cancelled TLS write does in any case.

Both move the bytes with ``_send_out``.  ``_retry`` runs a TLS call until
it completes: ``_tls_openssl.attempt`` calls OpenSSL once and classifies
the outcome, ``_retry`` moves the bytes that outcome asks for.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Callable, NoReturn, Optional

from .._base._errors import BrokenResourceError, ClosedResourceError
from .._base._state import StreamState, closed_during_call
from .._base._util import CHECKPOINT
from ..abc import Stream
from ._tls_openssl import (
    CLEAN_END,
    DONE,
    FAILED,
    HANDSHAKE,
    READ,
    UNWRAP,
    WRITE,
    attempt,
    clear_openssl_errors,
    write_close_notify,
)

__all__ = ["TLSConnection"]

# What one feed asks the transport for.
_RECEIVE_SIZE = 65536


class TLSConnection:
    """The TLS object and the bytes it moves over ``transport``."""

    def __init__(
        self,
        transport: Stream,
        ssl_context: ssl.SSLContext,
        state: StreamState,
        pushback: bytearray,
        *,
        server_side: bool,
        server_hostname: Optional[str],
    ) -> None:
        self.transport = transport
        # The transport's try_send, or None for a duck-typed stream without it.
        self._try_send: Optional[Callable[[bytes], int]] = (
            transport.try_send if isinstance(transport, Stream) else None
        )
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.ssl = ssl_context.wrap_bio(
            self.incoming,
            self.outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
        )
        self.state = state
        self.pushback = pushback
        self.handshake_done = False
        self._handshake_lock = asyncio.Lock()
        self.send_lock = asyncio.Lock()
        # Whether a task is receiving from the transport (feeding), and the
        # other readers waiting for it to finish (rare: one reader at a time
        # is the rule, but a send's handshake or unwrap reads too).
        self._feeding = False
        self._feed_waiters: list[asyncio.Future[None]] = []
        self._sending: Optional[asyncio.Future[None]] = None  # a flush
        # Why the transport failed to send: sending is broken then, but
        # what the peer sent before can still be received.
        self.send_failure: Optional[BaseException] = None
        self.close_notify_seen = False

    # -- state ------------------------------------------------------------
    def check_usable(self) -> None:
        self.state.check_receive()

    def check_send_usable(self) -> None:
        self.state.check_send()  # first: a send says what broke sending
        self.state.check_receive()

    def break_both(self, cause: Optional[BaseException]) -> None:
        """A TLS error or a cut write: both directions break."""
        self.state.break_send(cause)
        self.state.break_receive(cause)

    # -- the calls TLSStream makes -------------------------------------------
    async def handshake(self) -> None:
        """Do the handshake unless it is done (one task does it; others
        wait for it)."""
        if self.handshake_done:
            return
        async with self._handshake_lock:
            if not self.handshake_done:
                self.check_usable()
                await self._retry(HANDSHAKE)
                self.handshake_done = True

    async def write_all(self, view: memoryview) -> None:
        while view.nbytes:
            written = await self._retry(WRITE, view)
            view = view[written:]

    async def receive(self, max_bytes: int, checkpoint: bool) -> bytes:
        """Up to max_bytes of plaintext: one record, read as ``_retry``
        reads, then every further record already in the incoming buffer
        (``SSLObject.read`` returns one record per call, 16 KiB at most).
        What stops the further reads is for the next call to meet, after
        this data: the peer's close_notify, or a TLS error, which breaks
        the stream at once (its alert goes out now).  With checkpoint, the
        call is the caller's checkpoint (see ``_retry``)."""
        data: bytes = await self._retry(READ, max_bytes, checkpoint=checkpoint)
        got = len(data)
        if not got or got >= max_bytes or self.nothing_to_decrypt():
            return data
        chunks = [data]
        read = self.ssl.read
        while got < max_bytes and not self.nothing_to_decrypt():
            try:
                more = read(max_bytes - got)
            except ssl.SSLWantReadError:
                break  # part of a record
            except ssl.SSLZeroReturnError:
                clear_openssl_errors()
                self.clean_eof()  # records the close_notify, if it is one
                break
            except (ssl.SSLError, ssl.CertificateError) as exc:
                clear_openssl_errors()
                self.break_both(exc)
                break
            if not more:  # the close_notify (SSLObject.read says b""): record it
                self.clean_eof()
                break
            chunks.append(more)
            got += len(more)
        if self.outgoing.pending:  # what the reads wrote (an alert, a reply)
            await self.flush(wait=False)
        return b"".join(chunks)

    async def unwrap(self) -> bytes:
        """Send close_notify, wait for the peer's: what came after it."""
        await self._retry(UNWRAP)
        return self.incoming.read()

    async def send_close_notify(self) -> None:
        """aclose's close_notify, from the caller's task (aclose bounds its
        time and closes the transport forcefully if it runs out)."""
        write_close_notify(self)
        async with self.send_lock:
            await self._send_out()

    # -- flushing -----------------------------------------------------------
    async def flush(self, wait: bool = True) -> None:
        """Send what the TLS object wrote, in order, shielded.

        A caller cancelled meanwhile leaves the sending to finish in the
        background (the next flush waits for it), so the peer never gets
        part of a record and the stream stays usable.  With wait False (a
        reader), leave it to a flush already running: waiting for it could
        deadlock two peers that both send while their readers wait; and a
        reader never waits for its own flush either (the bytes in the TLS
        object may be a writer's, queued behind a full socket).
        """
        if not self.outgoing.pending:
            return
        if self.send_failure is not None:
            self.outgoing.read()  # the transport takes no more: drop it
            if wait:
                self.check_usable()
                raise self.state.send_error()  # its cause: the failure
            return
        if not wait and self.send_lock.locked():
            return

        async def send_pending() -> None:
            async with self.send_lock:
                await self._send_out()

        sending = asyncio.ensure_future(send_pending())
        sending.add_done_callback(self._sent)
        self._sending = sending
        if wait:
            await asyncio.shield(sending)

    def _sent(self, sending: asyncio.Future[None]) -> None:
        if self._sending is sending:
            self._sending = None
        if not sending.cancelled():
            sending.exception()  # retrieved: it is send_failure now

    async def flush_from_writer(self) -> None:
        """``send_all``'s flush: from the caller's task when no other flush
        is running (the usual case), without a task or a shield; and when
        the transport's kernel takes the records at once, without the lock.
        Cut by a cancellation, it leaves the stream broken, as a cancelled
        write does anyway (``_retry``)."""
        if self._sending is not None or self.send_lock.locked() or self.send_failure is not None:
            await self.flush()
            return
        data = self.outgoing.read()
        if not data:
            return
        write_now = self._try_send
        if write_now is not None:
            data = data[write_now(data) :]  # nothing awaited: still in order
            if not data:
                return
        async with self.send_lock:
            await self._send_out(data)

    async def _send_out(self, first: bytes = b"") -> None:
        """Send first, then the TLS object's output, until it has none; the
        caller holds the send lock.  A failure is recorded (send_failure)
        and breaks sending only."""
        transport = self.transport
        # A pystream socket or pipe writes what the kernel takes at once
        # without a checkpoint of its own (the TLS call had one).
        write_now = self._try_send
        data = first
        try:
            while data or self.outgoing.pending:
                if not data:
                    data = self.outgoing.read()
                if write_now is not None:
                    data = data[write_now(data) :]
                if data:
                    await transport.send_all(data)
                    data = b""
        except (BrokenResourceError, ClosedResourceError) as exc:
            self.send_failure = exc
            error = self.state.send_failed(exc)
            self.outgoing.read()
            self.check_usable()
            raise error from exc

    # -- feeding ------------------------------------------------------------
    async def _feed(self) -> None:
        """Give the TLS object more bytes from the transport.  If another
        task is already receiving, wait for it instead: it feeds us both.
        (A flag and a list, not an ``asyncio.Lock``: this runs once per
        receive, and the lock's four Python calls cost more.)"""
        if self._feeding:
            waiter = asyncio.get_running_loop().create_future()
            self._feed_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._feed_waiters:  # cancelled before its turn
                    self._feed_waiters.remove(waiter)
            return
        self._feeding = True
        try:
            data = await self.transport.receive_some(_RECEIVE_SIZE)
        finally:
            self._feeding = False
            if self._feed_waiters:
                waiters, self._feed_waiters = self._feed_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def nothing_to_decrypt(self) -> bool:
        """Whether a further read could only ask for more bytes: none wait
        in the incoming buffer or decrypted in the TLS object, and no end
        was met.  (OpenSSL may hold more bytes than it decrypted, so True
        does not prove that a read would fail.)"""
        incoming = self.incoming
        return not (
            incoming.pending or incoming.eof or self.ssl.pending() or self.close_notify_seen
        )

    def clean_eof(self) -> bool:
        """Whether the end of data a read met is the peer's close_notify.

        It is, unless the transport's EOF was fed before any close_notify
        was seen: then the context has OP_IGNORE_UNEXPECTED_EOF (PyPy's
        default), which reports a truncated stream as a clean end.  (A whole
        close_notify record is processed before we feed more, so a real one
        is always seen before the transport's EOF behind it.)"""
        if not self.close_notify_seen and self.incoming.eof:
            return False
        self.close_notify_seen = True
        return True

    # -- the loop around one TLS call --------------------------------------
    async def _retry(self, call: int, arg: Any = None, *, checkpoint: bool = False) -> Any:
        """Run a TLS call until it finishes, moving bytes as it asks.

        With checkpoint, the call is the caller's checkpoint: unless it
        waited for the transport (whose calls are checkpoints), it yields
        once before it returns or raises.  (A read whose result that yield
        cancels leaves the bytes in the pushback buffer: nothing is lost.)
        """
        waited = not checkpoint
        fed = False
        try:
            while True:
                outcome, result = attempt(self, call, arg, fed)
                if outcome == FAILED:
                    await self._fail(result, checkpoint=not waited)
                if outcome == CLEAN_END:
                    if not waited:
                        await CHECKPOINT  # cancelled: the next read ends too
                    return result

                # The call may have written records, whatever its outcome
                # (a handshake message, an alert, a write's data, a
                # session ticket's reply): send them before anything else,
                # so the peer, which may be waiting for them, can answer.
                try:
                    if call == WRITE:
                        await self.flush_from_writer()
                    elif self.outgoing.pending:  # (a read seldom writes)
                        await self.flush(wait=call != READ)
                except BrokenResourceError:
                    if call == WRITE or call == UNWRAP:
                        raise
                    # The peer stopped reading (it may have closed right
                    # after its last bytes, before our TLS 1.3 session
                    # tickets): keep receiving what it sent.

                if outcome == DONE:
                    if not waited:
                        # Another task's send_eof may add later bytes to
                        # the pushback buffer during the yield: keep this
                        # read's in front of them.
                        mark = len(self.pushback)
                        try:
                            await CHECKPOINT
                        except asyncio.CancelledError:
                            if call == READ:
                                self.pushback[mark:mark] = result
                            raise
                    return result

                # It wants more bytes from the peer: wait for them (a
                # checkpoint), then call again.
                await self._feed()
                waited = fed = True
        except asyncio.CancelledError:
            # Waiting for the peer loses nothing (the transport keeps its
            # bytes, and TLS resumes where it stopped), except for a write:
            # OpenSSL wants it retried with the same data, and its records
            # may have been cut on the way out.  So a write breaks here.
            if call == WRITE:
                self.break_both(None)
            raise
        except (BrokenResourceError, ClosedResourceError) as exc:
            if self.state.closed:
                raise closed_during_call() from None
            if self.send_failure is None or exc.__cause__ is not self.send_failure:
                self.break_both(exc.__cause__ or exc)  # not only sending failed
            if not waited:  # the transport raised before it yielded
                await CHECKPOINT
            raise

    async def _fail(self, exc: BaseException, checkpoint: bool = False) -> NoReturn:
        """A TLS error: break, send the alert if there is one (the peer may
        be gone already), then (with checkpoint) yield, and raise.
        Cancelled anywhere, the stream is broken already and the alert on
        its way."""
        clear_openssl_errors()
        error = self.state.both_failed(exc, "talking TLS")
        try:
            await self.flush()
        except (BrokenResourceError, ClosedResourceError):
            pass
        if checkpoint:
            await CHECKPOINT
        raise error from exc
