"""Hang limits: recent batch times per method and the limit the defaults give."""

from __future__ import annotations

import pytest

from orchestrator.compiling._runner_settings import merge_settings
from runners import RunnerConfig, SupervisionConfig
from runners.health import RecentBatchTimes


def test_the_p99_follows_recent_batches() -> None:
    times = RecentBatchTimes()
    for i in range(200):  # refreshed at the 193rd: one outlier is not its p99
        times.observe(0.01 if i != 50 else 1.0)
    assert times.p99_s == pytest.approx(0.01)
    for _ in range(300):  # slower batches push the fast ones out of the window
        times.observe(0.2)
    assert times.p99_s == pytest.approx(0.2)


def test_by_default_a_stuck_fast_method_is_detected_in_seconds() -> None:
    defaults = SupervisionConfig()
    assert defaults.hang_limit_s(measured_batches=100, p99_batch_s=0.02) == 5.0
    assert defaults.hang_limit_s(measured_batches=100, p99_batch_s=2.0) == 20.0
    assert defaults.hang_limit_s(measured_batches=3, p99_batch_s=0.02) == 60.0  # warming up
    fixed = SupervisionConfig(hang_timeout_s=0.5)
    assert fixed.hang_limit_s(measured_batches=100, p99_batch_s=2.0) == 0.5


def test_restart_backoff_doubles_up_to_its_cap() -> None:
    timings = SupervisionConfig(restart_backoff_s=0.1, restart_backoff_cap_s=0.3)
    assert [timings.restart_delay_s(n) for n in range(4)] == [0.1, 0.2, 0.3, 0.3]


def test_supervision_merges_per_field_and_reports_bad_values() -> None:
    base = RunnerConfig(name="r", runnable="m:C")
    merged, problems = merge_settings(
        base, {"supervision": {"hang_timeout_s": 30, "ping_interval_s": 1}}
    )
    assert problems == []
    assert merged.supervision == SupervisionConfig(hang_timeout_s=30, ping_interval_s=1)
    _, problems = merge_settings(base, {"supervision": {"hang_factor": 0.5, "pings": 1}})
    assert [(p.path, p.message.split(";")[0]) for p in problems] == [
        (("supervision", "pings"), "unknown key 'pings'"),
        (("supervision", "hang_factor"), "must be a number >= 1, got 0.5"),
    ]
