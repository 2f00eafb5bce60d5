"""The performance targets, each read from one run's result files against the
baseline measured in that same run: the "Targets" table of ``bench/RESULTS.md``.

A target whose figures the run did not produce (a benchmark skipped, timed out
or not run with ``--only``) is listed as "not measured", never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Result = Mapping[str, Any]
Row = list[Any]  # target, measured, baseline, verdict
Verdict = tuple[str, str, bool]  # measured, baseline, met

# HTTP, diamond graph against the inline app (bench/http.py).
HTTP_MIN_X_INLINE_RPS = 1.0  # at c=64 and c=16
HTTP_MAX_P99_OVER_P50 = 2.0  # at c=64, graphctl's p99 over its own p50
HTTP_C1_P50_SLACK_MS = 0.3  # at c=1, graphctl's p50 over the inline app's
# Batching, 20 ms per batch, max batch 32, c=64 (bench/batching.py): % of the limit.
BATCHING_MIN_PCT = {"in-process": 95.0, "http": 85.0}
BATCHING_HTTP_MAX_P99_MS = 60.0
# A runner call at concurrency 1 over the bare framed round trip (bench/runners.py).
RUNNER_CALL_MAX_X_FLOOR = 2.0
COLDSTART_MAX_S = 1.0  # launch to the first correct answer (bench/coldstart.py)
IDLE_MAX_PSS_MIB = 150.0  # server + workers, idle (bench/memory.py)


def _http_point(result: Result, client: str, server: str, level: int) -> Mapping[str, Any]:
    for point in result.get("points", []):
        if (point["workload"], point["client"], point["server"], point["concurrency"]) == (
            "diamond",
            client,
            server,
            level,
        ):
            return dict(point)
    raise LookupError(f"no diamond point {client} {server} c={level}")


def http_cpu(result: Result) -> Verdict:
    ours, inline = (_http_point(result, "raw", s, 64) for s in ("graphctl", "inline"))
    return (
        f"{ours['server_cpu_us']:.0f} us/req (its workers: {ours['workers_cpu_us']:.0f} us)",
        f"inline app {inline['total_cpu_us']:.0f} us/req",
        ours["server_cpu_us"] <= inline["total_cpu_us"],
    )


def http_rps(level: int, client: str = "raw") -> Callable[[Result], Verdict]:
    def verdict(result: Result) -> Verdict:
        ours, inline = (_http_point(result, client, s, level) for s in ("graphctl", "inline"))
        times = ours["rps"] / inline["rps"]
        return (
            f"{ours['rps']:.0f} req/s = {times:.2f}x",
            f"inline app {inline['rps']:.0f} req/s",
            times >= HTTP_MIN_X_INLINE_RPS,
        )

    return verdict


def http_p99(result: Result) -> Verdict:
    ours = _http_point(result, "raw", "graphctl", 64)
    bound = HTTP_MAX_P99_OVER_P50 * ours["p50_ms"]
    return (
        f"p99 {ours['p99_ms']:.2f} ms",
        f"{HTTP_MAX_P99_OVER_P50:g} x its p50 {ours['p50_ms']:.2f} ms = {bound:.2f} ms",
        ours["p99_ms"] <= bound,
    )


def http_c1_p50(result: Result) -> Verdict:
    ours, inline = (_http_point(result, "raw", s, 1) for s in ("graphctl", "inline"))
    return (
        f"p50 {ours['p50_ms']:.2f} ms (+{ours['p50_ms'] - inline['p50_ms']:.2f})",
        f"inline app p50 {inline['p50_ms']:.2f} ms",
        ours["p50_ms"] <= inline["p50_ms"] + HTTP_C1_P50_SLACK_MS,
    )


def _workers(count: int) -> str:
    return f"{count} worker{'s' if count > 1 else ''}"


def _batching_point(result: Result, mode: str, workers: int) -> Mapping[str, Any]:
    for point in result.get("points", []):
        if (point["mode"], point["workers"], point["max_batch"]) == (mode, workers, 32):
            return dict(point)
    raise LookupError(f"no batching point {mode} {_workers(workers)}")


def batching_rps(mode: str, workers: int) -> Callable[[Result], Verdict]:
    def verdict(result: Result) -> Verdict:
        point = _batching_point(result, mode, workers)
        pct = 100.0 * point["rps"] / point["limit"]
        return (
            f"{point['rps']:.0f} req/s = {pct:.1f} %",
            f"limit {point['limit']:.0f} req/s ({workers} x 32 / 20 ms)",
            pct >= BATCHING_MIN_PCT[mode],
        )

    return verdict


def batching_p99(workers: int) -> Callable[[Result], Verdict]:
    def verdict(result: Result) -> Verdict:
        point = _batching_point(result, "http", workers)
        return (
            f"p99 {point['p99_ms']:.1f} ms",
            f"a batch takes 20 ms; p50 {point['p50_ms']:.1f} ms",
            point["p99_ms"] <= BATCHING_HTTP_MAX_P99_MS,
        )

    return verdict


def runner_call(result: Result) -> Verdict:
    call, floor = result["call_p50_us"], result["floor_p50_us"]
    return (
        f"p50 {call:.1f} us = {call / floor:.2f}x",
        f"bare framed round trip (asyncio streams) p50 {floor:.1f} us",
        call <= RUNNER_CALL_MAX_X_FLOOR * floor,
    )


def coldstart(result: Result) -> Verdict:
    return (
        f"{result['median_s']:.2f} s (/readyz at {result['ready_median_s']:.2f} s)",
        f"the imports alone {result['baseline_s']:.2f} s",
        result["median_s"] <= COLDSTART_MAX_S,
    )


def idle_memory(result: Result) -> Verdict:
    return (
        f"{result['idle_total_mib']:.0f} MiB",
        f"one interpreter with the imports {result['baseline_mib']:.0f} MiB",
        result["idle_total_mib"] <= IDLE_MAX_PSS_MIB,
    )


BATCHING_TARGETS = [
    (
        f"batching {mode}, {_workers(workers)}, max batch 32, c=64: "
        f">= {BATCHING_MIN_PCT[mode]:g} % of {workers * 1600} req/s",
        "batching",
        batching_rps(mode, workers),
    )
    for workers in (1, 2)
    for mode in ("in-process", "http")
] + [
    (
        f"batching http, {_workers(workers)}: p99 <= {BATCHING_HTTP_MAX_P99_MS:g} ms",
        "batching",
        batching_p99(workers),
    )
    for workers in (1, 2)
]

# (what is promised, the benchmark whose result holds the figures, its verdict)
TARGETS: list[tuple[str, str, Callable[[Result], Verdict]]] = [
    ("HTTP diamond c=64: server-process CPU/req <= the inline app's total", "http", http_cpu),
    (
        f"HTTP diamond c=64: >= {HTTP_MIN_X_INLINE_RPS:.1f}x the inline app's req/s",
        "http",
        http_rps(64),
    ),
    (f"HTTP diamond c=64: p99 <= {HTTP_MAX_P99_OVER_P50:g}x its own p50", "http", http_p99),
    (
        f"HTTP diamond c=16: >= {HTTP_MIN_X_INLINE_RPS:.1f}x the inline app's req/s",
        "http",
        http_rps(16),
    ),
    (
        f"HTTP diamond c=1: p50 within {HTTP_C1_P50_SLACK_MS:g} ms of the inline app's",
        "http",
        http_c1_p50,
    ),
    (
        f"HTTP diamond c=64, aiohttp client: >= {HTTP_MIN_X_INLINE_RPS:.1f}x the inline app's "
        "req/s",
        "http",
        http_rps(64, "aiohttp"),
    ),
    *BATCHING_TARGETS,
    (
        "runner call at c=1 (queue + round trip + split) "
        f"<= {RUNNER_CALL_MAX_X_FLOOR:g}x the bare round trip",
        "runners",
        runner_call,
    ),
    (
        f"cold start of graphctl serve diamond to the first correct answer "
        f"<= {COLDSTART_MAX_S:g} s",
        "coldstart",
        coldstart,
    ),
    (f"idle server + workers <= {IDLE_MAX_PSS_MIB:g} MiB PSS", "memory", idle_memory),
]


def targets(results: Mapping[str, Result]) -> list[Row]:
    """Every target's row: what was measured, the same-run baseline, met or missed."""
    rows: list[Row] = []
    for promise, benchmark, verdict in TARGETS:
        try:
            measured, baseline, met = verdict(results[benchmark])
        except (LookupError, TypeError, ZeroDivisionError):
            rows.append([promise, "-", "-", "not measured"])
            continue
        rows.append([promise, measured, baseline, "met" if met else "missed"])
    return rows
