"""The engine of ``TLSStream``: moving bytes between the TLS object
(``ssl.SSLObject`` over two ``MemoryBIO``s) and the transport stream, and
the state rules TLS adds to the table in ``_state``.

One task at a time sends the TLS object's output to the transport (the
flush; a handshake's or close_notify's is shielded, so a cancelled caller
never cuts those records and the stream stays usable) and one reads
the transport into it (the feed, which a second reader waits for rather
than duplicates).  ``_retry`` runs a TLS call until it completes, flushing
and feeding as it asks.  ``TLSStream`` (``_tls.py``) is the API on top.

The common cases take no task of their own, as asyncio's ``SSLProtocol``
takes none: ``send_all`` sends its records from the caller's task (a
cancellation there breaks the stream in any case), and a receive decrypts
every complete record the transport's bytes hold, up to ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import importlib
import platform
import ssl
from typing import Any, Callable, NoReturn, Optional

from .._base._errors import BrokenResourceError, ClosedResourceError
from .._base._state import StreamState
from .._base._util import CHECKPOINT
from ..abc import Stream

__all__ = ["TLSEngine", "clear_openssl_errors"]


def _openssl_error_clearer() -> Any:
    """PyPy's ``ssl`` leaves a failed call's errors in OpenSSL's
    per-thread queue, where the next TLS call in the thread, on any
    connection, finds them and fails (until an ``SSLObject`` is made).
    CPython's clears them itself."""
    if platform.python_implementation() != "PyPy":
        return lambda: None
    try:
        return importlib.import_module("_cffi_ssl._stdssl").lib.ERR_clear_error
    except (ImportError, AttributeError):  # pragma: no cover - another PyPy
        return lambda: None


#: Call after catching an ``ssl.SSLError`` (other than a want-read).
clear_openssl_errors = _openssl_error_clearer()

_RECEIVE_SIZE = 65536


