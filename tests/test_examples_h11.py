"""examples/h11_server.py, the HTTP/1.1 server on pystream and h11, driven
by curl: keep-alive, a file sent with send_file, request bodies, a chunked
streamed response, TLS."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import pytest

from test_real_peers import EXAMPLES, TIMEOUT

FILE_SIZE = 5 * 1024 * 1024 + 17


class Server:
    def __init__(self, root, *tls: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(EXAMPLES, "h11_server.py"), "--root", str(root),
             "--port", "0", *tls],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        line = self.process.stdout.readline().decode()
        match = re.match(r"serving (https?) on port (\d+)", line)
        if match is None:
            self.stop()
            raise AssertionError(f"the server did not start: {line!r} {self.stderr!r}")
        self.base = f"{match[1]}://localhost:{match[2]}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.stderr = self.process.stderr.read().decode()
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    body = os.urandom(FILE_SIZE)
    (root / "big.bin").write_bytes(body)
    (root / "small.txt").write_bytes(b"small file\n")
    return root, body


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    base = tmp_path_factory.mktemp("cert")
    cert, key = base / "cert.pem", base / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture(params=["http", "https"])
def server(request, files, certificate):
    tls = ["--cert", certificate[0], "--key", certificate[1]] if request.param == "https" else []
    running = Server(files[0], *tls)
    yield running
    running.stop()
    # No traceback: every connection ended cleanly.
    assert "Traceback" not in running.stderr, running.stderr


# curl is the peer, not our code: without the sanitized run's LD_PRELOAD
# of ASan's runtime, under which curl hangs.
CURL_ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}


def curl(server, *args: str) -> subprocess.CompletedProcess:
    tls = ["--cacert", server.certificate] if server.base.startswith("https") else []
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", *tls, *args],
        capture_output=True, timeout=TIMEOUT, check=True, env=CURL_ENV,
    )  # fmt: skip


@pytest.fixture
def client(server, certificate):
    server.certificate = certificate[0]
    return server


def test_file_download_and_keep_alive(client, files):
    root, body = files
    out = client.base + "/files/big.bin"
    done = curl(client, "--verbose", out, client.base + "/files/small.txt", "-o", "-", "-o", "-")
    assert done.stdout == body + b"small file\n"
    assert hashlib.sha256(done.stdout[:FILE_SIZE]).digest() == hashlib.sha256(body).digest()
    # Two requests, one connection.
    assert done.stderr.count(b"Connected to") == 1
    assert re.search(rb"Re-?using existing", done.stderr), done.stderr.decode()


def test_request_bodies(client, tmp_path):
    upload = tmp_path / "upload.bin"
    data = os.urandom(3 * 1024 * 1024 + 5)
    upload.write_bytes(data)
    # Over 1 KiB, curl sends "Expect: 100-continue"; h11 and the server
    # answer it at once.
    done = curl(client, "--data-binary", f"@{upload}", client.base + "/sha256")
    assert done.stdout.decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}\n"
    # A chunked request body.
    done = curl(
        client,
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "hello",
        client.base + "/sha256",
    )
    assert done.stdout.decode() == f"5 {hashlib.sha256(b'hello').hexdigest()}\n"


def test_streamed_chunked_response(client):
    done = curl(client, "--include", client.base + "/count?n=1000")
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"".join(b"line %d\n" % i for i in range(1000))


def test_not_found_keeps_the_connection(client):
    done = subprocess.run(
        ["curl", "--silent", "--verbose", "--write-out", "%{http_code}\n",
         *(["--cacert", client.certificate] if client.base.startswith("https") else []),
         client.base + "/files/../../etc/passwd", client.base + "/files/small.txt"],
        capture_output=True, timeout=TIMEOUT, env=CURL_ENV,
    )  # fmt: skip
    assert done.stdout.endswith(b"404\nsmall file\n200\n")
    assert done.stderr.count(b"Connected to") == 1
