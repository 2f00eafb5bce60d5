"""Memory footprint: PSS (RSS where PSS is unavailable) of the ``graphctl serve``
process and of each worker, idle after start-up and at the peak under load.

Baseline: one bare interpreter with numpy, fastapi, uvicorn and httpx imported,
in the same run; the ratio says how many such interpreters the whole server
(server + workers) costs. The target on the idle total is in ``bench/_targets.py``.

    python -m bench.memory
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bench._common import DIAMOND, duration_s, ratio, warmup_s, write_result
from bench._procs import ProcessMemory, baseline_memory, tree_memory
from orchestrator.compiling import compile_file
from orchestrator.loadgen import BenchSummary, HTTPTarget, NodeRoute, ServeProcess, run_load

CONCURRENCY = 16
SAMPLE_EVERY_S = 0.25


async def sample_peak(pid: int, peak: dict[int, ProcessMemory]) -> None:
    """Keep the largest PSS seen per process until cancelled."""
    while True:
        for memory in tree_memory(pid):
            if memory.pid not in peak or memory.pss_mib > peak[memory.pid].pss_mib:
                peak[memory.pid] = memory
        await asyncio.sleep(SAMPLE_EVERY_S)


async def measure() -> tuple[list[ProcessMemory], list[ProcessMemory], BenchSummary]:
    plan = compile_file(DIAMOND)
    inputs = json.loads(DIAMOND.with_name("diamond.input.json").read_text())
    routes = {name: NodeRoute(node.runner, node.method) for name, node in plan.nodes.items()}
    async with ServeProcess(DIAMOND) as server:
        idle = tree_memory(server.pid)
        peak: dict[int, ProcessMemory] = {}
        async with HTTPTarget(server.url, plan.name, inputs, routes) as target:
            sampler = asyncio.create_task(sample_peak(server.pid, peak))
            try:
                summary = await run_load(
                    target, concurrency=CONCURRENCY, duration_s=duration_s(), warmup_s=warmup_s()
                )
            finally:
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
    return idle, list(peak.values()), summary


def rows_for(phase: str, processes: list[ProcessMemory]) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [phase, f"{m.role} {m.pid}", round(m.pss_mib, 1), round(m.rss_mib, 1)] for m in processes
    ]
    total_pss = sum(m.pss_mib for m in processes)
    rows.append([phase, "total", round(total_pss, 1), round(sum(m.rss_mib for m in processes), 1)])
    return rows


def main() -> None:
    idle, loaded, summary = asyncio.run(measure())
    base = baseline_memory()
    idle_total = sum(m.pss_mib for m in idle)
    loaded_total = sum(m.pss_mib for m in loaded)
    rows = [
        *rows_for("idle", idle),
        *rows_for(f"load @{CONCURRENCY}", loaded),
        [
            "baseline",
            "python + numpy/fastapi/uvicorn/httpx",
            round(base.pss_mib, 1),
            round(base.rss_mib, 1),
        ],
    ]
    write_result(
        "memory",
        title="Memory of graphctl serve graphs/diamond.yaml (server + workers)",
        baseline="one bare interpreter with numpy, fastapi, uvicorn and httpx imported",
        headers=["phase", "process", "PSS MiB", "RSS MiB"],
        rows=rows,
        notes=[
            f"idle total {idle_total:.1f} MiB = {ratio(idle_total, base.pss_mib) or 0:.1f}x "
            "baseline",
            f"under load {loaded_total:.1f} MiB at {summary.throughput_rps:.0f} req/s, "
            f"{summary.error_count} errors",
        ],
        extra={
            "idle_total_mib": idle_total,
            "load_total_mib": loaded_total,
            "baseline_mib": base.pss_mib,
        },
    )


if __name__ == "__main__":
    main()
