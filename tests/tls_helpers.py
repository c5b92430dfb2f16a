"""A throwaway certificate for localhost, made with the openssl command."""

from __future__ import annotations

import functools
import os
import ssl
import subprocess
import tempfile


@functools.cache
def certificate_files() -> tuple[str, str]:
    """(certificate, key) PEM paths: self-signed, for localhost and
    127.0.0.1, valid for a day."""
    directory = tempfile.mkdtemp(prefix="pystream-tls-")
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context() -> ssl.SSLContext:
    cert, key = certificate_files()
    # A server context for sure (create_default_context makes a generic one
    # on PyPy, where num_tickets then refuses to be set).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def client_context() -> ssl.SSLContext:
    cert, _ = certificate_files()
    context = ssl.create_default_context(cafile=cert)
    return context
