"""httpx and httpcore on pystream (pystream.interop.httpcore), against a
real nginx on loopback: HTTP and HTTPS (a self-signed certificate made by
openssl here), keep-alive, idle connections the server closes, chunked
bodies, a 100 MB download, cancellation mid-body."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import subprocess
import time

import httpcore
import httpx
import pytest

from pystream.interop.httpcore import PystreamBackend, PystreamNetworkStream, httpx_transport

from test_real_peers import Peer, free_port

BIG = 100 * 1024 * 1024


class Nginx:
    def __init__(self, base) -> None:
        self.base = base
        self.http = free_port()
        self.https = free_port()
        self.idle = free_port()
        root = base / "www"
        root.mkdir()
        self.small = os.urandom(1000)
        (root / "small.bin").write_bytes(self.small)
        self.text = b"".join(b"line %d of a text nginx compresses\n" % i for i in range(20000))
        (root / "text.txt").write_bytes(self.text)
        big = os.urandom(1024 * 1024)
        digest = hashlib.sha256()
        with open(root / "big.bin", "wb") as f:
            for i in range(BIG // len(big)):
                chunk = big[i:] + big[:i]
                f.write(chunk)
                digest.update(chunk)
        self.big_sha256 = digest.hexdigest()
        self.cert = base / "cert.pem"
        key = base / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(key), "-out", str(self.cert), "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        temp = base / "temp"
        temp.mkdir()
        conf = base / "nginx.conf"
        conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp};
    proxy_temp_path {temp};
    fastcgi_temp_path {temp};
    uwsgi_temp_path {temp};
    scgi_temp_path {temp};
    default_type application/octet-stream;
    types {{ text/plain txt; }}
    gzip on;
    gzip_types text/plain;
    gzip_min_length 0;
    root {root};
    server {{ listen 127.0.0.1:{self.http}; }}
    server {{
        listen 127.0.0.1:{self.https} ssl http2;
        ssl_certificate {self.cert};
        ssl_certificate_key {key};
    }}
    server {{ listen 127.0.0.1:{self.idle}; keepalive_timeout 200ms; }}
}}
""")
        self.peer = Peer("nginx", "-c", str(conf), "-p", str(base), port=self.http)

    def url(self, path: str, port: int = 0) -> str:
        return f"http://127.0.0.1:{port or self.http}{path}"

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    server = Nginx(tmp_path_factory.mktemp("nginx"))
    with server.peer:
        yield server


def client_addr(response: httpx.Response) -> object:
    return response.extensions["network_stream"].get_extra_info("client_addr")


async def test_http_keep_alive_reuses_one_connection(nginx):
    async with httpx.AsyncClient(transport=httpx_transport()) as client:
        first = await client.get(nginx.url("/small.bin"))
        first_addr = client_addr(first)
        second = await client.get(nginx.url("/small.bin"))
        missing = await client.get(nginx.url("/nothing-here"))
        assert first_addr == client_addr(second) == client_addr(missing)
        stream = first.extensions["network_stream"]
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", nginx.http)
        assert stream.get_extra_info("ssl_object") is None
    assert first.status_code == second.status_code == 200
    assert first.content == second.content == nginx.small
    assert missing.status_code == 404


async def test_https_with_a_self_signed_certificate(nginx):
    url = f"https://localhost:{nginx.https}/small.bin"
    async with httpx.AsyncClient(transport=httpx_transport(verify=nginx.tls_context())) as client:
        first = await client.get(url)
        second = await client.get(url)
        assert first.content == second.content == nginx.small
        ssl_object = first.extensions["network_stream"].get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
        assert client_addr(first) == client_addr(second)
    # httpx's default trust store does not know the certificate: a
    # ConnectError carrying the verification failure, nothing left open.
    async with httpx.AsyncClient(transport=httpx_transport()) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(url)


async def test_http2_multiplexes_on_one_tls_connection(nginx):
    url = f"https://localhost:{nginx.https}/small.bin"
    transport = httpx_transport(verify=nginx.tls_context(), http2=True, http1=False)
    async with httpx.AsyncClient(transport=transport) as client:
        responses = await asyncio.gather(*(client.get(url) for _ in range(20)))
        addresses = {client_addr(response) for response in responses}
        ssl_object = responses[0].extensions["network_stream"].get_extra_info("ssl_object")
        assert ssl_object.selected_alpn_protocol() == "h2"
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert all(r.content == nginx.small for r in responses)
    assert len(addresses) == 1


