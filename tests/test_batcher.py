from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import numpy as np
import pytest

from runners import (
    BatchingConfig,
    MethodError,
    MethodSpec,
    MethodStats,
    ProtocolError,
    WorkerCrashed,
    WorkerPool,
)
from runners.batcher import (
    MethodQueue,
    PendingCall,
    batch_error,
    oldest_queue,
    predicted_wait_s,
    survivors_of_crash,
    take_batch,
)
from runners.replies import PROTOCOL_FAULT
from tests.conftest import run, runner_config

STACKED = MethodSpec("predict", batchable=True, batch_dim=0, stack=True)
CONCAT = MethodSpec("predict", batchable=True, batch_dim=0)
SINGLE = MethodSpec("predict")


def _call(*args: Any, solo: bool = False, **kwargs: Any) -> PendingCall:
    loop = asyncio.new_event_loop()
    future: asyncio.Future[Any] = loop.create_future()
    loop.close()
    return PendingCall(args, kwargs, future, 0.0, solo=solo)


def test_take_batch_takes_up_to_the_limit_in_order() -> None:
    queue = deque(_call(np.zeros(3) + i) for i in range(10))
    batch = take_batch(queue, 4, STACKED)
    assert [c.args[0][0] for c in batch] == [0, 1, 2, 3]
    assert len(queue) == 6


def test_take_batch_takes_what_is_there_without_waiting() -> None:
    queue = deque([_call(np.zeros(3))])
    assert len(take_batch(queue, 32, STACKED)) == 1
    assert not queue


def test_take_batch_groups_by_shape_not_only_consecutive_calls() -> None:
    shapes = [3, 3, 4, 3, 4, 4, 3]
    queue = deque(_call(np.zeros(n)) for n in shapes)
    first = take_batch(queue, 32, STACKED)
    assert [c.args[0].shape[0] for c in first] == [3, 3, 3, 3]
    assert [c.args[0].shape[0] for c in queue] == [4, 4, 4]  # the rest keep their order
    assert len(take_batch(queue, 32, STACKED)) == 3 and not queue


def test_take_batch_counts_rows_when_calls_are_concatenated() -> None:
    queue = deque(_call(np.zeros((n, 2))) for n in (5, 20, 10, 2, 1))
    batch = take_batch(queue, 32, CONCAT)
    assert [c.rows for c in batch] == [5, 20, 2, 1]  # 10 more rows would pass 32
    assert [c.args[0].shape[0] for c in queue] == [10]


def test_a_call_larger_than_the_batch_limit_runs_alone() -> None:
    queue = deque(_call(np.zeros((n, 2))) for n in (40, 1))
    assert [c.rows for c in take_batch(queue, 32, CONCAT)] == [40]
    assert [c.rows for c in take_batch(queue, 32, CONCAT)] == [1]


def test_non_batchable_and_solo_calls_go_alone() -> None:
    queue = deque([_call(1), _call(1), _call(1, solo=True), _call(1)])
    assert len(take_batch(queue, 32, SINGLE)) == 1
    assert len(take_batch(queue, 32, STACKED)) == 2  # merges past the solo call
    (solo,) = take_batch(queue, 32, STACKED)
    assert solo.solo and not queue


def test_predicted_wait_counts_full_batches_over_workers() -> None:
    assert predicted_wait_s(0, 32, 1, 0.02) == pytest.approx(0.02)
    assert predicted_wait_s(64, 32, 1, 0.02) == pytest.approx(0.06)
    assert predicted_wait_s(64, 32, 2, 0.02) == pytest.approx(0.03)
    assert predicted_wait_s(100, 32, 1, 0.0) == 0.0  # nothing measured yet


def test_method_queue_discard_and_stats() -> None:
    queue = MethodQueue(STACKED, BatchingConfig(max_batch_size=8), max_queue=10)
    calls = [_call(np.zeros(2)) for _ in range(3)]
    queue.queue.extend(calls)
    queue.discard(calls[1])
    queue.discard(calls[1])  # idempotent
    assert list(queue.queue) == [calls[0], calls[2]]
    queue.record_batch(2, 0.02)
    queue.record_batch(2, 0.04)
    stats = queue.snapshot()
    assert stats.queue_length == 2 and stats.batches == 2 and stats.batch_sizes == {2: 2}
    assert 0.02 < queue.batch_time_s < 0.04
    assert queue.max_items == 8


