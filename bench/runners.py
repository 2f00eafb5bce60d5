"""Runner benchmark: per-call overhead, batching throughput, large arrays, and the
floor they are compared with, all measured in one run on this machine.

    python -m bench.runners            (about 20 s)

(a) a call to a no-op method at concurrency 1 (p50/p99 µs), against a direct
    in-process call; (b) throughput of a 20 ms-per-batch method at concurrency 64
    against workers * max_batch_size / 20 ms, with the mean batch size; (c) the
    round trip of 4 MiB and 64 MiB float32 arrays; (d) the floors: a bare
    length-prefixed round trip over the same kind of socket (socketpair to a
    blocking echo process), with no codec, batcher or pool, measured three ways:
    an asyncio-streams client and an asyncio-protocol client on the event loop
    the pool runs on (uvloop when installed), and a blocking socket client with
    no event loop. Target (a), a batchable call (queue + round trip + split),
    is read against the asyncio-streams floor: the same event-loop I/O path as
    the pool. Writes ``bench/results/runners.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np

from bench._common import write_result
from runners import BatchingConfig, RunnerConfig, WorkerPool

RUNNABLES = Path(__file__).resolve().parent.parent / "tests" / "runnables"
LENGTH = struct.Struct("<I")


def _percentiles(samples_s: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1e6, p99 * 1e6


async def _timed(call: Callable[[], Awaitable[Any]], count: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


class _EchoClient(asyncio.Protocol):
    """A protocol client: one length-prefixed message out, one back (the pool's
    kind of I/O path, without its codec, batcher or bookkeeping)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= 4:
            (size,) = LENGTH.unpack_from(self.buffer)
            if len(self.buffer) >= 4 + size and self.waiter is not None:
                message = bytes(self.buffer[4 : 4 + size])
                del self.buffer[: 4 + size]
                self.waiter.set_result(message)

    async def round_trip(self, payload: bytes) -> bytes:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(LENGTH.pack(len(payload)) + payload)
        return await self.waiter


def echo_server(fd: int) -> None:
    """The floors' server: a blocking length-prefixed echo (child process)."""
    sock = socket.socket(fileno=fd)
    while head := sock.recv(4, socket.MSG_WAITALL):
        (size,) = LENGTH.unpack(head)
        payload = sock.recv(size, socket.MSG_WAITALL) if size else b""
        sock.sendall(head + payload)


def _start_echo() -> tuple[socket.socket, subprocess.Popen[bytes]]:
    """A socketpair whose far end is served by an echo process, like a worker's."""
    ours, theirs = socket.socketpair()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.runners", "--echo-fd", str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
    )
    theirs.close()
    return ours, child


