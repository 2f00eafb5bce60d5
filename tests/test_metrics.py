"""Prometheus metrics: the pool collector over stats data, and /metrics of a live server."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import create_app, load
from orchestrator.server._metrics import Metrics
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
        batch_time_s_sum=1.25,
    )
    pool = PoolStats(
        runner="mlp",
        workers=2,
        ready_workers=1,
        restarts=4,
        healthy=True,
        methods={"predict": method},
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
    assert samples[("graphctl_runner_queue_wait_seconds_total", method)] == 0.5
    assert samples[("graphctl_runner_batch_size_count", method)] == 5
    assert samples[("graphctl_runner_batch_size_sum", method)] == 1 * 2 + 8 * 2 + 20
    assert samples[("graphctl_runner_batch_size_bucket", method | {("le", "8")})] == 4
    assert samples[("graphctl_runner_batch_size_bucket", method | {("le", "16")})] == 4
    assert samples[("graphctl_runner_batch_size_bucket", method | {("le", "+Inf")})] == 5


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(dict), Metrics(dict)
    first.observe_request("g", "json", 200, 0.01)
    assert 'graphctl_requests_total{graph="g"' in first.render().decode()
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
    ok = frozenset({("graph", "calc"), ("route", "json"), ("status", "200")})
    bad = frozenset({("graph", "calc"), ("route", "json"), ("status", "422")})
    assert samples[("graphctl_requests_total", ok)] == 3
    assert samples[("graphctl_requests_total", bad)] == 1
    latency = frozenset({("graph", "calc"), ("status", "200")})
    assert samples[("graphctl_request_seconds_count", latency)] == 3
    for node in ("scaled", "summary"):
        key = frozenset({("graph", "calc"), ("node", node)})
        assert samples[("graphctl_node_seconds_count", key)] == 3
    method = frozenset({("graph", "calc"), ("runner", "scaler"), ("method", "scale")})
    assert samples[("graphctl_runner_calls_total", method)] == 3
    assert (
        samples[
            ("graphctl_runner_ready_workers", frozenset({("graph", "calc"), ("runner", "scaler")}))
        ]
        == 1
    )
