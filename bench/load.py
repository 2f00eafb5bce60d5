"""Throughput, p99 and batch size of the diamond graph against concurrency, in
process and over HTTP (``graphctl serve`` in a child process), with the same
load generator as ``graphctl bench``.

Baseline: concurrency 1 of the same mode in the same run; the ratio is the
throughput gained by concurrency (batching and overlap), which a scheduler with
level barriers or a timer-driven batcher would not show.

    python -m bench.load
    GRAPHCTL_BENCH_CONCURRENCY=1,8,64 python -m bench.load
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from typing import Any

from bench._common import DIAMOND, duration_s, ratio, warmup_s, write_result
from orchestrator.compiling import compile_file
from orchestrator.graph import load
from orchestrator.loadgen import (
    BenchSummary,
    GraphTarget,
    HTTPTarget,
    NodeRoute,
    ServeProcess,
    Target,
    run_load,
)
from runners import tune_for_serving

DEFAULT_CONCURRENCY = (1, 4, 16, 64)
RUNNER_NODES = ("a", "b")


def concurrencies() -> tuple[int, ...]:
    text = os.environ.get("GRAPHCTL_BENCH_CONCURRENCY")
    return tuple(int(c) for c in text.split(",")) if text else DEFAULT_CONCURRENCY


async def sweep(target: Target, levels: Sequence[int]) -> list[BenchSummary]:
    found = []
    for level in levels:
        summary = await run_load(
            target, concurrency=level, duration_s=duration_s(), warmup_s=warmup_s()
        )
        print(f"  {target.description} @{level}: {summary.throughput_rps:.0f} req/s", flush=True)
        found.append(summary)
    return found


async def measure(levels: Sequence[int]) -> dict[str, list[BenchSummary]]:
    inputs = json.loads(DIAMOND.with_name("diamond.input.json").read_text())
    plan = compile_file(DIAMOND)
    routes = {name: NodeRoute(node.runner, node.method) for name, node in plan.nodes.items()}
    async with load(DIAMOND) as graph:
        tune_for_serving()  # as graphctl serve does once ready
        in_process = await sweep(GraphTarget(graph, inputs), levels)
    async with (
        ServeProcess(DIAMOND) as server,
        HTTPTarget(server.url, plan.name, inputs, routes) as target,
    ):
        http = await sweep(target, levels)
    return {"in-process": in_process, "http": http}


def mean_batch(summary: BenchSummary) -> float | None:
    sizes = [
        summary.nodes[n].mean_batch_size
        for n in RUNNER_NODES
        if n in summary.nodes and summary.nodes[n].mean_batch_size is not None
    ]
    return sum(s for s in sizes if s is not None) / len(sizes) if sizes else None


def rows_for(mode: str, summaries: Sequence[BenchSummary]) -> list[list[Any]]:
    base = summaries[0].throughput_rps if summaries else None
    return [
        [
            mode,
            s.concurrency,
            round(s.throughput_rps, 1),
            s.p50_ms,
            s.p90_ms,
            s.p99_ms,
            mean_batch(s),
            round(ratio(s.throughput_rps, base) or 0.0, 2),
            s.error_count,
        ]
        for s in summaries
    ]


def main() -> None:
    levels = concurrencies()
    results = asyncio.run(measure(levels))
    rows = [row for mode, found in results.items() for row in rows_for(mode, found)]
    write_result(
        "load",
        title="Diamond graph: throughput, latency and batch size against concurrency",
        baseline="the same mode at concurrency 1, in the same run",
        headers=[
            "mode",
            "concurrency",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "mean batch",
            "x conc. 1",
            "errors",
        ],
        rows=rows,
        extra={"summaries": {m: [s.to_json() for s in f] for m, f in results.items()}},
    )


if __name__ == "__main__":
    main()
