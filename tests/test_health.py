"""Hang limits: recent batch times per method, the p99 they give, and the one
hang timer per busy worker (on a real event loop, with a stand-in worker that
records being killed). The limit arithmetic itself is tested in test_config."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import pytest

from runners import BatchingConfig, SupervisionConfig
from runners.batcher import Flight, MethodQueue
from runners.health import REFRESH_EVERY, HangWatch, RecentBatchTimes, WorkerState, p99
from runners.runnable import MethodSpec
from tests.conftest import until


def test_the_p99_follows_recent_batches() -> None:
    times = RecentBatchTimes()
    for i in range(200):  # refreshed at the 193rd: one outlier is not its p99
        times.observe(0.01 if i != 50 else 1.0)
    assert times.p99_s == pytest.approx(0.01)
    for _ in range(300):  # slower batches push the fast ones out of the window
        times.observe(0.2)
    assert times.p99_s == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], 0.0),
        ([3.0], 3.0),
        ([1.0, 2.0], 2.0),
        (list(range(1, 101)), 99),
        (list(range(1, 201)), 198),
        ([5.0] * 99 + [100.0], 5.0),
        ([5.0] * 98 + [100.0, 100.0], 100.0),
    ],
)
def test_p99_is_the_nearest_rank(values: list[float], expected: float) -> None:
    assert p99(deque(values)) == expected


def test_the_p99_is_recomputed_only_every_few_batches_once_warm() -> None:
    times = RecentBatchTimes()
    for _ in range(REFRESH_EVERY + 1):
        times.observe(0.01)
    times.observe(5.0)  # batch REFRESH_EVERY + 2: no recomputation yet
    assert times.p99_s == pytest.approx(0.01)
    while times.count % REFRESH_EVERY != 1:
        times.observe(5.0)
    assert times.p99_s == pytest.approx(5.0)


class _Worker:
    """Stands for a ``runners.transport.Worker``: records being killed."""

    id = 0
    label = "r/worker-0"
    methods: Mapping[str, MethodSpec] = {}

    def __init__(self) -> None:
        self.killed = 0

    def send_batch(self, batch_id: int, method: str, args: list[Any], kwargs: Any) -> None:
        raise AssertionError("not used")

    def kill(self) -> None:
        self.killed += 1


def _flight(method: str, sent_at: float) -> Flight:
    queue = MethodQueue(MethodSpec(method, batchable=True), BatchingConfig(), 16)
    return Flight(queue=queue, calls=[], batch_id=1, sent_at=sent_at, rows=1, split=[])


FAST = SupervisionConfig(hang_floor_s=0.05, hang_warmup_s=0.05, hang_warmup_batches=1)


def test_limit_starts_at_the_warm_up_limit_and_follows_measurements() -> None:
    watch = HangWatch(SupervisionConfig())
    assert watch.limit_s("predict") == 60.0
    for _ in range(20):
        watch.observe("predict", 2.0)
    assert watch.limit_s("predict") == pytest.approx(20.0)
    assert watch.limit_s("other") == 60.0  # per method


def test_an_idle_worker_never_looks_hung() -> None:
    watch = HangWatch(FAST)
    assert not watch.looks_hung(WorkerState(_Worker()), time.monotonic() + 1000)


def test_a_worker_looks_hung_past_factor_times_p99_before_its_kill_limit() -> None:
    watch = HangWatch(SupervisionConfig(hang_floor_s=10.0, hang_factor=2.0, hang_warmup_batches=1))
    watch.observe("predict", 0.1)
    state = WorkerState(_Worker(), flight=_flight("predict", sent_at=100.0))
    assert watch.limit_s("predict") == 10.0  # killed only at the floor
    assert not watch.looks_hung(state, 100.15)
    assert watch.looks_hung(state, 100.25)  # but not ready past 2 x p99


def test_a_batch_past_its_limit_gets_its_worker_killed() -> None:
    worker = _Worker()
    state = WorkerState(worker)

    async def main() -> None:
        watch = HangWatch(FAST)
        state.flight = _flight("predict", sent_at=time.monotonic())
        watch.sent(state, "predict")
        await until(lambda: worker.killed > 0)

    asyncio.run(main())
    assert worker.killed == 1 and state.hung and state.hang_timer is None


def test_an_idle_worker_is_not_killed_and_the_timer_is_dropped() -> None:
    worker = _Worker()
    state = WorkerState(worker)

    async def main() -> None:
        watch = HangWatch(FAST)
        state.flight = _flight("predict", sent_at=time.monotonic())
        watch.sent(state, "predict")
        state.flight = None  # the answer came
        await until(lambda: state.hang_timer is None)

    asyncio.run(main())
    assert worker.killed == 0 and not state.hung


def test_a_later_batch_re_arms_the_timer_instead_of_killing() -> None:
    worker = _Worker()
    state = WorkerState(worker)
    limit = 0.2

    async def main() -> float:
        watch = HangWatch(SupervisionConfig(hang_timeout_s=limit))
        state.flight = _flight("predict", sent_at=time.monotonic())
        watch.sent(state, "predict")
        await asyncio.sleep(limit / 2)
        second = time.monotonic()
        state.flight = _flight("predict", sent_at=second)  # the same timer stays armed
        await until(lambda: worker.killed > 0)
        return time.monotonic() - second

    held = asyncio.run(main())
    assert held >= limit * 0.9  # the second batch had its whole limit
    assert worker.killed == 1


def test_forget_cancels_the_timer() -> None:
    worker = _Worker()
    state = WorkerState(worker)

    async def main() -> None:
        watch = HangWatch(FAST)
        state.flight = _flight("predict", sent_at=time.monotonic())
        watch.sent(state, "predict")
        watch.forget(state)
        assert state.hang_timer is None
        await asyncio.sleep(0.15)

    asyncio.run(main())
    assert worker.killed == 0