class TLSEngine:
    """The engine's methods; ``TLSStream.__init__`` makes its state."""

    transport_stream: Stream
    _ssl: ssl.SSLObject
    _incoming: ssl.MemoryBIO
    _outgoing: ssl.MemoryBIO
    _state: StreamState
    # The transport's try_send, or None for a duck-typed stream without it.
    _try_send: Optional[Callable[[bytes], int]]
    _transport_send_lock: asyncio.Lock
    _transport_receive_lock: asyncio.Lock
    _sending: Optional[asyncio.Future[None]]
    _send_failure: Optional[BaseException]
    _close_notify_seen: bool
    _pushback: bytearray

    # -- state ------------------------------------------------------------
    def _check_usable(self) -> None:
        self._state.check_receive()

    def _check_send_usable(self) -> None:
        self._state.check_send()  # first: a send says what broke sending
        self._state.check_receive()

    def _break(self, cause: Optional[BaseException]) -> None:
        """A TLS error or a cut write: both directions break."""
        self._state.break_send(cause)
        self._state.break_receive(cause)

    # -- the engine -------------------------------------------------------
    async def _flush(self, wait: bool = True) -> None:
        """Send what the TLS object wrote, in order.

        The sending runs shielded: a caller cancelled meanwhile leaves it to
        finish in the background (the next flush waits for it), so the peer
        never gets part of a record and the stream stays usable.  With wait
        False (a reader), leave it to a flush already running: waiting for it
        could deadlock two peers that both send while their readers wait;
        and a reader never waits for its own flush either (the bytes in the
        TLS object may be a writer's, queued behind a full socket).
        """
        if not self._outgoing.pending:
            return
        if self._send_failure is not None:
            self._outgoing.read()  # the transport takes no more: drop it
            if wait:
                self._check_usable()
                raise self._state.send_error()  # its cause: the failure
            return
        if not wait and self._transport_send_lock.locked():
            return
        sending = asyncio.ensure_future(self._send_pending())
        sending.add_done_callback(self._sent)
        self._sending = sending
        if wait:
            await asyncio.shield(sending)

    async def _send_pending(self) -> None:
        async with self._transport_send_lock:
            await self._send_out()

    async def _send_out(self, first: bytes = b"") -> None:
        """Send first, then the TLS object's output; the caller holds the
        send lock."""
        transport = self.transport_stream
        # A pystream socket or pipe writes what the kernel takes at once
        # without a checkpoint of its own (the TLS call had one).
        write_now = self._try_send
        data = first
        try:
            while data or self._outgoing.pending:
                if not data:
                    data = self._outgoing.read()
                if write_now is not None:
                    data = data[write_now(data) :]
                if data:
                    await transport.send_all(data)
                    data = b""
        except (BrokenResourceError, ClosedResourceError) as exc:
            self._send_failure = exc
            error = self._state.send_failed(exc)
            self._outgoing.read()
            self._check_usable()
            raise error from exc

    async def _flush_from_writer(self) -> None:
        """``send_all``'s flush: from the caller's task when no other flush
        is running (the usual case), without a task or a shield; and when
        the transport's kernel takes the records at once, without the lock.
        Cut by a cancellation, it leaves the stream broken, as a cancelled
        write does anyway (``_retry``); the shield protects the handshake's
        and close_notify's records, after which the stream stays usable."""
        if (
            self._sending is not None
            or self._transport_send_lock.locked()
            or self._send_failure is not None
        ):
            await self._flush()
            return
        data = self._outgoing.read()
        if not data:
            return
        write_now = self._try_send
        if write_now is not None:
            data = data[write_now(data) :]  # nothing awaited: still in order
            if not data:
                return
        async with self._transport_send_lock:
            await self._send_out(data)

    def _sent(self, sending: asyncio.Future[None]) -> None:
        if self._sending is sending:
            self._sending = None
        if not sending.cancelled():
            sending.exception()  # retrieved: it is _send_failure now

    async def _feed(self) -> None:
        """Give the TLS object more bytes from the transport.  If another
        task is already receiving, wait for it instead: it feeds us both."""
        if self._transport_receive_lock.locked():
            async with self._transport_receive_lock:
                return
        async with self._transport_receive_lock:
            data = await self.transport_stream.receive_some(_RECEIVE_SIZE)
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()

    def _nothing_to_decrypt(self) -> bool:
        """Whether a further read could only ask for more bytes: none wait
        in the incoming buffer or decrypted in the TLS object, and no end
        was met.  (OpenSSL may hold more bytes than it decrypted, so True
        does not prove that a read would fail.)"""
        incoming = self._incoming
        return not (
            incoming.pending or incoming.eof or self._ssl.pending() or self._close_notify_seen
        )

    async def _receive_records(self, max_bytes: int, checkpoint: bool) -> bytes:
        """Up to max_bytes of plaintext: one record, read as ``_retry``
        reads, then every further record already in the incoming buffer
        (``SSLObject.read`` returns one record per call, 16 KiB at most).
        What stops the further reads is for the next call to meet, after
        this data: the peer's close_notify, or a TLS error, which breaks
        the stream at once (its alert goes out now).  With checkpoint, the
        call is the caller's checkpoint (see ``_retry``)."""
        ssl_object = self._ssl
        data: bytes = await self._retry(ssl_object.read, max_bytes, checkpoint=checkpoint)
        got = len(data)
        if not got or got >= max_bytes or self._nothing_to_decrypt():
            return data
        chunks = [data]
        while got < max_bytes and not self._nothing_to_decrypt():
            try:
                more = ssl_object.read(max_bytes - got)
            except ssl.SSLWantReadError:
                break  # part of a record
            except ssl.SSLZeroReturnError:
                clear_openssl_errors()
                self._clean_eof()  # records the close_notify, if it is one
                break
            except (ssl.SSLError, ssl.CertificateError) as exc:
                clear_openssl_errors()
                self._break(exc)
                break
            if not more:  # the close_notify (SSLObject.read says b""): record it
                self._clean_eof()
                break
            chunks.append(more)
            got += len(more)
        if self._outgoing.pending:  # what the reads wrote (an alert, a reply)
            await self._flush(wait=False)
        return b"".join(chunks)

    async def _fail(self, exc: BaseException, checkpoint: bool = False) -> NoReturn:
        """A TLS error: break, send the alert if there is one, then (with
        checkpoint) yield, and raise.  Cancelled anywhere, the stream is
        broken already and the alert on its way."""
        clear_openssl_errors()
        error = self._state.both_failed(exc, "talking TLS")
        await self._flush_quietly()
        if checkpoint:
            await CHECKPOINT
        raise error from exc

    async def _retry(self, fn: Any, *args: Any, checkpoint: bool = False) -> Any:
        """Run a TLS call until it finishes, moving bytes as it asks.

        With checkpoint, the call is the caller's checkpoint: unless it
        waited for the transport (whose calls are checkpoints), it yields
        once before it returns or raises.  (A read whose result that yield
        cancels leaves the bytes in the pushback buffer: nothing is lost.)
        """
        reading = fn == self._ssl.read
        writing = fn == self._ssl.write
        waited = not checkpoint
        try:
            while True:
                # A read with nothing to decrypt could only ask for more
                # bytes, by raising SSLWantReadError: skip the call and its
                # exception (what an idle connection's receive meets first).
                want_read = reading and self._nothing_to_decrypt()
                try:
                    if not want_read:
                        result = fn(*args)
                        if reading and not result and not self._clean_eof():
                            raise ssl.SSLEOFError(
                                ssl.SSL_ERROR_EOF, "EOF without close_notify (truncated)"
                            )
                except ssl.SSLWantReadError:
                    want_read = True
                except ssl.SSLZeroReturnError as exc:
                    if reading and self._clean_eof():
                        clear_openssl_errors()
                        if not waited:
                            await CHECKPOINT  # cancelled: the next read ends too
                        return b""  # the peer's close_notify: a clean EOF
                    await self._fail(exc, checkpoint=not waited)
                except (ssl.SSLError, ssl.CertificateError) as exc:
                    await self._fail(exc, checkpoint=not waited)
                try:
                    if writing:
                        await self._flush_from_writer()
                    elif self._outgoing.pending:  # (a read seldom writes)
                        await self._flush(wait=not reading)
                except BrokenResourceError:
                    if writing or fn == self._ssl.unwrap:
                        raise
                    # The peer stopped reading (it may have closed right
                    # after its last bytes, before our TLS 1.3 session
                    # tickets): keep receiving what it sent.
                if not want_read:
                    if not waited:
                        # Another task's send_eof may add later bytes to
                        # the pushback buffer during the yield: keep this
                        # read's in front of them.
                        mark = len(self._pushback)
                        try:
                            await CHECKPOINT
                        except asyncio.CancelledError:
                            if reading:
                                self._pushback[mark:mark] = result
                            raise
                    return result
                await self._feed()
                waited = True
        except asyncio.CancelledError:
            # Waiting for the peer loses nothing (the transport keeps its
            # bytes, and TLS resumes where it stopped), except for a write:
            # OpenSSL wants it retried with the same data, and its records
            # may have been cut on the way out.  So a write breaks here.
            if writing:
                self._break(None)
            raise
        except (BrokenResourceError, ClosedResourceError) as exc:
            if self._state.closed:
                raise ClosedResourceError("the stream was closed during this call") from None
            if self._send_failure is None or exc.__cause__ is not self._send_failure:
                self._break(exc.__cause__ or exc)  # not only sending failed
            if not waited:  # the transport raised before it yielded
                await CHECKPOINT
            raise

    def _clean_eof(self) -> bool:
        """Whether the end of data a read met is the peer's close_notify.

        It is, unless the transport's EOF was fed before any close_notify
        was seen: then the context has OP_IGNORE_UNEXPECTED_EOF (PyPy's
        default), which reports a truncated stream as a clean end.  (A whole
        close_notify record is processed before we feed more, so a real one
        is always seen before the transport's EOF behind it.)"""
        if not self._close_notify_seen and self._incoming.eof:
            return False
        self._close_notify_seen = True
        return True

    async def _flush_quietly(self) -> None:
        # Send a TLS alert if there is one; the peer may already be gone.
        try:
            await self._flush()
        except (BrokenResourceError, ClosedResourceError):
            pass
