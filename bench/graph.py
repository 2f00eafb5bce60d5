"""Executor figures: the cost of a node, and the diamond graph in-process.

1. A chain of 10 no-op function nodes (coroutines, and sync functions run in the
   graph's threads), one request at a time: microseconds per node above calling
   the same 10 functions directly, measured in the same run.
2. The diamond example through the Python API with real worker pools, at
   concurrency 1, 16 and 64: throughput, p50, p99, against the same maths done
   inline in this process (one request at a time) in the same run.

    python -m bench.graph
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import DIAMOND, duration_s, ratio, warmup_s, write_result
from graphs.models import MLP, average_softmax, normalize
from orchestrator.errors import GraphctlError
from orchestrator.graph import load
from runners import tune_for_serving
from runners.errors import RunnerError

CHAIN_LENGTH = 10
CONCURRENCIES = (1, 16, 64)

_NOOPS = """
def noop(x):
    return x


async def anoop(x):
    return x
"""


def chain_yaml(function: str) -> str:
    """A graph of ``CHAIN_LENGTH`` nodes, each passing its input to the next."""
    lines = [
        "apiVersion: graphctl/v1",
        "kind: Graph",
        "metadata: {name: chain, description: no-op nodes in a row}",
        "spec:",
        "  inputs:",
        "    x: {type: number}",
        "  nodes:",
    ]
    source = "$inputs.x"
    for i in range(CHAIN_LENGTH):
        lines.append(f"    n{i}: {{function: 'bench_noops:{function}', args: {{x: {source}}}}}")
        source = f"$n{i}"
    lines += ["  outputs:", f"    y: {source}"]
    return "\n".join(lines) + "\n"


async def closed_loop(
    call: Callable[[], Awaitable[Any]],
    concurrency: int,
    seconds: float,
    warmup: float,
    errors: list[str] | None = None,
) -> list[float]:
    """Latencies (ms) of successful requests that started inside the measured
    window; failures are appended to ``errors`` (or raised without it)."""
    start = time.perf_counter()
    window_start, end = start + warmup, start + warmup + seconds
    latencies: list[float] = []

    async def client() -> None:
        while (began := time.perf_counter()) < end:
            try:
                await call()
            except (GraphctlError, RunnerError) as error:
                if errors is None:
                    raise
                errors.append(type(error).__name__)
                continue
            if began >= window_start:
                latencies.append((time.perf_counter() - began) * 1000)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(client())
    return latencies


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _latency_cells(latencies: list[float]) -> list[float]:
    return [round(percentile(latencies, 50), 3), round(percentile(latencies, 99), 3)]


def direct_chain_us(function: Callable[[float], Any], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = 1.0
        for _ in range(CHAIN_LENGTH):
            x = function(x)
        count += 1
    return (time.perf_counter() - start) / count * 1e6


async def graph_chain_us(path: Path, seconds: float) -> float:
    async with load(path) as graph:
        latencies = await closed_loop(lambda: graph.run({"x": 1.0}), 1, seconds, warmup_s(0.3))
    return float(np.mean(latencies)) * 1000


def chain_rows(folder: Path, seconds: float) -> list[list[Any]]:
    (folder / "bench_noops.py").write_text(_NOOPS, encoding="utf-8")
    rows = []
    for function, label in (("anoop", "coroutine nodes"), ("noop", "sync nodes (threads)")):
        path = folder / f"chain_{function}.yaml"
        path.write_text(chain_yaml(function), encoding="utf-8")
        direct = direct_chain_us(lambda x: x, seconds)
        graph_us = asyncio.run(graph_chain_us(path, seconds))
        per_node = (graph_us - direct) / CHAIN_LENGTH
        rows.append([f"chain of {CHAIN_LENGTH}, {label}", round(direct, 2), round(graph_us, 1),
                     round(per_node, 1)])  # fmt: skip
        print(f"  {label}: {per_node:.1f} us per node", flush=True)
    return rows


def inline_diamond(x: np.ndarray[Any, Any]) -> Callable[[], Awaitable[Any]]:
    """The diamond's maths in this process, as an awaitable call (the baseline)."""
    a, b = MLP(hidden=256, seed=0), MLP(hidden=512, seed=1)

    async def call() -> Any:
        pre = normalize(x)[None]
        return average_softmax(a.predict(pre)[0], b.predict(pre)[0])

    return call


async def diamond_rows(x: list[float], seconds: float) -> list[list[Any]]:
    inline = await closed_loop(inline_diamond(np.asarray(x, np.float32)), 1, seconds, 0.2)
    inline_rps = len(inline) / seconds
    rows: list[list[Any]] = [
        ["inline, same maths", 1, round(inline_rps), *_latency_cells(inline), 1.0, 0]
    ]
    async with load(DIAMOND) as graph:
        tune_for_serving()  # as graphctl serve does once ready
        for concurrency in CONCURRENCIES:
            errors: list[str] = []
            latencies = await closed_loop(
                lambda: graph.run({"x": x}), concurrency, seconds, warmup_s(0.5), errors
            )
            rps = len(latencies) / seconds
            cells = [round(rps), *_latency_cells(latencies), round(ratio(rps, inline_rps) or 0, 3)]
            rows.append(["diamond, worker pools", concurrency, *cells, len(errors)])
            print(f"  diamond @{concurrency}: {rps:.0f} req/s, {len(errors)} errors", flush=True)
        sizes = graph.stats()["mlp_a"].methods["predict"].batch_sizes
    mean_batch = sum(s * n for s, n in sizes.items()) / max(1, sum(sizes.values()))
    rows.append(
        ["  mean batch size of mlp_a (all points)", "", round(mean_batch, 2), "", "", "", ""]
    )
    return rows


def main() -> None:
    seconds = duration_s(2.0)
    with tempfile.TemporaryDirectory(prefix="graphctl-bench-") as folder:
        chain = chain_rows(Path(folder), seconds)
    write_result(
        "graph_overhead",
        title=f"Executor overhead per node: a chain of {CHAIN_LENGTH} no-op function nodes",
        baseline="the same functions called directly in a plain loop, in the same run",
        headers=["graph", "direct us", "graph us", "us/node over direct"],
        rows=chain,
    )
    x = json.loads((DIAMOND.parent / "diamond.input.json").read_text())["x"]
    diamond = asyncio.run(diamond_rows(x, seconds))
    write_result(
        "graph",
        title="The diamond graph in-process (Python API, real worker pools)",
        baseline="the same maths inline in this process, one request at a time, same run",
        headers=["target", "concurrency", "req/s", "p50 ms", "p99 ms", "x inline", "errors"],
        rows=diamond,
        extra={"chain": chain},
    )


if __name__ == "__main__":
    main()