def test_a_call_lost_twice_with_a_worker_fails_and_the_rest_are_requeued_in_order() -> None:
    queue = MethodQueue(STACKED, BatchingConfig(), max_queue=10)
    first, second, third = (_call(np.zeros(2)) for _ in range(3))
    second.crashes = 1  # already lost once
    for call in (first, second, third):
        call.queued = False
    retry = survivors_of_crash([first, second, third], WorkerCrashed("gone", runner="r"))
    assert retry == [first, third] and first.crashes == third.crashes == 1
    assert isinstance(second.future.exception(), WorkerCrashed)
    queue.queue.append(_call(np.ones(2)))
    queue.requeue(retry, solo=True)
    assert list(queue.queue)[:2] == [first, third] and first.solo and first.queued


def test_oldest_queue_is_the_one_whose_head_waited_longest() -> None:
    queues = [MethodQueue(STACKED, BatchingConfig(), max_queue=10) for _ in range(3)]
    for queue, enqueued_at in zip(queues[1:], (5.0, 2.0), strict=True):
        call = _call(np.zeros(2))
        call.enqueued_at = enqueued_at
        queue.queue.append(call)
    assert oldest_queue(queues) is queues[2]
    assert oldest_queue(queues[:1]) is None


def test_a_free_worker_holds_the_queue_only_until_its_share_of_the_outstanding_calls() -> None:
    queue = MethodQueue(STACKED, BatchingConfig(max_batch_size=128), max_queue=256)
    for n in range(1, 33):  # a 20 ms model whatever the batch size
        queue.record_batch(n, 0.020)
    for i in range(200):  # 4000 calls a second
        queue.arrivals.observe(10.0 + i / 4000)
    now = 10.0 + 200 / 4000
    queue.queue.extend(_call(np.zeros(2)) for _ in range(24))
    assert queue.release_at(now, idle_workers=1, workers=2) is not None  # 128 not reachable yet
    queue.outstanding.observe(64)  # 64 callers: each of 2 workers can get 32
    assert queue.release_at(now, idle_workers=1, workers=2) is not None
    queue.queue.extend(_call(np.zeros(2)) for _ in range(8))
    assert queue.release_at(now, idle_workers=1, workers=2) is None  # 32 queued: send


async def _closed_loop(adaptive: bool, clients: int = 64, seconds: float = 2.5) -> MethodStats:
    """``clients`` callers of a 20 ms-per-batch method, each calling again 1 ms after
    its answer (a client's think time), for ``seconds``."""
    batching = BatchingConfig(max_batch_size=32, adaptive_wait=adaptive)
    async with WorkerPool(runner_config(workers=2, batching=batching)) as pool:
        x = np.ones((1, 4), dtype=np.float32)  # one row per call
        stop = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < stop:
                await pool.submit("predict", (x,), {})
                await asyncio.sleep(0.001)

        await asyncio.gather(*(client() for _ in range(clients)))
        return pool.stats().methods["predict"]


def test_the_latency_model_fills_batches_that_immediate_dispatch_leaves_short() -> None:
    immediate = run(_closed_loop(adaptive=False))
    adaptive = run(_closed_loop(adaptive=True))
    assert immediate.waits == 0 and adaptive.waits > 0
    assert adaptive.cost_a_ms == pytest.approx(20.0, abs=8.0)
    mean = [s.calls / s.batches for s in (immediate, adaptive)]
    assert mean[1] > 1.2 * mean[0], mean


def test_a_lone_caller_is_never_held() -> None:
    async def main() -> MethodStats:
        async with WorkerPool(runner_config(workers=1)) as pool:
            x = np.ones(4, dtype=np.float32)
            for _ in range(30):
                result = await pool.submit("predict", (x,), {})
                assert result.queue_wait_s < 0.005
            return pool.stats().methods["predict"]

    assert run(main()).waits == 0


def test_a_protocol_fault_reported_by_a_worker_is_a_protocol_error() -> None:
    """A worker that found the pool's frame malformed answers a protocol fault: the
    callers get that category, not the method's error; a method's own exception
    named ``ProtocolError`` (urllib3 has one) stays the method's error."""
    error = batch_error(PROTOCOL_FAULT, "a join's arguments do not match", "r", "m")
    assert type(error) is ProtocolError
    assert str(error) == "runner 'r.m': a join's arguments do not match"
    assert isinstance(batch_error("ValueError", "bad", "r", "m"), MethodError)
    assert isinstance(batch_error("ProtocolError", "reset", "r", "m"), MethodError)
