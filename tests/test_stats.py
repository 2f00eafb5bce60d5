"""Percentiles: one definition for every latency figure graphctl prints."""

from __future__ import annotations

from orchestrator._stats import percentiles
from orchestrator.cli._run_batch import BatchSummary


def test_percentiles_interpolate_like_numpy_and_are_none_when_empty() -> None:
    assert percentiles([1.0, 2.0, 3.0, 4.0], (50, 100)) == [2.5, 4.0]
    assert percentiles([], (50, 99)) == [None, None]


def test_the_run_summary_uses_the_same_percentiles() -> None:
    summary = BatchSummary(count=4, latencies_ms=[4.0, 1.0, 3.0, 2.0])
    assert summary.percentile(50) == 2.5
    assert BatchSummary().percentile(99) == 0.0
