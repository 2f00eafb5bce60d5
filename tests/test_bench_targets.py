"""The benchmark suite's Targets table: every target gets a row, read against the
same run's baseline, from result figures shaped by the benchmarks' own code."""

from __future__ import annotations

from typing import Any

from bench._http_clients import Point
from bench._targets import TARGETS, targets
from bench.batching import Setting
from bench.http import Measured
from bench.report import render


def http_point(server: str, level: int, rps: float, p50: float, p99: float, cpu: float) -> Any:
    point = Point(
        requests=int(rps * 2),
        errors=0,
        seconds=2.0,
        p50_ms=p50,
        p99_ms=p99,
        server_cpu_us=cpu,
        workers_cpu_us=cpu / 4 if server == "graphctl" else 0.0,
        client_cpu_us=30.0,
    )
    return Measured("diamond", "raw", server, level, point).to_json()


def batching_point(mode: str, workers: int, rps: float, p99: float) -> dict[str, Any]:
    setting = Setting(mode, workers, 32)
    return {
        "mode": mode,
        "workers": workers,
        "max_batch": 32,
        "rps": rps,
        "limit": setting.limit,
        "reachable": setting.reachable,
        "p50_ms": 25.0,
        "p99_ms": p99,
    }


def verdicts(results: dict[str, Any]) -> dict[str, str]:
    return {row[0]: row[3] for row in targets(results)}


def test_every_target_is_listed_as_not_measured_without_results() -> None:
    rows = targets({})
    assert [row[0] for row in rows] == [promise for promise, _, _ in TARGETS]
    assert {row[3] for row in rows} == {"not measured"}


def test_http_targets_compare_graphctl_with_the_inline_app_of_the_same_run() -> None:
    http = {
        "points": [
            http_point("graphctl", 64, rps=5000, p50=10.0, p99=19.0, cpu=100.0),
            http_point("inline", 64, rps=4900, p50=12.0, p99=30.0, cpu=120.0),
            http_point("graphctl", 16, rps=3000, p50=5.0, p99=9.0, cpu=150.0),
            http_point("inline", 16, rps=3100, p50=5.0, p99=9.0, cpu=120.0),
            http_point("graphctl", 1, rps=1500, p50=0.55, p99=1.0, cpu=400.0),
            http_point("inline", 1, rps=4000, p50=0.20, p99=0.5, cpu=170.0),
        ]
    }
    found = verdicts({"http": http})
    assert found["HTTP diamond c=64: server-process CPU/req <= the inline app's total"] == "met"
    assert found["HTTP diamond c=64: >= 1.0x the inline app's req/s"] == "met"
    assert found["HTTP diamond c=64: p99 <= 2x its own p50"] == "met"
    assert found["HTTP diamond c=16: >= 1.0x the inline app's req/s"] == "missed"
    assert found["HTTP diamond c=1: p50 within 0.3 ms of the inline app's"] == "missed"
    aiohttp = "HTTP diamond c=64, aiohttp client: >= 1.0x the inline app's req/s"
    assert found[aiohttp] == "not measured"


def test_batching_targets_are_percentages_of_the_analytic_limit() -> None:
    batching = {
        "points": [
            batching_point("in-process", 1, rps=1530, p99=45.0),  # 95.6 % of 1600
            batching_point("http", 1, rps=1340, p99=61.0),  # 83.8 %
            batching_point("in-process", 2, rps=3000, p99=45.0),  # 93.8 % of 3200
            batching_point("http", 2, rps=2800, p99=50.0),  # 87.5 %
        ]
    }
    found = verdicts({"batching": batching})
    prefix = "batching {}, {}, max batch 32, c=64: >= {} % of {} req/s"
    assert found[prefix.format("in-process", "1 worker", 95, 1600)] == "met"
    assert found[prefix.format("http", "1 worker", 85, 1600)] == "missed"
    assert found[prefix.format("in-process", "2 workers", 95, 3200)] == "missed"
    assert found[prefix.format("http", "2 workers", 85, 3200)] == "met"
    assert found["batching http, 1 worker: p99 <= 60 ms"] == "missed"
    assert found["batching http, 2 workers: p99 <= 60 ms"] == "met"


def test_runner_cold_start_and_memory_targets_and_the_rendered_table() -> None:
    results = {
        "runners": {"call_p50_us": 30.0, "floor_p50_us": 14.0},
        "coldstart": {"median_s": 1.2, "ready_median_s": 1.1, "baseline_s": 0.4},
        "memory": {"idle_total_mib": 120.0, "baseline_mib": 46.0},
    }
    rows = {row[0]: row for row in targets(results)}
    runner = rows["runner call at c=1 (queue + round trip + split) <= 2x the bare round trip"]
    assert runner[1:] == [
        "p50 30.0 us = 2.14x",
        "bare framed round trip (asyncio streams) p50 14.0 us",
        "missed",
    ]
    cold = rows["cold start of graphctl serve diamond to the first correct answer <= 1 s"]
    assert cold[3] == "missed"
    assert rows["idle server + workers <= 150 MiB PSS"][3] == "met"
    markdown = render(results, [])
    assert "| target | measured | baseline (same run) | verdict |" in markdown
    assert "| idle server + workers <= 150 MiB PSS | 120 MiB | " in markdown
