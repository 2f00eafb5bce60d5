"""HTTP end to end: ``graphctl serve`` against a plain FastAPI app doing the same maths.

    python -m bench.http

The diamond graph at concurrency 1, 16 and 64, and the 20 ms-per-batch model at
64, each over loopback HTTP from a closed loop of N clients. Both servers run
as uvicorn subprocesses on the same event loop; the inline app
(``bench/inline_app.py``) is the floor for HTTP overhead. Server CPU per
request counts the server process and all its workers.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import psutil

from bench._common import DIAMOND, GRAPHS_DIR, REPO_DIR, duration_s, ratio, warmup_s, write_result
from orchestrator.loadgen import ServeProcess, free_port

CONCURRENCY = (1, 16, 64)
BATCHING = GRAPHS_DIR / "batching.yaml"
BATCH_MS = 20.0
BATCH_BOUND_RPS = 2 * 32 / (BATCH_MS / 1000)  # workers * max_batch_size / batch time
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Point:
    """One measured load level."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its children (the worker pools)."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


class _Connection:
    """One keep-alive HTTP/1.1 connection sending the same prebuilt request: a raw
    client, so the load generator costs far less CPU than the servers it measures."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.retry_after_s = 0.0  # the last answer's Retry-After (0: none)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, self.retry_after_s = 0, 0.0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"retry-after":
                self.retry_after_s = float(value)
        await self.reader.readexactly(length)
        return status


def _raw_request(url: str, body: dict[str, Any]) -> tuple[str, int, bytes]:
    parts = httpx.URL(url)
    payload = json.dumps(body).encode()
    head = (
        f"POST {parts.raw_path.decode()} HTTP/1.1\r\nhost: {parts.host}:{parts.port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n"
    )
    return parts.host, int(parts.port or 80), head.encode() + payload


async def closed_loop(url: str, body: dict[str, Any], concurrency: int, pid: int) -> Point:
    """``concurrency`` clients, each sending its next request when the last answers."""
    latencies: list[float] = []
    errors = 0
    host, port, raw = _raw_request(url, body)
    start = time.monotonic() + warmup_s()
    end = start + duration_s()
    cpu: list[float] = []

    async def client_loop() -> None:
        nonlocal errors
        connection = _Connection(*await asyncio.open_connection(host, port))
        try:
            while (sent := time.monotonic()) < end:
                status = await connection.request(raw)
                if sent >= start:
                    latencies.append(time.monotonic() - sent)
                    errors += status != 200
        finally:
            connection.writer.close()

    async def cpu_marks() -> None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        cpu.append(_cpu_seconds(pid))
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        cpu.append(_cpu_seconds(pid))

    async with asyncio.timeout(end - time.monotonic() + 60), asyncio.TaskGroup() as group:
        group.create_task(cpu_marks())
        for _ in range(concurrency):
            group.create_task(client_loop())
    seconds = time.monotonic() - start
    ms = np.asarray(latencies) * 1000
    count = max(len(latencies), 1)
    return Point(
        requests=len(latencies),
        errors=errors,
        seconds=seconds,
        p50_ms=float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        p99_ms=float(np.percentile(ms, 99)) if len(ms) else float("nan"),
        cpu_ms_per_request=(cpu[1] - cpu[0]) * 1000 / count,
    )


@asynccontextmanager
async def inline_server() -> AsyncIterator[tuple[str, int]]:
    """``bench/inline_app.py`` under uvicorn in a child process: (URL, pid)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "bench.inline_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--loop",
        "asyncio",
        cwd=REPO_DIR,
        stdin=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(url, process)
        yield url, process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            async with asyncio.timeout(30):
                await process.wait()


async def _wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with (
        httpx.AsyncClient(timeout=2, trust_env=False) as client,
        asyncio.timeout(READY_TIMEOUT_S),
    ):
        while True:
            if process.returncode is not None:
                raise SystemExit(f"the inline app exited with code {process.returncode}")
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


async def measure(workload: str, body: dict[str, Any], levels: Sequence[int]) -> dict[str, Any]:
    """Points of graphctl and of the inline app, per concurrency level."""
    graph = DIAMOND if workload == "diamond" else BATCHING
    results: dict[str, dict[int, Point]] = {"graphctl": {}, "inline": {}}
    async with ServeProcess(graph, extra_args=["--max-inflight", "4096"]) as server:
        for level in levels:
            results["graphctl"][level] = await closed_loop(
                f"{server.url}/{workload}", body, level, server.pid
            )
    async with inline_server() as (url, pid):
        for level in levels:
            results["inline"][level] = await closed_loop(f"{url}/{workload}", body, level, pid)
    return results


def _rows(workload: str, results: dict[str, dict[int, Point]]) -> list[list[Any]]:
    rows = []
    for level, point in results["graphctl"].items():
        base = results["inline"][level]
        for name, p in (("graphctl", point), ("inline", base)):
            rows.append(
                [
                    f"{workload} c={level} {name}",
                    round(p.rps, 1),
                    round(p.p50_ms, 2),
                    round(p.p99_ms, 2),
                    p.errors,
                    round(p.cpu_ms_per_request, 3),
                    _round(ratio(p.rps, base.rps)),
                    _round(ratio(p.cpu_ms_per_request, base.cpu_ms_per_request)),
                ]
            )
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def main(diamond_body: dict[str, Any]) -> None:
    diamond = await measure("diamond", diamond_body, CONCURRENCY)
    batching = await measure("batching", {"x": [0.5, 1.0, 1.5, 2.0]}, (64,))
    batch_rps = batching["graphctl"][64].rps
    write_result(
        "http",
        title="HTTP end to end: graphctl serve vs a plain FastAPI app doing the maths inline",
        baseline="bench/inline_app.py under uvicorn (same loop, one process, no batching)",
        headers=[
            "point",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "CPU ms/req",
            "x inline req/s",
            "x inline CPU",
        ],
        rows=_rows("diamond", diamond) + _rows("batching", batching),
        notes=[
            f"batching: graphctl reaches {batch_rps:.0f} req/s = "
            f"{batch_rps / BATCH_BOUND_RPS:.0%} of workers*max_batch_size/20ms "
            f"({BATCH_BOUND_RPS:.0f} req/s)",
            "load generator: raw keep-alive HTTP/1.1 clients in one process, on the same cores",
        ],
    )


if __name__ == "__main__":
    asyncio.run(main(json.loads(DIAMOND.with_name("diamond.input.json").read_text())))
