"""Admission on its own: what is refused at enqueue, with which message, and how
an admitted call leaves the queue at its deadline."""

from __future__ import annotations

import time

import pytest

from runners import CallTimeout, Overloaded, PoolClosed
from runners.admission import (
    admit,
    arm_timers,
    build_queues,
    enqueue,
    fail_queued,
    no_worker_error,
    queue_limit,
)
from runners.batcher import MethodQueue
from runners.config import BatchingConfig
from runners.runnable import MethodSpec
from tests.conftest import run, runner_config

CALL = ((1,), {})


def _queue(max_queue: int = 4, batch_time_s: float = 0.0, max_batch_size: int = 2) -> MethodQueue:
    batching = BatchingConfig(max_batch_size=max_batch_size, max_latency_ms=1000)
    queue = MethodQueue(MethodSpec("predict", batchable=True), batching, max_queue)
    queue.batch_time_s = batch_time_s
    return queue


def _admit(queue: MethodQueue, count: int, limit: float, *, idle: bool, workers: int = 1) -> None:
    admit(
        queue,
        count,
        time.monotonic(),
        limit,
        runner="r",
        max_queue=queue.max_queue,
        workers=workers,
        idle=idle,
    )


def test_a_deadline_already_past_is_a_timeout_and_the_limit_is_the_nearer_bound() -> None:
    queue, now = _queue(), time.monotonic()
    with pytest.raises(CallTimeout, match="before the call was queued"):
        queue_limit(queue, now, now - 0.001, "r")
    assert queue_limit(queue, now, None, "r") == pytest.approx(now + 1.0)
    assert queue_limit(queue, now, now + 0.25, "r") == now + 0.25


def test_a_full_queue_refuses_the_whole_fan_out_and_counts_it() -> None:
    async def main() -> None:
        queue = _queue(max_queue=4)
        enqueue(queue, [CALL] * 3, time.monotonic(), time.monotonic() + 1.0)
        with pytest.raises(
            Overloaded, match=r"^runner 'r\.predict': the queue is full \(4 calls\)$"
        ):
            _admit(queue, 2, time.monotonic() + 1.0, idle=False)
        assert queue.rejected == 2 and len(queue.queue) == 3
        _admit(queue, 1, time.monotonic() + 1.0, idle=False)  # the fourth still fits

    run(main())


def test_a_predicted_wait_past_the_deadline_is_refused_with_a_retry_hint() -> None:
    async def main() -> None:
        queue = _queue(batch_time_s=0.1, max_batch_size=2)
        enqueue(queue, [CALL] * 3, time.monotonic(), time.monotonic() + 1.0)
        with pytest.raises(Overloaded, match=r"predicted queue wait \(200 ms\)") as refused:
            _admit(queue, 1, time.monotonic() + 0.05, idle=False)
        assert refused.value.retry_after_s == pytest.approx(0.2)
        _admit(queue, 1, time.monotonic() + 0.05, idle=False, workers=8)  # 8 workers: 25 ms

    run(main())


def test_a_call_an_idle_worker_takes_at_once_is_never_refused_for_its_wait() -> None:
    queue = _queue(batch_time_s=10.0)
    _admit(queue, 1, time.monotonic() + 0.001, idle=True)
    assert queue.rejected == 0
    with pytest.raises(Overloaded):
        _admit(queue, 1, time.monotonic() + 0.001, idle=False)


def test_a_queued_call_times_out_at_its_limit_and_leaves_the_queue() -> None:
    async def main() -> None:
        queue = _queue()
        now = time.monotonic()
        (call,) = enqueue(queue, [CALL], now, now + 0.02)
        arm_timers(queue, [call], 0.02, "r")
        with pytest.raises(CallTimeout, match="waited in the queue past its deadline"):
            await call.future
        assert queue.timed_out == 1 and not queue.queue and call.timer is None

    run(main())


def test_fail_queued_fails_every_waiting_call_with_the_one_error() -> None:
    async def main() -> None:
        queues = {"a": _queue(), "b": _queue()}
        now = time.monotonic()
        calls = [
            *enqueue(queues["a"], [CALL] * 2, now, now + 1),
            *enqueue(queues["b"], [CALL], now, now + 1),
        ]
        fail_queued(queues, PoolClosed("stopped", runner="r"))
        assert not queues["a"].queue and not queues["b"].queue
        for call in calls:
            with pytest.raises(PoolClosed, match="stopped"):
                await call.future
        assert str(no_worker_error("m", "r")) == (
            "runner 'r.m': no worker is running: they kept failing to start"
        )

    run(main())


def test_queues_apply_the_runner_overrides_to_the_declared_methods() -> None:
    config = runner_config(max_queue=7, batching=BatchingConfig(max_batch_size=3))
    queues = build_queues({"predict": MethodSpec("predict", batchable=True)}, config)
    assert queues["predict"].max_items == 3 and queues["predict"].max_queue == 7
