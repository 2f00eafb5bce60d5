"""The HTTP target: loopback-only URLs, per-node figures from two scrapes of
``/metrics``, and clients that wait out a server's ``Retry-After``."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from orchestrator import create_app, load
from orchestrator.loadgen import BenchError
from orchestrator.loadgen._http import (
    HTTPTarget,
    NodeRoute,
    diff_snapshots,
    histogram_quantile,
    node_stats_from_metrics,
    parse_metrics,
    require_loopback,
)
from orchestrator.loadgen._load import run_load
from tests._serve_helpers import SERVE_GRAPHS, thread_server, wait_until


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/", "http://localhost:1", "http://[::1]:80", "http://127.1.2.3"]
)
def test_loopback_urls_are_accepted(url: str) -> None:
    assert not require_loopback(url).endswith("/")


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:8000", "http://example.com", "ftp://127.0.0.1", "127.0.0.1:8000"]
)
def test_other_urls_are_refused_with_a_clear_message(url: str) -> None:
    with pytest.raises(BenchError, match="--url"):
        require_loopback(url)


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    buckets = [(0.001, 0.0), (0.01, 50.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.01)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.0055)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.0982)
    assert histogram_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None


def test_histogram_quantile_in_the_open_bucket_returns_its_lower_bound() -> None:
    assert histogram_quantile(0.99, [(0.5, 10.0), (float("inf"), 20.0)]) == 0.5


def _exposition(node_count: int, batches: int, items: int, calls: int, wait_s: float) -> str:
    """A /metrics body shaped like the server's, with one runner node ``a``."""
    slow = node_count // 2
    return f"""\
# HELP graphctl_node_seconds Time from a node's start to its result, in seconds.
# TYPE graphctl_node_seconds histogram
graphctl_node_seconds_bucket{{graph="g",node="a",le="0.001"}} 0.0
graphctl_node_seconds_bucket{{graph="g",node="a",le="0.01"}} {node_count - slow}.0
graphctl_node_seconds_bucket{{graph="g",node="a",le="0.1"}} {node_count}.0
graphctl_node_seconds_bucket{{graph="g",node="a",le="+Inf"}} {node_count}.0
graphctl_node_seconds_count{{graph="g",node="a"}} {node_count}.0
graphctl_node_seconds_sum{{graph="g",node="a"}} 0.5
# HELP graphctl_runner_calls_total Calls submitted.
# TYPE graphctl_runner_calls_total counter
graphctl_runner_calls_total{{graph="g",runner="r",method="predict"}} {calls}.0
# HELP graphctl_runner_queue_wait_seconds_total Total time calls waited in the queue.
# TYPE graphctl_runner_queue_wait_seconds_total counter
graphctl_runner_queue_wait_seconds_total{{graph="g",runner="r",method="predict"}} {wait_s}
# HELP graphctl_runner_batch_size Items per batch.
# TYPE graphctl_runner_batch_size histogram
graphctl_runner_batch_size_bucket{{graph="g",runner="r",method="predict",le="+Inf"}} {batches}.0
graphctl_runner_batch_size_count{{graph="g",runner="r",method="predict"}} {batches}.0
graphctl_runner_batch_size_sum{{graph="g",runner="r",method="predict"}} {items}.0
# HELP graphctl_runner_queue_length Calls waiting in the batcher queue.
# TYPE graphctl_runner_queue_length gauge
graphctl_runner_queue_length{{graph="g",runner="r",method="predict"}} 3.0
"""


def test_node_figures_come_from_the_difference_of_two_scrapes() -> None:
    before = parse_metrics(_exposition(10, 5, 10, 10, 0.010))
    after = parse_metrics(_exposition(110, 30, 110, 110, 0.210))
    delta = diff_snapshots(before, after)
    gauge = [s for s in delta if s.family == "graphctl_runner_queue_length"]
    assert [s.value for s in gauge] == [3.0]  # a gauge is a level, never differenced
    nodes = node_stats_from_metrics(
        delta, "g", {"a": NodeRoute("r", "predict"), "post": NodeRoute()}
    )
    a = nodes["a"]
    assert a.calls == 100
    assert a.mean_batch_size == pytest.approx(100 / 25)
    assert a.queue_wait_ms == pytest.approx(200.0 / 100)
    assert a.p50_ms == pytest.approx(10.0)
    assert a.p99_ms is not None and 10.0 < a.p99_ms <= 100.0
    assert nodes["post"].calls == 0 and nodes["post"].mean_batch_size is None


def test_clients_wait_out_retry_after_and_count_refusals_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = tmp_path / "release"
    monkeypatch.setenv("SERVE_TEST_RELEASE", str(release))
    app = create_app([load(SERVE_GRAPHS / "held.yaml")], max_inflight=1)
    with thread_server(app) as url:
        holder = threading.Thread(
            target=httpx.post, args=(f"{url}/held",), kwargs={"json": {"x": [1.0]}, "timeout": 60}
        )
        holder.start()
        try:
            wait_until(
                lambda: 'runner="holder"} 1.0' in httpx.get(f"{url}/metrics").text,
                what="the held request to reach its runner",
            )
            assert httpx.post(f"{url}/held", json={"x": [2.0]}).status_code == 503

            async def measure() -> tuple[int, dict[str, int]]:
                async with HTTPTarget(url, "held", {"x": [3.0]}, {}) as target:
                    summary = await run_load(target, concurrency=4, duration_s=1.5, drain_s=1.0)
                return summary.refused, dict(summary.errors)

            refused, errors = asyncio.run(measure())
        finally:
            release.touch()
            holder.join(timeout=30)
    assert errors == {}
    assert 4 <= refused <= 8  # Retry-After: 1 -> at most two tries per client in 1.5 s
