"""The load generator's summary maths: throughput of successes only, percentiles
interpolated as numpy does, errors by kind, per-node figures over distinct
batches, and the rounded JSON object ``graphctl bench -o json`` prints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.errors import NodeFailed
from orchestrator.loadgen._summary import (
    BenchSummary,
    NodeSample,
    NodeSummary,
    error_kind,
    mean_or_none,
    summarize,
    summarize_nodes,
)
from runners.errors import Overloaded, WorkerCrashed


def test_summarize_counts_only_successes_in_throughput() -> None:
    summary = summarize(
        target="t",
        concurrency=2,
        duration_s=2.0,
        latencies_ms=[float(v) for v in range(1, 101)],
        errors={"HTTP 503": 3},
        nodes={},
    )
    assert summary.requests == 100
    assert summary.throughput_rps == 50.0
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.max_ms == 100.0
    assert summary.error_count == 3


def test_summary_json_has_the_documented_keys() -> None:
    nodes = {"a": NodeSummary(calls=4, mean_batch_size=2.0, p50_ms=1.0, queue_wait_ms=0.5)}
    summary = summarize(
        target="t", concurrency=1, duration_s=1.0, latencies_ms=[1.0], errors={}, nodes=nodes
    )
    found = json.loads(json.dumps(summary.to_json()))
    for key in ("throughput_rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "nodes"):
        assert key in found
    assert set(found["nodes"]["a"]) >= {"calls", "mean_batch_size", "p50_ms", "queue_wait_ms"}


def test_node_batch_size_is_the_mean_over_distinct_batches() -> None:
    samples = [
        NodeSample("a", 2.0, queue_wait_ms=1.0, batch_id=1, batch_size=3),
        NodeSample("a", 4.0, queue_wait_ms=3.0, batch_id=1, batch_size=3),
        NodeSample("a", 6.0, queue_wait_ms=2.0, batch_id=1, batch_size=3),
        NodeSample("a", 8.0, queue_wait_ms=2.0, batch_id=2, batch_size=1),
        NodeSample("pre", 0.1),
    ]
    nodes = summarize_nodes(samples)
    assert list(nodes) == ["a", "pre"]
    assert nodes["a"].calls == 4
    assert nodes["a"].mean_batch_size == 2.0  # batches of 3 and 1, not calls
    assert nodes["a"].queue_wait_ms == 2.0
    assert nodes["a"].p50_ms == 5.0
    assert nodes["pre"].mean_batch_size is None and nodes["pre"].queue_wait_ms is None


def test_error_kind_names_the_cause_of_a_failed_node() -> None:
    crashed = NodeFailed("a", Overloaded("queue full"), runner="mlp_a")
    assert error_kind(crashed) == "NodeFailed(Overloaded)"
    assert error_kind(TimeoutError()) == "TimeoutError"


def test_an_empty_window_has_no_percentiles_and_no_throughput() -> None:
    summary = summarize(
        target="t", concurrency=4, duration_s=0.0, latencies_ms=[], errors={}, nodes={}
    )
    assert summary.requests == 0 and summary.throughput_rps == 0.0
    assert (summary.p50_ms, summary.p90_ms, summary.p99_ms, summary.max_ms) == (None,) * 4
    assert summary.mean_ms is None and summary.error_count == 0
    found = summary.to_json()
    assert found["p50_ms"] is None and found["throughput_rps"] == 0.0


@pytest.mark.parametrize(
    ("latencies", "p50", "p90", "mean"),
    [
        ([7.0], 7.0, 7.0, 7.0),
        ([1.0, 3.0], 2.0, 2.8, 2.0),
        ([4.0, 1.0, 3.0, 2.0], 2.5, 3.7, 2.5),
    ],
)
def test_percentiles_interpolate_between_samples(
    latencies: list[float], p50: float, p90: float, mean: float
) -> None:
    summary = summarize(
        target="t", concurrency=1, duration_s=1.0, latencies_ms=latencies, errors={}, nodes={}
    )
    assert summary.p50_ms == pytest.approx(p50)
    assert summary.p90_ms == pytest.approx(p90)
    assert summary.mean_ms == pytest.approx(mean)
    assert summary.max_ms == max(latencies)


def test_json_rounds_to_microseconds_and_sorts_errors() -> None:
    summary = BenchSummary(
        target="http://127.0.0.1:1/g",
        concurrency=8,
        duration_s=2.00049,
        requests=3,
        throughput_rps=1.499999,
        p50_ms=1.23456,
        p90_ms=None,
        p99_ms=2.0,
        max_ms=2.0004,
        mean_ms=1.0,
        errors={"Overloaded": 1, "HTTP 500": 2},
        nodes={"a": NodeSummary(calls=3, mean_batch_size=1.33333, p50_ms=0.1)},
        refused=4,
    )
    found = summary.to_json()
    assert found["duration_s"] == 2.0 and found["throughput_rps"] == 1.5
    assert found["p50_ms"] == 1.235 and found["p90_ms"] is None and found["max_ms"] == 2.0
    assert list(found["errors"]) == ["HTTP 500", "Overloaded"]
    assert found["refused"] == 4 and summary.error_count == 3
    assert found["nodes"]["a"] == {
        "calls": 3,
        "mean_batch_size": 1.333,
        "p50_ms": 0.1,
        "p99_ms": None,
        "queue_wait_ms": None,
    }
    assert json.loads(json.dumps(found)) == found


class _Kinded(Exception):
    kind = "HTTP 503"


class _BadKind(Exception):
    kind = 503


def _chained() -> Exception:
    try:
        try:
            raise WorkerCrashed("gone")
        except WorkerCrashed as cause:
            raise NodeFailed("a", cause) from cause
    except NodeFailed as error:
        return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_Kinded(), "HTTP 503"),
        (_BadKind(), "_BadKind"),
        (ValueError("x"), "ValueError"),
        (NodeFailed("a", KeyError("k")), "NodeFailed(KeyError)"),
        (_chained(), "NodeFailed(WorkerCrashed)"),
        (Overloaded("full"), "Overloaded"),
    ],
)
def test_error_kinds(error: BaseException, kind: str) -> None:
    assert error_kind(error) == kind


@pytest.mark.parametrize(
    ("values", "mean"),
    [([], None), ([2.0], 2.0), ([1, 2, 3, 4], 2.5)],
)
def test_mean_or_none(values: list[Any], mean: float | None) -> None:
    assert mean_or_none(values) == mean


def test_nodes_without_runner_details_keep_their_latencies_only() -> None:
    nodes = summarize_nodes([NodeSample("f", 1.0), NodeSample("f", 3.0), NodeSample("g", 2.0)])
    assert nodes["f"] == NodeSummary(calls=2, p50_ms=2.0, p99_ms=pytest.approx(2.98))
    assert nodes["g"].calls == 1
    assert summarize_nodes([]) == {}
