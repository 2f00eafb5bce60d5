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
from orchestrator.server._metrics import Metrics
from runners.types import QUEUE_WAIT_BUCKETS_S, MethodStats, PoolStats
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


def _exposition(node_count: int, batch_sizes: dict[int, int], wait_s: float) -> str:
    """The server's own /metrics body, with one runner node ``a``: half its runs
    take 5 ms, half 50 ms; its calls waited ``wait_s`` in all."""
    metrics = Metrics(lambda: {"g": {"r": _pool(batch_sizes, wait_s)}})
    timer = metrics.node_timer("g")
    for run in range(node_count):
        timer.observe("a", 0.005 if run < node_count - node_count // 2 else 0.05)
    return metrics.render().decode()


def _pool(batch_sizes: dict[int, int], wait_s: float) -> PoolStats:
    items = sum(size * n for size, n in batch_sizes.items())
    waits = [0] * (len(QUEUE_WAIT_BUCKETS_S) + 1)
    waits[-1] = items
    method = MethodStats(
        queue_length=3,
        calls=items,
        batches=sum(batch_sizes.values()),
        batch_sizes=batch_sizes,
        queue_wait_s_sum=wait_s,
        queue_waits=waits,
    )
    return PoolStats(
        "r", workers=1, ready_workers=1, restarts=0, healthy=True, methods={"predict": method}
    )


def test_node_figures_come_from_the_difference_of_two_scrapes() -> None:
    before = parse_metrics(_exposition(10, {2: 5}, 0.010))
    after = parse_metrics(_exposition(110, {2: 5, 4: 25}, 0.210))
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
    assert a.p50_ms is not None and 0.0 < a.p50_ms <= 5.0
    assert a.p99_ms is not None and 25.0 < a.p99_ms <= 50.0
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
