"""Scheduler overhead: what each node costs beyond the work it does.

Two shapes, each with coroutine and with sync (thread-run) function nodes: a
wide graph (1 -> 16 parallel -> 1, 18 nodes) and a deep chain (32 nodes). The
baseline is the same functions called directly in a plain loop; the figure is
microseconds of graph time per node above it, one request at a time, and the
nodes per second the scheduler sustains at concurrency 16.

    python -m bench.scheduler
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench._common import GRAPHS_DIR, duration_s, ratio, warmup_s, write_result
from bench.graphs import fixed_cost  # the graphs' own functions, called directly
from orchestrator.graph import load
from orchestrator.loadgen import BenchSummary, GraphTarget, run_load

SHAPES = ("wide", "deep", "wide_sync", "deep_sync")
NODES = {"wide": 18, "deep": 32}
BUSY_CONCURRENCY = 16


def direct_wide(x: float) -> float:
    src = fixed_cost.inc(x)
    return fixed_cost.total([fixed_cost.inc(src) for _ in range(16)])


def direct_deep(x: float) -> float:
    for _ in range(32):
        x = fixed_cost.inc(x)
    return x


async def adirect_wide(x: float) -> float:
    src = await fixed_cost.ainc(x)
    branches = [await fixed_cost.ainc(src) for _ in range(16)]
    return await fixed_cost.atotal(branches)


async def adirect_deep(x: float) -> float:
    for _ in range(32):
        x = await fixed_cost.ainc(x)
    return x


def time_direct_us(shape: str, seconds: float = 0.5) -> float:
    """Mean microseconds of one direct call of the shape's functions."""
    sync: dict[str, Callable[[float], float]] = {"wide": direct_wide, "deep": direct_deep}
    coro: dict[str, Callable[[float], Awaitable[float]]] = {
        "wide": adirect_wide,
        "deep": adirect_deep,
    }
    base = shape.removesuffix("_sync")

    async def loop_async() -> int:
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            await coro[base](1.0)
            count += 1
        return count

    start = time.perf_counter()
    if shape.endswith("_sync"):
        count, end = 0, start + seconds
        while time.perf_counter() < end:
            sync[base](1.0)
            count += 1
    else:
        count = asyncio.run(loop_async())
    return (time.perf_counter() - start) / count * 1e6


async def measure(shape: str, concurrency: int) -> BenchSummary:
    async with load(GRAPHS_DIR / f"{shape}.yaml") as graph:
        target = GraphTarget(graph, {"x": 1})
        return await run_load(
            target, concurrency=concurrency, duration_s=duration_s(), warmup_s=warmup_s(0.5)
        )


def row(shape: str) -> list[Any]:
    nodes = NODES[shape.removesuffix("_sync")]
    direct_us = time_direct_us(shape)
    one = asyncio.run(measure(shape, 1))
    busy = asyncio.run(measure(shape, BUSY_CONCURRENCY))
    graph_us = (one.mean_ms or 0.0) * 1000.0
    return [
        shape,
        nodes,
        round(direct_us, 2),
        round(graph_us, 1),
        round((graph_us - direct_us) / nodes, 1),
        round(ratio(graph_us, direct_us) or 0.0, 1),
        round(busy.throughput_rps * nodes, 0),
        busy.p99_ms,
        one.error_count + busy.error_count,
    ]


def main() -> None:
    rows = []
    for shape in SHAPES:
        rows.append(row(shape))
        print(f"  {shape}: {rows[-1][4]} us per node", flush=True)
    write_result(
        "scheduler",
        title="Scheduler overhead: wide (1 -> 16 -> 1) and deep (32-node chain) graphs",
        baseline="the same functions called directly in a plain loop, in the same run",
        headers=[
            "graph",
            "nodes",
            "direct us",
            "graph us",
            "us/node over direct",
            "x direct",
            f"nodes/s @{BUSY_CONCURRENCY}",
            f"p99 ms @{BUSY_CONCURRENCY}",
            "errors",
        ],
        rows=rows,
        notes=[
            "_sync graphs run plain functions in the graph's threads; the others are coroutines"
        ],
    )


if __name__ == "__main__":
    main()
