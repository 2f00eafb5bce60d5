"""Batching efficiency: a model whose every batch costs 20 ms whatever its size.

With ``workers`` processes and ``max_batch_size`` items per batch nothing can
serve more than ``workers * max_batch_size / 20 ms`` requests a second (the
baseline: the analytic limit); a closed loop of C clients also cannot exceed
``C / 20 ms``. The ratio to the lower of the two shows what batching achieves
(target: >= 90 % in-process, >= 75 % over HTTP, p99 < 100 ms at concurrency 64).

    python -m bench.batching
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench._common import GRAPHS_DIR, duration_s, ratio, warmup_s, write_result
from orchestrator.compiling import compile_file
from orchestrator.graph import load
from orchestrator.loadgen import (
    BenchSummary,
    GraphTarget,
    HTTPTarget,
    NodeRoute,
    ServeProcess,
    run_load,
)

BATCH_MS = 20.0
WORKERS = 2
CONCURRENCY = 64
SIZES = (1, 8, 32, 128)
HTTP_SIZE = 32  # the one point also measured over HTTP
INPUTS = json.loads((GRAPHS_DIR / "batching.input.json").read_text())


def graph_file(folder: Path, max_batch_size: int) -> Path:
    """``bench/graphs/batching.yaml`` with ``max_batch_size`` set, beside its module."""
    spec = yaml.safe_load((GRAPHS_DIR / "batching.yaml").read_text())
    runner = spec["spec"]["runners"]["model"]
    runner["batching"]["max_batch_size"] = max_batch_size
    runner["workers"] = WORKERS
    runner["init"]["batch_ms"] = BATCH_MS
    shutil.copy(GRAPHS_DIR / "fixed_cost.py", folder / "fixed_cost.py")
    path = folder / f"batching_{max_batch_size}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def limits(max_batch_size: int) -> tuple[float, float]:
    """(the batching limit, the lower limit a closed loop of CONCURRENCY allows)."""
    per_batch_s = BATCH_MS / 1000.0
    nominal = WORKERS * max_batch_size / per_batch_s
    return nominal, min(nominal, CONCURRENCY / per_batch_s)


async def in_process(path: Path) -> BenchSummary:
    async with load(path) as graph:
        target = GraphTarget(graph, INPUTS)
        return await run_load(
            target, concurrency=CONCURRENCY, duration_s=duration_s(), warmup_s=warmup_s()
        )


async def over_http(path: Path) -> BenchSummary:
    plan = compile_file(path)
    routes = {name: NodeRoute(node.runner, node.method) for name, node in plan.nodes.items()}
    async with (
        ServeProcess(path) as server,
        HTTPTarget(server.url, plan.name, INPUTS, routes) as target,
    ):
        return await run_load(
            target, concurrency=CONCURRENCY, duration_s=duration_s(), warmup_s=warmup_s()
        )


def row(mode: str, size: int, summary: BenchSummary) -> list[Any]:
    nominal, reachable = limits(size)
    node = summary.nodes.get("m")
    return [
        mode,
        size,
        round(summary.throughput_rps, 1),
        round(nominal, 1),
        round(reachable, 1),
        _pct(ratio(summary.throughput_rps, reachable)),
        summary.p50_ms,
        summary.p99_ms,
        None if node is None else node.mean_batch_size,
        summary.error_count,
    ]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 1)


def main() -> None:
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="graphctl-bench-") as folder:
        for size in SIZES:
            rows.append(
                row("in-process", size, asyncio.run(in_process(graph_file(Path(folder), size))))
            )
            print(f"  max_batch_size {size}: {rows[-1][2]} req/s", flush=True)
        http = asyncio.run(over_http(graph_file(Path(folder), HTTP_SIZE)))
        rows.append(row("http", HTTP_SIZE, http))
    write_result(
        "batching",
        title=f"Batching: {BATCH_MS:g} ms per batch, {WORKERS} workers, concurrency {CONCURRENCY}",
        baseline=(
            "the analytic limit workers * max_batch_size / 20 ms, capped by what a closed "
            f"loop of {CONCURRENCY} clients allows ({CONCURRENCY} / 20 ms)"
        ),
        headers=[
            "mode",
            "max_batch",
            "req/s",
            "limit",
            "reachable",
            "% of reachable",
            "p50 ms",
            "p99 ms",
            "mean batch",
            "errors",
        ],
        rows=rows,
        notes=["targets: >= 90 % in-process, >= 75 % over HTTP, p99 < 100 ms"],
    )


if __name__ == "__main__":
    main()
