"""The load generator's closed loop: trace samples, the loop against a stand-in
target, and a short real in-process run of the diamond graph (its summary maths
are in test_loadgen_summary)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.graph import load
from orchestrator.loadgen._load import GraphTarget, run_load, samples_from_trace
from orchestrator.loadgen._summary import BenchSummary, NodeSample, NodeSummary
from runners.errors import Overloaded

DIAMOND = Path(__file__).resolve().parent.parent / "graphs" / "diamond.yaml"


def test_samples_from_trace_skip_skipped_nodes_and_read_map_spans() -> None:
    events = [
        {"ph": "M", "name": "thread_name", "args": {"name": "r"}},
        {"ph": "X", "name": "pre", "dur": 1500.0, "args": {"status": "ok"}},
        {"ph": "X", "name": "off", "dur": 1.0, "args": {"status": "skipped"}},
        {
            "ph": "X",
            "name": "m",
            "dur": 2000.0,
            "args": {"status": "ok", "batch_id": [7, 8], "batch_size": [2, 3], "queue_wait_ms": 1},
        },
    ]
    samples = samples_from_trace(events)
    assert [s.node for s in samples] == ["pre", "m"]
    assert samples[0].latency_ms == 1.5 and samples[0].batch_id is None
    assert (samples[1].batch_id, samples[1].batch_size) == (7, 3)


class FakeTarget:
    """Answers after ``delay_s``; every ``fail_every``-th request fails."""

    def __init__(self, delay_s: float, fail_every: int = 0) -> None:
        self.delay_s = delay_s
        self.fail_every = fail_every
        self.sent = 0
        self.snapshots = 0

    @property
    def description(self) -> str:
        return "fake"

    async def send(self) -> Sequence[NodeSample]:
        self.sent += 1
        number = self.sent
        await asyncio.sleep(self.delay_s)
        if self.fail_every and number % self.fail_every == 0:
            raise Overloaded("queue full")
        return (NodeSample("n", self.delay_s * 1000.0),)

    async def snapshot(self) -> int:
        self.snapshots += 1
        return self.snapshots

    def node_stats(self, before: Any, after: Any) -> dict[str, NodeSummary] | None:
        assert (before, after) == (1, 2)
        return None


def test_closed_loop_stops_at_the_request_limit_and_counts_errors_by_kind() -> None:
    target = FakeTarget(delay_s=0.001, fail_every=4)
    summary = asyncio.run(
        run_load(target, concurrency=4, duration_s=30.0, warmup_s=0.0, max_requests=40)
    )
    assert target.sent == 40  # bounded in requests: the 30 s window ends early
    assert summary.requests + summary.error_count == 40
    assert summary.errors == {"Overloaded": 10}
    assert summary.nodes["n"].calls == 30
    assert summary.duration_s < 30.0


def test_closed_loop_keeps_n_requests_in_flight_for_the_duration() -> None:
    target = FakeTarget(delay_s=0.01)
    ticks: list[float] = []
    summary = asyncio.run(
        run_load(
            target,
            concurrency=8,
            duration_s=0.5,
            warmup_s=0.2,
            on_progress=lambda p: ticks.append(p.elapsed_s),
        )
    )
    assert summary.duration_s == pytest.approx(0.5, abs=0.05)
    assert summary.requests > 8  # several rounds of 8 concurrent calls
    # closed loop: at most 8 in flight, each taking >= 10 ms
    assert summary.throughput_rps <= 8 / 0.01 * 1.05
    assert summary.p50_ms is not None and summary.p50_ms >= 10.0
    assert ticks and target.snapshots == 2


def test_in_process_bench_of_the_diamond_graph() -> None:
    inputs = json.loads(DIAMOND.with_name("diamond.input.json").read_text())

    async def bench() -> BenchSummary:
        async with load(DIAMOND) as graph:
            target = GraphTarget(graph, inputs)
            return await run_load(target, concurrency=4, duration_s=1.0, warmup_s=0.3)

    summary = asyncio.run(bench())
    assert summary.errors == {}
    assert summary.requests > 10 and summary.throughput_rps > 10
    assert summary.p50_ms is not None and summary.p99_ms is not None
    assert 0 < summary.p50_ms <= summary.p99_ms <= summary.max_ms  # type: ignore[operator]
    assert set(summary.nodes) == {"pre", "a", "b", "post"}
    assert all(node.calls > 0 for node in summary.nodes.values())
    for runner_node in ("a", "b"):
        node = summary.nodes[runner_node]
        assert node.mean_batch_size is not None and 1 <= node.mean_batch_size <= 4
        assert node.queue_wait_ms is not None and node.queue_wait_ms >= 0