async def test_pool_limits_and_retries_are_httpxs(nginx):
    # limits: one connection for ten concurrent requests.
    transport = httpx_transport(limits=httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(transport=transport) as client:
        responses = await asyncio.gather(*(client.get(nginx.url("/small.bin")) for _ in range(10)))
        assert len({client_addr(r) for r in responses}) == 1
    # retries: a refused connection is tried 1 + retries times.
    attempts = 0
    backend = PystreamBackend()
    connect_tcp = backend.connect_tcp

    async def counting(*args, **kwargs):
        nonlocal attempts
        attempts += 1
        return await connect_tcp(*args, **kwargs)

    transport = httpx_transport(retries=2)
    transport._pool._network_backend = backend
    backend.connect_tcp = counting
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/")
    assert attempts == 3


async def test_chunked_gzip_body(nginx):
    async with httpx.AsyncClient(transport=httpx_transport()) as client:
        response = await client.get(nginx.url("/text.txt"), headers={"accept-encoding": "gzip"})
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == nginx.text


@pytest.mark.patience(60)
async def test_100_mb_download_checked_by_sha256(nginx):
    digest = hashlib.sha256()
    size = 0
    async with httpx.AsyncClient(transport=httpx_transport()) as client:
        async with client.stream("GET", nginx.url("/big.bin")) as response:
            assert response.headers["content-length"] == str(BIG)
            async for chunk in response.aiter_raw():
                digest.update(chunk)
                size += len(chunk)
    assert size == BIG
    assert digest.hexdigest() == nginx.big_sha256


async def test_cancellation_mid_body_closes_the_connection(nginx):
    got = 0
    started = asyncio.Event()

    async def download(client: httpx.AsyncClient) -> None:
        nonlocal got
        async with client.stream("GET", nginx.url("/big.bin")) as response:
            async for chunk in response.aiter_raw():
                got += len(chunk)
                started.set()

    async with httpx.AsyncClient(transport=httpx_transport()) as client:
        task = asyncio.ensure_future(download(client))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert 0 < got < BIG
        # The half-read connection is not reused: the next request gets
        # its own, and its whole body.
        response = await client.get(nginx.url("/small.bin"))
        assert response.content == nginx.small
    # The conftest's teardown checks that no descriptor was left open.


async def test_a_connection_the_server_closed_while_idle_is_not_reused(nginx):
    async with httpx.AsyncClient(transport=httpx_transport()) as client:
        first = await client.get(nginx.url("/small.bin", nginx.idle))
        first_addr = client_addr(first)
        stream = first.extensions["network_stream"]
        deadline = time.monotonic() + 10
        while not stream.get_extra_info("is_readable"):
            assert time.monotonic() < deadline, "nginx never closed the idle connection"
            await asyncio.sleep(0.05)
        second = await client.get(nginx.url("/small.bin", nginx.idle))
        assert client_addr(second) != first_addr
    assert second.content == nginx.small


async def test_httpcore_pool_on_the_backend(nginx):
    async with httpcore.AsyncConnectionPool(network_backend=PystreamBackend()) as pool:
        response = await pool.request("GET", nginx.url("/small.bin"))
        assert response.status == 200
        assert response.content == nginx.small
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("is_readable") is False
        sock = stream.get_extra_info("socket")
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.getpeername() == ("127.0.0.1", nginx.http)


async def test_socket_options_and_local_address(nginx):
    backend = PystreamBackend()
    stream = await backend.connect_tcp(
        "127.0.0.1",
        nginx.http,
        timeout=5,
        local_address="127.0.0.1",
        socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)],
    )
    assert isinstance(stream, PystreamNetworkStream)
    try:
        sock = stream.get_extra_info("socket")
        assert stream.get_extra_info("socket") is sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        await stream.write(b"GET /small.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := await stream.read(65536, timeout=5):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert received.endswith(nginx.small)
    finally:
        await stream.aclose()


async def test_start_tls_by_hand(nginx):
    # What httpcore does for https: TCP, then start_tls on it.
    backend = PystreamBackend()
    plain = await backend.connect_tcp("127.0.0.1", nginx.https, timeout=5)
    sock = plain.get_extra_info("socket")  # handed to the TLS stream to close
    secure = await plain.start_tls(nginx.tls_context(), server_hostname="localhost", timeout=5)
    try:
        assert secure.get_extra_info("ssl_object").server_hostname == "localhost"
        assert secure.get_extra_info("server_addr") == ("127.0.0.1", nginx.https)
        await secure.write(b"GET /small.bin HTTP/1.1\r\nHost: localhost\r\n\r\n", timeout=5)
        assert (await secure.read(100, timeout=5)).startswith(b"HTTP/1.1 200")
    finally:
        await secure.aclose()
    assert sock.fileno() == -1
    # A handshake against a plain HTTP port fails as httpcore's ConnectError,
    # and closes the connection.
    plain = await backend.connect_tcp("127.0.0.1", nginx.http, timeout=5)
    with pytest.raises(httpcore.ConnectError):
        await plain.start_tls(nginx.tls_context(), server_hostname="localhost", timeout=5)


async def test_errors_are_httpcores(nginx, tmp_path):
    backend = PystreamBackend()
    with pytest.raises(httpcore.ConnectError) as info:
        await backend.connect_tcp("127.0.0.1", free_port(), timeout=5)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_unix_socket(str(tmp_path / "no-such-socket"))
    stream = await backend.connect_tcp("127.0.0.1", nginx.http)
    try:
        # Nothing to read: nginx waits for a request.
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(100, timeout=0.05)
        # The stream is still usable after the timeout.
        await stream.write(b"GET /small.bin HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
        assert (await stream.read(100, timeout=5)).startswith(b"HTTP/1.1 200")
    finally:
        await stream.aclose()
    with pytest.raises(httpcore.ReadError):
        await stream.read(100)
    with pytest.raises(httpcore.WriteError):
        await stream.write(b"x")


async def test_unix_socket_connection(tmp_path):
    import pystream

    path = str(tmp_path / "sock")
    listener = await pystream.open_unix_listener(path)

    async def answer() -> None:
        async with await listener.accept() as conn:
            request = await conn.readuntil(b"\r\n\r\n")
            assert request.startswith(b"GET /over-unix HTTP/1.1\r\n")
            await conn.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server = asyncio.ensure_future(answer())
    try:
        async with httpx.AsyncClient(transport=httpx_transport(uds=path)) as client:
            response = await client.get("http://localhost/over-unix")
        assert response.text == "ok"
        await server
    finally:
        server.cancel()
        await listener.aclose()


# -- is_readable, answered by the core (no nginx: a server in this test) ---


class OneShotServer:
    """A pystream HTTP server on loopback answering each connection's first
    request with ``ok``; on the first connection, once the test sets
    ``proceed`` (the connection idle in the client's pool), it does what
    ``after`` does (close it, send stray bytes, ...).  Counts the
    connections."""

    def __init__(self, after) -> None:
        self.after = after
        self.connections = 0
        self.proceed = asyncio.Event()
        self.done = asyncio.Event()

    async def __aenter__(self) -> OneShotServer:
        import pystream

        self.listener = (await pystream.open_tcp_listeners(0, host="127.0.0.1"))[0]
        self.url = f"http://127.0.0.1:{self.listener.local_address[1]}/"
        self.task = asyncio.ensure_future(pystream.serve_listeners(self.handle, [self.listener]))
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.done.set()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def handle(self, conn) -> None:
        self.connections += 1
        await conn.readuntil(b"\r\n\r\n")
        await conn.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        if self.connections == 1:
            await self.proceed.wait()
            await self.after(conn, self)
        else:
            await self.done.wait()


async def idle_stream(pool, url):
    """The network stream of a connection back in the pool after a GET."""
    response = await pool.request("GET", url)
    assert response.content == b"ok"
    stream = response.extensions["network_stream"]
    assert len(pool.connections) == 1 and pool.connections[0].is_idle()
    return stream


async def test_idle_connection_the_server_closed_is_readable_and_not_reused():
    from helpers import wait_until

    closed = asyncio.Event()

    async def close(conn, server) -> None:
        await conn.aclose()
        closed.set()

    async with OneShotServer(close) as server:
        async with httpcore.AsyncConnectionPool(network_backend=PystreamBackend()) as pool:
            stream = await idle_stream(pool, server.url)
            server.proceed.set()
            await closed.wait()
            # The core reads the FIN while nobody receives: the next libuv
            # pass records it.
            await wait_until(lambda: stream.get_extra_info("is_readable"), "the FIN seen")
            response = await pool.request("GET", server.url)
            assert response.content == b"ok"
            assert server.connections == 2, "the closed connection was reused"


async def test_idle_connection_with_bytes_buffered_in_the_core_is_readable():
    import select

    from helpers import wait_until

    sent = asyncio.Event()

    async def stray_bytes(conn, server) -> None:
        await conn.send_all(b"STRAY")
        sent.set()
        await server.done.wait()

    async with OneShotServer(stray_bytes) as server:
        async with httpcore.AsyncConnectionPool(network_backend=PystreamBackend()) as pool:
            stream = await idle_stream(pool, server.url)
            assert stream.get_extra_info("is_readable") is False
            server.proceed.set()
            await sent.wait()
            await wait_until(lambda: stream.get_extra_info("is_readable"), "the bytes seen")
            # They are in the core's buffer, no longer in the kernel's: a
            # poll of the descriptor (the old answer) would miss them.
            poller = select.poll()
            poller.register(stream.get_extra_info("socket"), select.POLLIN)
            assert poller.poll(0) == []
            response = await pool.request("GET", server.url)
            assert response.content == b"ok"
            assert server.connections == 2, "the connection with stray bytes was reused"


async def test_is_readable_of_a_tls_connection_sees_the_layers_underneath():
    from pystream.interop.httpcore import PystreamNetworkStream

    from helpers import wait_until
    from test_tls import handshaken, socket_pair_maker, tls_over

    client, server = await handshaken(tls_over(socket_pair_maker))()
    stream = PystreamNetworkStream(client)
    try:
        assert stream.get_extra_info("is_readable") is False
        await server.send_all(b"data")  # a record, in the socket's buffer
        await wait_until(lambda: stream.get_extra_info("is_readable"), "the record seen")
        assert await client.receive_some() == b"data"
        assert stream.get_extra_info("is_readable") is False
        await server.aclose()  # close_notify, then the FIN
        await wait_until(lambda: stream.get_extra_info("is_readable"), "close_notify seen")
    finally:
        await stream.aclose()
        await server.aclose()
    assert stream.get_extra_info("is_readable") is True  # closed: a read raises at once
