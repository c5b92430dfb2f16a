"""pystream against real peers on loopback: nginx, redis-server, openssl and
socat, each started by the test, driven by the programs in examples/.
scripts/bootstrap --test installs them."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time

from tls_helpers import certificate_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen) -> None:
    """Wait (up to 20 s) until a peer process accepts connections."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the peer exited with {process.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


def example(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, args[0]), *args[1:]],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
        **kwargs,
    )


class Peer:
    """A server process, stopped at the end of the with block."""

    def __init__(self, *argv: str, port: int) -> None:
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.port = port

    def __enter__(self) -> Peer:
        try:
            wait_listening(self.port, self.process)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()


def test_http_get_from_nginx(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    body = os.urandom(8 * 1024 * 1024 + 123)
    (root / "big.bin").write_bytes(body)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    temp = tmp_path / "temp"
    temp.mkdir()
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {temp};
    proxy_temp_path {temp};
    fastcgi_temp_path {temp};
    uwsgi_temp_path {temp};
    scgi_temp_path {temp};
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    with Peer("nginx", "-c", str(conf), "-p", str(tmp_path), port=port):
        out = example("http_get.py", f"http://127.0.0.1:{port}/big.bin").stdout.decode()
    assert out.strip() == (
        f"status 200, {len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()}"
    )


def test_resp_client_with_redis(tmp_path):
    port = free_port()
    with Peer(
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
        port=port,
    ):
        out = example("resp_client.py", "127.0.0.1", str(port)).stdout.decode()
    assert out.splitlines() == [
        "PING: PONG",
        "SET/GET of 1 MiB: the same bytes back",
        "1000 pipelined INCRs: 1..1000 in order",
    ]


def test_resp_client_fails_on_a_wrong_reply():
    # The example's checks are real: a peer that answers GET with other
    # bytes makes it exit non-zero, also under python -O (no asserts).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def wrong_redis():
            # Every reply it expects, in order, but GET's.
            replies = b"+PONG\r\n+OK\r\n$3\r\nabc\r\n:1\r\n" + b"".join(
                b":%d\r\n" % i for i in range(1, 1001)
            )
            conn, _ = listener.accept()
            with conn:
                conn.sendall(replies)
                try:
                    while conn.recv(1 << 16):  # take the 1 MiB SET, until EOF
                        pass
                except OSError:
                    pass

        peer = threading.Thread(target=wrong_redis)
        peer.start()
        try:
            result = subprocess.run(
                [
                    sys.executable,
                    "-O",
                    os.path.join(EXAMPLES, "resp_client.py"),
                    "127.0.0.1",
                    str(listener.getsockname()[1]),
                ],
                capture_output=True,
                timeout=TIMEOUT,
            )
        finally:
            peer.join(TIMEOUT)
    assert result.returncode != 0, "the example accepted a wrong GET reply"
    assert b"GET: unexpected reply b'abc'" in result.stderr, result.stderr[-2000:]


def test_tls_client_against_openssl_s_server():
    cert, key = certificate_files()
    port = free_port()
    with Peer(
        "openssl",
        "s_server",
        "-accept",
        str(port),
        "-cert",
        cert,
        "-key",
        key,
        "-rev",
        "-quiet",
        port=port,
    ):
        out = example(
            "tls_echo.py",
            "connect",
            "localhost",
            str(port),
            "--cafile",
            cert,
            input=b"hello pystream\n",
        ).stdout
    assert out == b"maertsyp olleh\n"  # -rev sends each line back reversed


def test_tls_server_checked_with_openssl_s_client():
    cert, key = certificate_files()
    server = subprocess.Popen(
        [
            sys.executable,
            os.path.join(EXAMPLES, "tls_echo.py"),
            "serve",
            "--port",
            "0",
            "--cert",
            cert,
            "--key",
            key,
        ],
        stdout=subprocess.PIPE,
    )
    try:
        port = int(re.search(rb"port (\d+)", server.stdout.readline()).group(1))
        client = subprocess.Popen(
            [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{port}",
                "-servername",
                "localhost",
                "-CAfile",
                cert,
                "-verify_return_error",
                "-quiet",
                "-ign_eof",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            message = b"through openssl s_client\n"
            client.stdin.write(message)
            client.stdin.flush()
            assert client.stdout.read(len(message)) == message
        finally:
            client.kill()
            client.wait()
            for pipe in (client.stdin, client.stdout, client.stderr):
                pipe.close()
    finally:
        server.terminate()
        server.wait(10)
        server.stdout.close()


def test_echo_server_fed_a_large_file_through_socat(tmp_path):
    data = os.urandom(32 * 1024 * 1024)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    server = subprocess.Popen(
        [sys.executable, os.path.join(EXAMPLES, "echo_server.py"), "--port", "0"],
        stdout=subprocess.PIPE,
    )
    try:
        port = int(re.search(rb"port (\d+)", server.stdout.readline()).group(1))
        with open(source, "rb") as stdin:
            echoed = subprocess.run(
                ["socat", "-t", "30", "-", f"TCP:127.0.0.1:{port}"],
                stdin=stdin,
                capture_output=True,
                timeout=TIMEOUT,
                check=True,
            ).stdout
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
    finally:
        server.terminate()
        server.wait(10)
        server.stdout.close()
