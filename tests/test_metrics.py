"""Prometheus metrics: the pool collector over stats data, and /metrics of a live server."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import create_app, load
from orchestrator.server._metrics import Metrics
from orchestrator.server._process_usage import process_usage
from runners.types import MethodStats, PoolStats
from tests._serve_helpers import SERVE_GRAPHS, thread_server


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _stats() -> dict[str, dict[str, PoolStats]]:
    method = MethodStats(
        queue_length=3,
        in_flight=2,
        calls=40,
        batches=5,
        rejected=7,
        timed_out=1,
        batch_sizes={1: 2, 8: 2, 20: 1},
        queue_wait_s_sum=0.5,
        queue_waits=(3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),  # 3 under 0.5 ms, 1 over 2.5 s
        batch_time_s_sum=1.25,
    )
    pool = PoolStats(
        runner="mlp",
        workers=2,
        ready_workers=1,
        restarts=4,
        healthy=True,
        methods={"predict": method},
        worker_pids={7: os.getpid()},  # a real process: this one
    )
    return {"g": {"mlp": pool}}


def test_pool_stats_are_read_at_scrape_time() -> None:
    current = _stats()
    samples = _samples(Metrics(lambda: current).render().decode())
    runner = frozenset({("graph", "g"), ("runner", "mlp")})
    method = runner | {("method", "predict")}
    assert samples[("graphctl_runner_ready_workers", runner)] == 1
    assert samples[("graphctl_runner_workers", runner)] == 2
    assert samples[("graphctl_runner_worker_restarts_total", runner)] == 4
    assert samples[("graphctl_runner_queue_length", method)] == 3
    assert samples[("graphctl_runner_rejections_total", method)] == 7
    assert samples[("graphctl_runner_queue_wait_duration_seconds_sum", method)] == 0.5
    waits = "graphctl_runner_queue_wait_duration_seconds_bucket"
    assert samples[(waits, method | {("le", "0.0005")})] == 3
    assert samples[(waits, method | {("le", "2.5")})] == 3
    assert samples[(waits, method | {("le", "+Inf")})] == 4
    worker = runner | {("worker", "7")}
    assert samples[("graphctl_runner_worker_cpu_seconds_total", worker)] > 0
    assert samples[("graphctl_runner_worker_resident_memory_bytes", worker)] > 1 << 20
    assert samples[("graphctl_runner_batch_size_count", method)] == 5
    assert samples[("graphctl_runner_batch_size_sum", method)] == 1 * 2 + 8 * 2 + 20
    assert samples[("graphctl_runner_batch_size_bucket", method | {("le", "8")})] == 4
    assert samples[("graphctl_runner_batch_size_bucket", method | {("le", "16")})] == 4
    assert samples[("graphctl_runner_batch_size_bucket", method | {("le", "+Inf")})] == 5


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(dict), Metrics(dict)
    first.observe_request("g", "json", 200, 0.01)
    assert 'graph="g"' in first.render().decode()
    assert "graphctl_requests_total{" not in second.render().decode()


def test_live_server_counts_requests_nodes_and_pools() -> None:
    app = create_app([load(SERVE_GRAPHS / "calc.yaml")])
    with thread_server(app) as url:
        for _ in range(3):
            httpx.post(f"{url}/calc", json={"x": [1.0], "label": "a"}).raise_for_status()
        assert httpx.post(f"{url}/calc", json={"x": [1.0]}).status_code == 422
        response = httpx.get(f"{url}/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    ok = frozenset({("graph", "calc"), ("route", "json"), ("code", "200")})
    bad = frozenset({("graph", "calc"), ("route", "json"), ("code", "422")})
    assert samples[("graphctl_requests_total", ok)] == 3
    assert samples[("graphctl_requests_total", bad)] == 1
    assert samples[("graphctl_request_duration_seconds_count", ok)] == 3
    for node in ("scaled", "summary"):
        key = frozenset({("graph", "calc"), ("node", node), ("outcome", "ok")})
        assert samples[("graphctl_node_duration_seconds_count", key)] == 3
    method = frozenset({("graph", "calc"), ("runner", "scaler"), ("method", "scale")})
    assert samples[("graphctl_runner_calls_total", method)] == 3
    assert (
        samples[
            ("graphctl_runner_ready_workers", frozenset({("graph", "calc"), ("runner", "scaler")}))
        ]
        == 1
    )


def test_process_usage_reads_a_live_process_and_none_once_it_is_gone() -> None:
    busy = "import sys; sum(range(10**7)); print('done', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-c", busy], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "done\n"
        usage = process_usage(child.pid)
        assert usage is not None and usage.cpu_s > 0 and usage.resident_bytes > 1 << 20
    finally:
        child.communicate(timeout=60)  # closes its stdin: it exits, and is reaped
    assert process_usage(child.pid) is None


def _families(url: str) -> dict[str, Metric]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_nodes_are_timed_by_outcome_and_workers_by_process() -> None:
    app = create_app([load(SERVE_GRAPHS / "faulty.yaml")])
    with thread_server(app) as url:
        answer = httpx.post(f"{url}/faulty", json={"x": [1.0], "mode": "leak"}, timeout=30)
        assert answer.status_code == 500
        families = _families(url)
    samples = {
        (s.name, frozenset(s.labels.items())): s.value for f in families.values() for s in f.samples
    }
    node = "graphctl_node_duration_seconds_count"
    leaked = {("graph", "faulty"), ("node", "leaked")}
    assert samples[(node, frozenset(leaked | {("outcome", "failed")}))] == 1
    assert (node, frozenset(leaked | {("outcome", "ok")})) not in samples
    rotated = {("graph", "faulty"), ("node", "rotated"), ("outcome", "skipped")}
    assert samples[(node, frozenset(rotated))] == 1
    cpu = families["graphctl_runner_worker_cpu_seconds"].samples
    memory = families["graphctl_runner_worker_resident_memory_bytes"].samples
    assert [s.labels for s in cpu] == [{"graph": "faulty", "runner": "scaler", "worker": "0"}]
    assert cpu[0].value > 0 and memory[0].value > 1 << 20


def test_metric_names_follow_prometheus_conventions() -> None:
    app = create_app([load(SERVE_GRAPHS / "calc.yaml")])
    with thread_server(app) as url:
        httpx.post(f"{url}/calc", json={"x": [1.0], "label": "a"}).raise_for_status()
        httpx.post(f"{url}/calc", json={"x": [1.0]})  # a 422, counted too
        families = _families(url)  # the parser refuses a malformed exposition
    ours = {name: f for name, f in families.items() if name.startswith("graphctl_")}
    for name, family in ours.items():
        labels = {key for sample in family.samples for key in sample.labels}
        assert "status" not in labels, f"{name}: an HTTP status is the label 'code'"
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), name
        if family.type in ("histogram", "summary") and "seconds" in name:
            assert name.endswith("_duration_seconds"), name
        assert not name.endswith("_seconds") or family.type != "gauge", name
    assert {"graphctl_requests", "graphctl_request_duration_seconds"} <= ours.keys()
    assert {"graphctl_node_duration_seconds", "graphctl_runner_queue_wait_duration_seconds"} <= (
        ours.keys()
    )
    assert ours["graphctl_runner_queue_wait_duration_seconds"].type == "histogram"
    (build,) = ours["graphctl_build_info"].samples
    assert build.value == 1 and build.labels["version"] and build.labels["python"]
    codes = {s.labels["code"] for s in ours["graphctl_requests"].samples}
    assert codes == {"200", "422"}
    for standard in (
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "python_info",
        "python_gc_collections",
    ):
        assert standard in families, standard