def measure_blocking_floor(count: int) -> tuple[float, float]:
    """Floor 1: a blocking socket client, no event loop at all."""
    payload = os.urandom(64)
    frame = LENGTH.pack(len(payload)) + payload
    sock, child = _start_echo()
    samples = []
    for i in range(count + count // 5):
        start = time.perf_counter()
        sock.sendall(frame)
        sock.recv(len(frame), socket.MSG_WAITALL)
        if i >= count // 5:
            samples.append(time.perf_counter() - start)
    sock.close()
    child.wait(10)
    return _percentiles(samples)


async def measure_loop_floors(count: int) -> dict[str, tuple[float, float]]:
    """Floors 2 and 3: a client on the event loop the pool runs on, with a protocol
    (the pool's kind of I/O path) and with asyncio streams."""
    payload = os.urandom(64)
    frame = LENGTH.pack(len(payload)) + payload
    loop = asyncio.get_running_loop()
    sock, child = _start_echo()
    transport, client = await loop.create_unix_connection(_EchoClient, sock=sock)
    protocol = await _timed(lambda: client.round_trip(payload), count, count // 5)
    transport.close()
    sock.close()
    await asyncio.to_thread(child.wait, 10)

    sock, child = _start_echo()
    reader, writer = await asyncio.open_unix_connection(sock=sock)

    async def streams_round_trip() -> bytes:
        writer.write(frame)
        (size,) = LENGTH.unpack(await reader.readexactly(4))
        return await reader.readexactly(size)

    streams = await _timed(streams_round_trip, count, count // 5)
    writer.close()
    await writer.wait_closed()
    sock.close()
    await asyncio.to_thread(child.wait, 10)
    return {"protocol": _percentiles(protocol), "streams": _percentiles(streams)}


def _config(**overrides: Any) -> RunnerConfig:
    return RunnerConfig(
        name="bench", runnable="runner_models:Sleepy", search_path=RUNNABLES, **overrides
    )


async def measure_overhead(count: int) -> dict[str, tuple[float, float]]:
    sys.path.insert(0, str(RUNNABLES))
    from runner_models import Sleepy  # the same class, in-process

    x = np.zeros(16, np.float32)
    local = Sleepy(delay_s=0.0)

    async def direct() -> Any:
        return local.noop(x[None])[0]

    async with WorkerPool(_config(init={"delay_s": 0.0})) as pool:
        batched = await _timed(lambda: pool.call("noop", x), count, count // 5)
        plain = await _timed(lambda: pool.call("echo", 1), count, count // 5)
    return {
        "direct": _percentiles(await _timed(direct, count, 10)),
        "batched": _percentiles(batched),
        "plain": _percentiles(plain),
    }


async def measure_throughput(seconds: float, workers: int) -> tuple[float, float, float]:
    config = _config(
        workers=workers, batching=BatchingConfig(max_batch_size=32), init={"delay_s": 0.02}
    )
    x = np.zeros(16, np.float32)
    async with WorkerPool(config) as pool:
        stop = time.monotonic() + seconds
        done = 0

        async def client() -> None:
            nonlocal done
            while time.monotonic() < stop:
                await pool.call("predict", x)
                done += 1

        await pool.call("predict", x)
        start = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for _ in range(64):
                group.create_task(client())
        elapsed = time.monotonic() - start
        stats = pool.stats().methods["predict"]
    limit = workers * 32 / 0.02
    mean_batch = stats.calls / stats.batches
    return done / elapsed, limit, mean_batch


async def measure_arrays(sizes_mib: list[int], repeats: int) -> dict[int, float]:
    results = {}
    async with WorkerPool(_config()) as pool:
        for mib in sizes_mib:
            array = np.ones(mib * (1 << 20) // 4, np.float32)
            samples = await _timed(partial(pool.call, "echo", array), repeats, 2)
            results[mib] = statistics.median(samples) * 1e3
    return results


async def measure_all() -> dict[str, Any]:
    return {
        "floors": await measure_loop_floors(3000),
        "overhead": await measure_overhead(3000),
        "throughput": await measure_throughput(4.0, workers=2),
        "arrays": await measure_arrays([4, 64], repeats=7),
    }


FLOORS = (
    ("streams", "floor: asyncio streams client (the target's)"),
    ("protocol", "floor: asyncio protocol client"),
    ("blocking", "floor: blocking socket client, no loop"),
)
CALLS = (
    ("batched", "(a) runner call, batchable no-op: queue + round trip + split"),
    ("plain", "(a) runner call, non-batchable no-op"),
    ("direct", "direct in-process call"),
)


def _row(
    label: str, percentiles: tuple[float, float], floors: dict[str, tuple[float, float]]
) -> list[Any]:
    p50, p99 = percentiles
    ratios = [round(p50 / floors[kind][0], 2) for kind, _ in FLOORS]
    return [label, round(p50, 1), round(p99, 1), *ratios]


def report(blocking: tuple[float, float], figures: dict[str, Any], loop_name: str) -> None:
    """Print the table and write ``bench/results/runners.json``."""
    floors = {"blocking": blocking, **figures["floors"]}
    overhead = figures["overhead"]
    rows = [_row(label, floors[kind], floors) for kind, label in FLOORS]
    rows += [_row(label, overhead[kind], floors) for kind, label in CALLS]
    throughput, limit, mean_batch = figures["throughput"]
    write_result(
        "runners",
        title=f"Runner calls at concurrency 1 (event loop: {loop_name})",
        baseline=(
            "a bare framed 64-byte round trip to a blocking echo process over the same kind "
            "of socket, no codec, batcher or pool; the target is read against the asyncio "
            "streams client's (the pool's event-loop I/O path)"
        ),
        headers=["what", "p50 us", "p99 us", "x streams", "x protocol", "x blocking"],
        rows=rows,
        notes=[
            f"(b) 20 ms/batch, concurrency 64, 2 workers: {throughput:.0f} calls/s = "
            f"{100 * throughput / limit:.1f} % of limit {limit:.0f}/s, mean batch "
            f"{mean_batch:.1f}",
            *(
                f"(c) {mib} MiB float32 round trip: p50 {ms:.2f} ms"
                for mib, ms in figures["arrays"].items()
            ),
        ],
        extra={
            "loop": loop_name,
            "call_p50_us": overhead["batched"][0],
            "floor_p50_us": floors["streams"][0],
        },
    )


def main() -> None:
    blocking = measure_blocking_floor(3000)
    try:
        import uvloop
    except ImportError:
        report(blocking, asyncio.run(measure_all()), "asyncio")
    else:
        report(blocking, uvloop.run(measure_all()), "uvloop")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.runners")
    parser.add_argument("--echo-fd", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.echo_fd is not None:
        echo_server(options.echo_fd)
    else:
        main()
