"""httpx GETs against nginx: pystream's backend against httpx's default.

Starts an nginx on loopback (a 1 KiB and a 1 MiB file), then runs rounds,
interleaved: in each round, for each backend, one client makes N
sequential keep-alive GETs of the small file (requests per second), then
the same with C concurrent tasks, then a few GETs of the large file
(MB/s).  Prints the medians over the rounds.  Separate from
``python -m pystream bench`` (the core benchmark): this one measures
httpx and httpcore as much as pystream.

    python bench/bench_httpx.py [--rounds 5] [--requests 2000] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from pystream.interop.httpcore import httpx_transport


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_nginx(base: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    root = os.path.join(base, "www")
    os.mkdir(root)
    with open(os.path.join(root, "small"), "wb") as f:
        f.write(os.urandom(1024))
    with open(os.path.join(root, "large"), "wb") as f:
        f.write(os.urandom(1024 * 1024))
    conf = os.path.join(base, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off; master_process off; worker_processes 1;
pid {base}/nginx.pid; error_log {base}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off; client_body_temp_path {base}; proxy_temp_path {base};
    fastcgi_temp_path {base}; uwsgi_temp_path {base}; scgi_temp_path {base};
    keepalive_requests 1000000;
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    process = subprocess.Popen(["nginx", "-c", conf, "-p", base], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


def make_transport(backend: str) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    if backend == "pystream":
        transport: httpx.AsyncBaseTransport = httpx_transport(limits=limits)
        return transport
    return httpx.AsyncHTTPTransport(limits=limits)


async def measure(backend: str, url: str, requests: int, concurrency: int) -> dict[str, float]:
    async with httpx.AsyncClient(transport=make_transport(backend)) as client:
        for _ in range(20):  # connect, warm up
            (await client.get(url + "/small")).raise_for_status()
        start = time.perf_counter()
        for _ in range(requests):
            response = await client.get(url + "/small")
            assert len(response.content) == 1024
        sequential = requests / (time.perf_counter() - start)

        async def worker(n: int) -> None:
            for _ in range(n):
                response = await client.get(url + "/small")
                assert len(response.content) == 1024

        start = time.perf_counter()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        concurrent = (requests // concurrency * concurrency) / (time.perf_counter() - start)

        large = 64
        start = time.perf_counter()
        for _ in range(large):
            response = await client.get(url + "/large")
            assert len(response.content) == 1024 * 1024
        mb_per_s = large / (time.perf_counter() - start)
    return {"sequential": sequential, "concurrent": concurrent, "large": mb_per_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="bench-httpx-")
    process, port = start_nginx(base)
    url = f"http://127.0.0.1:{port}"
    results: dict[str, list[dict[str, float]]] = {"httpx-default": [], "pystream": []}
    try:
        for round_ in range(args.rounds):
            order = list(results) if round_ % 2 == 0 else list(reversed(results))
            for backend in order:
                results[backend].append(
                    asyncio.run(measure(backend, url, args.requests, args.concurrency))
                )
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"{platform.python_implementation()} {platform.python_version()}, httpx {httpx.__version__}"
        f", {args.rounds} rounds, medians"
    )
    print(
        f"{'backend':<15}{'GET/s seq':>12}{'GET/s x' + str(args.concurrency):>12}{'MB/s 1MiB':>12}"
    )
    for backend, runs in results.items():
        cols = [
            statistics.median(r[key] for r in runs) for key in ("sequential", "concurrent", "large")
        ]
        print(f"{backend:<15}{cols[0]:>12.0f}{cols[1]:>12.0f}{cols[2]:>12.0f}")


if __name__ == "__main__":
    sys.exit(main())
