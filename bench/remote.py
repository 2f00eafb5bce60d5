"""Worker hosts over TCP (``graphctl worker`` on loopback), measured in one run:

    python -m bench.remote            (about 30 s)

(a) the per-batch overhead of a TCP worker host against a local worker process
    (Unix socketpair): calls to a method that costs nothing, at concurrency 1
    (p50/p99 µs and their ratio); (b) scaling of the 20 ms-per-batch model
    (``bench/graphs/batching.yaml``, batches of 32) with 1, 2 and 4 worker hosts
    in a closed loop at 2 x 32 calls per host: throughput, its ratio to one host,
    the mean batch size; (c) one of 2 hosts SIGKILLed under load: failed calls
    (target 0) and the time from the kill until the throughput over 100 ms windows
    is back to 90 % of what one host serves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from bench._common import GRAPHS_DIR, REPO_DIR, duration_s, ratio, warmup_s, write_result
from orchestrator.compiling import compile_file
from runners import RunnerConfig, WorkerPool
from runners.config import parse_endpoint
from runners.remote import TOKEN_ENV, RemoteWorkers

TOKEN = "bench-token"
CLI = "import sys; from orchestrator.cli import main; sys.exit(main())"
ITEM = np.zeros(4, np.float32)
WINDOW_S = 0.1


def _config(graph: str) -> RunnerConfig:
    return compile_file(GRAPHS_DIR / graph).runners["model"]


class Host:
    """One ``graphctl worker`` child on a loopback port."""

    def __init__(self, graph: str, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CLI,
                "worker",
                str(GRAPHS_DIR / graph),
                "--runner",
                "model",
                "--listen",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            cwd=REPO_DIR,
            env={**os.environ, TOKEN_ENV: TOKEN},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the model is tiny: this is quick
        if "listening" not in line:
            raise SystemExit(f"graphctl worker did not start: {line!r}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _remote_pool(config: RunnerConfig, ports: list[int]) -> WorkerPool:
    endpoints = tuple(parse_endpoint(f"127.0.0.1:{port}") for port in ports)
    remote = dataclasses.replace(
        config.remote, heartbeat_interval_s=0.2, dead_peer_timeout_s=2.0, reconnect_backoff_s=0.05
    )
    config = dataclasses.replace(config, endpoints=endpoints, remote=remote)
    return WorkerPool(config, workers=functools.partial(RemoteWorkers, config, token=TOKEN))


async def _latencies(pool: WorkerPool, count: int) -> tuple[float, float]:
    for _ in range(200):
        await pool.call("predict", ITEM)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await pool.call("predict", ITEM)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6


async def overhead() -> list[list[Any]]:
    config = _config("noop.yaml")
    async with WorkerPool(dataclasses.replace(config, workers=1)) as local:
        local_p50, local_p99 = await _latencies(local, 3000)
    (port,) = _free_ports(1)
    host = Host("noop.yaml", port)
    try:
        async with _remote_pool(config, [port]) as remote:
            remote_p50, remote_p99 = await _latencies(remote, 3000)
    finally:
        host.kill()
    return [
        ["local worker (socketpair)", local_p50, local_p99, 1.0],
        ["worker host (TCP loopback)", remote_p50, remote_p99, ratio(remote_p50, local_p50)],
    ]


async def _closed_loop(
    pool: WorkerPool, concurrency: int, seconds: float, done: list[float], failed: list[str]
) -> None:
    stop = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < stop:
            try:
                await pool.call("predict", ITEM)
            except Exception as error:  # counted: the figure is how many fail
                failed.append(type(error).__name__)
            else:
                done.append(time.monotonic())

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def scaling() -> list[list[Any]]:
    config = _config("batching.yaml")
    rows: list[list[Any]] = []
    base = None
    for count in (1, 2, 4):
        ports = _free_ports(count)
        hosts = [Host("batching.yaml", port) for port in ports]
        try:
            async with _remote_pool(config, ports) as pool:
                done: list[float] = []
                await _closed_loop(pool, 64 * count, warmup_s(), [], [])
                before = pool.stats().methods["predict"]
                start = time.monotonic()
                await _closed_loop(pool, 64 * count, duration_s(), done, [])
                elapsed = time.monotonic() - start
                after = pool.stats().methods["predict"]
        finally:
            for host in hosts:
                host.kill()
        throughput = len(done) / elapsed
        base = base or throughput
        mean_batch = (after.calls - before.calls) / max(1, after.batches - before.batches)
        rows.append([f"{count} host(s)", throughput, ratio(throughput, base), mean_batch])
    return rows


async def kill_one() -> list[list[Any]]:
    config = _config("batching.yaml")
    ports = _free_ports(2)
    hosts = [Host("batching.yaml", port) for port in ports]
    done: list[float] = []
    failed: list[str] = []
    try:
        async with _remote_pool(config, ports) as pool:
            load = asyncio.ensure_future(
                _closed_loop(pool, 128, 1.0 + 2 * duration_s(), done, failed)
            )
            await asyncio.sleep(1.0 + duration_s() / 2)
            killed_at = time.monotonic()
            hosts[0].kill()
            await load
    finally:
        for host in hosts:
            host.kill()
    one_host = 32 / 0.020  # items per second one host serves with full batches
    recovered = _recovery_s(done, killed_at, 0.9 * one_host)
    return [["kill 1 of 2 hosts", len(done), len(failed), recovered]]


def _recovery_s(done: list[float], since: float, target_per_s: float) -> float | None:
    """Seconds from ``since`` until a 100 ms window's throughput reaches the target."""
    window = since
    end = max(done, default=since)
    while window + WINDOW_S <= end:
        count = sum(window <= t < window + WINDOW_S for t in done)
        if count / WINDOW_S >= target_per_s:
            return window + WINDOW_S - since
        window += WINDOW_S / 2
    return None


async def measure() -> dict[str, list[list[Any]]]:
    return {"overhead": await overhead(), "scaling": await scaling(), "kill": await kill_one()}


def main() -> None:
    figures = asyncio.run(measure())
    overhead_rows, scaling_rows, kill_rows = (
        figures["overhead"],
        figures["scaling"],
        figures["kill"],
    )
    rows = [
        *[["overhead: " + r[0], *r[1:]] for r in overhead_rows],
        *[["scaling: " + r[0], *r[1:]] for r in scaling_rows],
        *kill_rows,
    ]
    write_result(
        "remote",
        title="Worker hosts over TCP on loopback",
        baseline="a local worker process over a socketpair; one worker host",
        headers=["case", "a", "b", "c"],
        rows=rows,
        notes=[
            "overhead rows: a = p50 us, b = p99 us, c = p50 ratio to the local worker",
            "scaling rows: a = calls/s, b = ratio to 1 host (targets 1.8 and 3.4), "
            "c = mean batch size (max 32)",
            "kill row: a = calls answered, b = calls failed (target 0), "
            "c = s from the kill until a 100 ms window serves 90 % of one host's 1600/s",
        ],
    )


if __name__ == "__main__":
    main()
