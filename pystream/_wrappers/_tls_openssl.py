"""One call to OpenSSL for a ``TLSConnection`` (``_tls_engine``), and
what it came to: the half of Trio's ``_retry`` that calls the TLS object
and classifies the outcome.  The other half, moving the bytes the outcome
asks for, is ``TLSConnection._retry``.  And writing close_notify without
reading on, which takes more than one call."""

from __future__ import annotations

import importlib
import platform
import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._tls_engine import TLSConnection

__all__ = [
    "attempt",
    "clear_openssl_errors",
    "DONE",
    "WANT_READ",
    "CLEAN_END",
    "FAILED",
    "READ",
    "WRITE",
    "HANDSHAKE",
    "UNWRAP",
    "write_close_notify",
]


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


# What one call to OpenSSL came to.
DONE = 0  # it completed: its result
WANT_READ = 1  # it needs more bytes from the peer
CLEAN_END = 2  # a read met the peer's close_notify
FAILED = 3  # a TLS error: its exception

# The TLS calls there are.
READ, WRITE, HANDSHAKE, UNWRAP = range(4)


def attempt(conn: TLSConnection, call: int, arg: Any, fed: bool = False) -> tuple[int, Any]:
    """Call OpenSSL once for conn; return what it came to and its result
    (or its exception, for FAILED).  fed: the transport's bytes (or its
    end) were just given to the TLS object."""
    ssl_object = conn.ssl
    if call == READ:
        # A read with nothing to decrypt could only ask for more bytes,
        # by raising SSLWantReadError: skip the call and its exception
        # (what an idle connection's receive meets first).  Right after a
        # feed there is something: no need to ask.
        if not fed and conn.nothing_to_decrypt():
            return WANT_READ, None
        try:
            result = ssl_object.read(arg)
        except ssl.SSLWantReadError:
            return WANT_READ, None
        except ssl.SSLZeroReturnError as exc:
            if conn.clean_eof():
                clear_openssl_errors()
                return CLEAN_END, b""  # the peer's close_notify
            return FAILED, exc
        except (ssl.SSLError, ssl.CertificateError) as exc:
            return FAILED, exc
        if not result and not conn.clean_eof():
            # PyPy's OP_IGNORE_UNEXPECTED_EOF says b"" for a truncation.
            return FAILED, ssl.SSLEOFError(
                ssl.SSL_ERROR_EOF, "EOF without close_notify (truncated)"
            )
        return DONE, result
    try:
        if call == WRITE:
            return DONE, ssl_object.write(arg)
        if call == HANDSHAKE:
            ssl_object.do_handshake()
        else:
            ssl_object.unwrap()
        return DONE, None
    except ssl.SSLWantReadError:
        return WANT_READ, None
    except (ssl.SSLError, ssl.CertificateError) as exc:
        return FAILED, exc


def write_close_notify(conn: TLSConnection) -> None:
    """Put conn's close_notify in its outgoing buffer.

    unwrap() writes close_notify, then reads on, looking for the
    peer's: it would eat (and fail on) application data not yet
    received, which send_eof's caller still wants.  So it runs with
    nothing to read: the decrypted bytes go to the pushback buffer,
    where receives find them first, and the undecrypted ones are held
    and put back.  (With EOF written, the incoming buffer holds at most
    part of a record.)  The failure would also linger in OpenSSL's
    error queue on PyPy and fail the next TLS call in the thread."""
    while conn.ssl.pending():
        conn.pushback += conn.ssl.read(conn.ssl.pending())
    held = b"" if conn.incoming.eof else conn.incoming.read()
    try:
        conn.ssl.unwrap()
        conn.close_notify_seen = True  # both ways: the peer's was read
    except ssl.SSLError:
        clear_openssl_errors()  # it wants the peer's: ours is written
    if held:
        conn.incoming.write(held)
