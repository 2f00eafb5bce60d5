"""Batching efficiency: a model whose every batch costs 20 ms whatever its size.

With ``workers`` processes and ``max_batch_size`` items per batch nothing can
serve more than ``workers * max_batch_size / 20 ms`` requests a second (the
baseline: the analytic limit); a closed loop of C users also cannot exceed
``C / 20 ms`` (the "reachable" column is the lower of the two). Measured at
concurrency 64 with max_batch_size 32: 1 and 2 workers, in-process and over HTTP
(the targets, see ``bench/_targets.py``), then the max-batch sweep in-process
with 2 workers.

    python -m bench.batching
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
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
from runners import tune_for_serving

BATCH_MS = 20.0
CONCURRENCY = 64
TARGET_SIZE = 32  # the target points: 1 and 2 workers, in-process and over HTTP
SWEEP_WORKERS = 2
SWEEP_SIZES = (1, 8, 128)  # with the 2-worker in-process target point: the max-batch sweep
INPUTS = json.loads((GRAPHS_DIR / "batching.input.json").read_text())
QUIET = ("--no-access-log",)  # as bench/http.py: the access line is bench/request_log.py's


@dataclass(frozen=True)
class Setting:
    """One point to measure."""

    mode: str  # "in-process" or "http"
    workers: int
    max_batch: int

    @property
    def limit(self) -> float:
        """What batching allows: workers * max_batch_size per batch time."""
        return self.workers * self.max_batch / (BATCH_MS / 1000.0)

    @property
    def reachable(self) -> float:
        """The limit, capped by a closed loop of CONCURRENCY users (CONCURRENCY per
        batch time). Both are upper bounds: at the cap no request is ever spare, so
        any time between an answer and the next request leaves a batch short."""
        return min(self.limit, CONCURRENCY / (BATCH_MS / 1000.0))


SETTINGS = (
    *(Setting(mode, workers, TARGET_SIZE) for workers in (1, 2) for mode in ("in-process", "http")),
    *(Setting("in-process", SWEEP_WORKERS, size) for size in SWEEP_SIZES),
)


def graph_file(folder: Path, setting: Setting) -> Path:
    """``bench/graphs/batching.yaml`` with the setting's workers and batch size, beside
    its module."""
    spec = yaml.safe_load((GRAPHS_DIR / "batching.yaml").read_text())
    runner = spec["spec"]["runners"]["model"]
    runner["batching"]["max_batch_size"] = setting.max_batch
    runner["workers"] = setting.workers
    runner["init"]["batch_ms"] = BATCH_MS
    shutil.copy(GRAPHS_DIR / "fixed_cost.py", folder / "fixed_cost.py")
    path = folder / f"batching_{setting.workers}x{setting.max_batch}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


async def in_process(path: Path) -> BenchSummary:
    async with load(path) as graph:
        tune_for_serving()  # as graphctl serve does once ready
        target = GraphTarget(graph, INPUTS)
        return await run_load(
            target, concurrency=CONCURRENCY, duration_s=duration_s(), warmup_s=warmup_s()
        )


async def over_http(path: Path) -> BenchSummary:
    plan = compile_file(path)
    routes = {name: NodeRoute(node.runner, node.method) for name, node in plan.nodes.items()}
    async with (
        ServeProcess(path, extra_args=QUIET) as server,
        HTTPTarget(server.url, plan.name, INPUTS, routes) as target,
    ):
        return await run_load(
            target, concurrency=CONCURRENCY, duration_s=duration_s(), warmup_s=warmup_s()
        )


def figures(setting: Setting, summary: BenchSummary) -> dict[str, Any]:
    """One point's figures, as the result file keeps them."""
    node = summary.nodes.get("m")
    return {
        "mode": setting.mode,
        "workers": setting.workers,
        "max_batch": setting.max_batch,
        "rps": summary.throughput_rps,
        "limit": setting.limit,
        "reachable": setting.reachable,
        "p50_ms": summary.p50_ms,
        "p99_ms": summary.p99_ms,
        "mean_batch": None if node is None else node.mean_batch_size,
        "errors": summary.error_count,
    }


def row(point: Mapping[str, Any]) -> list[Any]:
    return [
        point["mode"],
        point["workers"],
        point["max_batch"],
        round(point["rps"], 1),
        round(point["limit"], 1),
        round(point["reachable"], 1),
        _pct(ratio(point["rps"], point["limit"])),
        _pct(ratio(point["rps"], point["reachable"])),
        point["p50_ms"],
        point["p99_ms"],
        point["mean_batch"],
        point["errors"],
    ]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 1)


def measure(folder: Path, setting: Setting) -> dict[str, Any]:
    path = graph_file(folder, setting)
    run = in_process if setting.mode == "in-process" else over_http
    point = figures(setting, asyncio.run(run(path)))
    print(
        f"  {setting.mode} {setting.workers} worker(s) x {setting.max_batch}: "
        f"{point['rps']:.0f} req/s",
        flush=True,
    )
    return point


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="graphctl-bench-") as folder:
        points = [measure(Path(folder), setting) for setting in SETTINGS]
    write_result(
        "batching",
        title=f"Batching: {BATCH_MS:g} ms per batch, concurrency {CONCURRENCY}",
        baseline=(
            "the analytic limit workers * max_batch_size / 20 ms; reachable: that limit "
            f"capped by what a closed loop of {CONCURRENCY} users allows ({CONCURRENCY} / 20 ms)"
        ),
        headers=[
            "mode",
            "workers",
            "max_batch",
            "req/s",
            "limit",
            "reachable",
            "% of limit",
            "% of reachable",
            "p50 ms",
            "p99 ms",
            "mean batch",
            "errors",
        ],
        rows=[row(point) for point in points],
        notes=[
            f"2 workers x {TARGET_SIZE} = {CONCURRENCY} users: the reachable bound leaves no "
            "request spare, so every answer's trip back and the next request's trip in "
            "leave a batch short; 100 % of it cannot be reached",
            f"over HTTP: graphctl serve {' '.join(QUIET)}, the load generator of graphctl bench",
        ],
        extra={"points": points},
    )


if __name__ == "__main__":
    main()
