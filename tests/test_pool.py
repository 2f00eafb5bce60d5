"""The dispatcher's scenarios (batching, admission, expiry, cancellation, failures,
stats), each run against real worker processes and against the in-process worker
of ``--local``: the same answers, errors, messages and counters from both."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import numpy as np
import psutil
import pytest

from runners import (
    BatchingConfig,
    CallTimeout,
    MethodError,
    Overloaded,
    PoolClosed,
    RunnerClient,
    RunnerError,
    RunnerStartupError,
    UnsupportedValue,
    WorkerPool,
)
from runners.supervisor import Supervisor
from tests.conftest import LOOPS, POOL_KINDS, LoopFactory, run, runner_config, until

KIND = pytest.mark.parametrize("kind", POOL_KINDS)


def _as_client(pool: WorkerPool) -> RunnerClient:
    return pool  # mypy checks that WorkerPool satisfies the executor's protocol


def _worker_pids(pool: WorkerPool) -> list[int]:
    """The processes that run the pool's methods (this one, for the in-process kind)."""
    sup = pool._workers
    if not isinstance(sup, Supervisor):
        return [os.getpid()]
    return [w.process.pid for w in sup.workers.values() if w.process is not None]


@KIND
@LOOPS
def test_concurrent_calls_are_batched_and_answered_to_their_callers(
    kind: str,
    loop_factory: LoopFactory,
) -> None:
    async def main() -> None:
        config = runner_config(batching=BatchingConfig(max_batch_size=32))
        async with POOL_KINDS[kind](config) as pool:
            assert _as_client(pool).ready
            inputs = [np.full(4, i, np.float32) for i in range(100)]
            results = await asyncio.gather(*(pool.submit("predict", (x,), {}) for x in inputs))
            for i, result in enumerate(results):
                np.testing.assert_array_equal(result.value, np.full(4, 2.0 * i))
            sizes = await pool.call("seen_sizes")
            assert sum(sizes) == 100 and len(sizes) <= 8 and max(sizes) == 32
            stats = pool.stats().methods["predict"]
            assert stats.calls == 100 and stats.batches == len(sizes)
            assert {r.batch_size for r in results} <= set(sizes)
            assert await pool.call("describe", "ab", repeat=2) == {
                "text": "abab",
                "pid": _worker_pids(pool)[0],
            }

    run(main(), loop_factory=loop_factory)


@KIND
def test_a_full_batch_waiting_goes_to_the_worker_before_the_answered_callers_resume(
    kind: str,
) -> None:
    """The worker starts its next batch the moment it answers when a full one is
    queued, not after every caller of the answered batch has run."""

    async def main() -> None:
        config = runner_config(init={"delay_s": 0.05}, batching=BatchingConfig(max_batch_size=2))
        async with POOL_KINDS[kind](config) as pool:

            async def first_call() -> int:
                await pool.submit("predict", (np.zeros(2, np.float32),), {})
                return pool.stats().methods["predict"].in_flight  # as soon as it resumes

            first = asyncio.create_task(first_call())
            await until(lambda: pool.stats().methods["predict"].in_flight == 1)
            later = [pool.submit("predict", (np.ones(2, np.float32),), {}) for _ in range(3)]
            rest = asyncio.gather(*later)
            assert await first == 2  # the full batch of 2 was already sent
            await rest

    run(main())


@KIND
def test_map_fan_out_becomes_one_batch(kind: str) -> None:
    async def main() -> None:
        async with POOL_KINDS[kind](runner_config()) as pool:
            calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
                ((np.full(2, i, np.float64),), {}) for i in range(20)
            ]
            results = await pool.submit_many("predict", calls)
            assert [float(r.value[0]) for r in results] == [2.0 * i for i in range(20)]
            assert {r.batch_id for r in results} == {results[0].batch_id}
            assert await pool.call("seen_sizes") == [20]

    run(main())


@KIND
def test_batch_dim_one(kind: str) -> None:
    async def main() -> None:
        async with POOL_KINDS[kind](runner_config()) as pool:
            xs = [np.arange(6, dtype=np.float64).reshape(2, 3) + 100 * i for i in range(5)]
            results = await pool.submit_many("columns", [((x,), {}) for x in xs])
            total = sum(xs)  # the method adds the sum of the batch's items (along dim 1)
            for x, result in zip(xs, results, strict=True):
                assert result.value.shape == (2, 3)
                np.testing.assert_allclose(result.value, x + total)

    run(main())


@KIND
def test_non_batchable_methods_get_one_call_each(kind: str) -> None:
    async def main() -> None:
        async with POOL_KINDS[kind](runner_config()) as pool:
            texts = [f"t{i}" for i in range(10)]
            results = await asyncio.gather(
                *(pool.submit("describe", (t,), {"repeat": 2}) for t in texts)
            )
            assert [r.value["text"] for r in results] == [t * 2 for t in texts]
            assert {r.batch_size for r in results} == {1}

    run(main())


@KIND
def test_a_raising_item_fails_only_its_caller_and_the_worker_lives(kind: str) -> None:
    async def main() -> None:
        async with POOL_KINDS[kind](runner_config()) as pool:
            pids = _worker_pids(pool)
            values = [1, 2, -3, 4]
            results = await asyncio.gather(
                *(pool.call("maybe_fail", v) for v in values), return_exceptions=True
            )
            assert results[0] == 2 and results[1] == 3 and results[3] == 5
            assert isinstance(results[2], MethodError)
            assert results[2].error_type == "ValueError" and "negative" in str(results[2])
            assert "'test.maybe_fail'" in str(results[2])
            assert _worker_pids(pool) == pids
            assert pool.stats().restarts == 0

    run(main())


@KIND
@LOOPS
def test_async_methods_are_awaited_in_the_worker_batched_or_not(
    kind: str, loop_factory: LoopFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        config = runner_config("runner_models:Awaiting", batching=BatchingConfig(max_batch_size=8))
        async with POOL_KINDS[kind](config) as pool:
            doubled = await asyncio.gather(*(pool.submit("double", (i,), {}) for i in range(20)))
            assert [r.value for r in doubled] == [2 * i for i in range(20)]
            assert max(r.batch_size for r in doubled) > 1
            assert await pool.call("greet", "ada") == "hello ada"
            with pytest.raises(MethodError, match="not today") as raised:
                await pool.call("refuse", "not today")
            assert raised.value.error_type == "PermissionError"
            assert await pool.call("greet", "bob") == "hello bob"  # the worker lives on
            assert await pool.call("loop_count") == 1  # one loop for every call
            assert pool.stats().restarts == 0

    run(main(), loop_factory=loop_factory)
    tracebacks = [r for r in caplog.records if "refuse raised" in r.message]
    assert len(tracebacks) == 1  # the pool has stopped: every worker line was read
    assert tracebacks[0].levelname == "ERROR"
    label = {"process": "[test/worker-0] runners.worker:", "local": "[test/local]"}[kind]
    assert tracebacks[0].message.startswith(f"{label} refuse raised")
    text = tracebacks[0].message + (tracebacks[0].exc_text or "")
    assert "Traceback (most recent call last)" in text and "PermissionError: not today" in text


@KIND
def test_an_unsendable_result_is_a_clear_error(kind: str) -> None:
    async def main() -> None:
        async with POOL_KINDS[kind](runner_config()) as pool:
            with pytest.raises(UnsupportedValue, match="object"):
                await pool.call("bad_value")
            with pytest.raises(UnsupportedValue, match=r"'test\.echo'"):
                await pool.call("echo", {1, 2})
            assert await pool.call("echo", "still alive") == "still alive"

    run(main())


@KIND
def test_a_raising_constructor_is_a_startup_error(kind: str) -> None:
    async def main() -> None:
        pool = POOL_KINDS[kind](runner_config("runner_models:Broken", name="broken", workers=2))
        with pytest.raises(RunnerStartupError) as info:
            await pool.start()
        message = str(info.value)
        assert "'broken'" in message and "runner_models:Broken" in message
        assert "RuntimeError: weights file missing" in message
        assert not psutil.Process().children(recursive=True)

    run(main())


@KIND
def test_queue_overflow_is_refused_at_enqueue(kind: str) -> None:
    async def main() -> None:
        config = runner_config(max_queue=4, init={"delay_s": 0.05})
        async with POOL_KINDS[kind](config) as pool:
            calls = [pool.submit("predict", (np.ones(2),), {}) for _ in range(12)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            refused = [r for r in results if isinstance(r, Overloaded)]
            assert len(refused) == 12 - 5  # one dispatched at once, four queued
            assert all(r.retry_after_s > 0 for r in refused)
            assert pool.stats().methods["predict"].rejected == 7

    run(main())


@KIND
def test_a_hopeless_deadline_is_refused_at_enqueue(kind: str) -> None:
    async def main() -> None:
        async with POOL_KINDS[kind](runner_config(init={"delay_s": 0.05})) as pool:
            await pool.call("predict", np.ones(2))  # measures the batch time
            busy = asyncio.ensure_future(pool.call("predict", np.ones(2)))
            await until(lambda: pool.stats().methods["predict"].in_flight == 1)
            with pytest.raises(Overloaded, match="predicted"):
                await pool.submit("predict", (np.ones(2),), {}, deadline=time.monotonic() + 0.01)
            await busy

    run(main())


@KIND
def test_a_queued_call_past_max_latency_times_out_before_any_worker(kind: str) -> None:
    async def main() -> None:
        batching = BatchingConfig(max_latency_ms=200)
        async with POOL_KINDS[kind](
            runner_config(batching=batching, init={"delay_s": 0.5})
        ) as pool:
            first = asyncio.ensure_future(pool.call("predict", np.ones(2)))
            await until(lambda: pool.stats().methods["predict"].in_flight == 1)
            with pytest.raises(CallTimeout):
                await pool.call("predict", np.ones((2,), np.float64) * 7)
            await first
            assert await pool.call("seen_sizes") == [1]
            assert pool.stats().methods["predict"].timed_out == 1

    run(main())


@KIND
def test_cancelling_a_queued_call_removes_it(kind: str) -> None:
    async def main() -> None:
        async with POOL_KINDS[kind](runner_config(init={"delay_s": 0.2})) as pool:
            first = asyncio.ensure_future(pool.call("predict", np.ones(2)))
            await until(lambda: pool.stats().methods["predict"].in_flight == 1)
            queued = asyncio.ensure_future(pool.call("predict", np.ones(2)))
            await until(lambda: pool.stats().methods["predict"].queue_length == 1)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert pool.stats().methods["predict"].queue_length == 0
            await first
            assert await pool.call("seen_sizes") == [1]

    run(main())


@KIND
def test_stop_finishes_in_flight_calls_then_refuses(kind: str) -> None:
    async def main() -> None:
        pool = POOL_KINDS[kind](runner_config(init={"delay_s": 0.05}))
        await pool.start()
        pids = _worker_pids(pool)
        pending = asyncio.gather(*(pool.call("predict", np.ones(2) * i) for i in range(5)))
        await asyncio.sleep(0)
        await pool.stop()
        assert [float(v[0]) for v in await pending] == [2.0 * i for i in range(5)]
        with pytest.raises(PoolClosed):
            await pool.call("predict", np.ones(2))
        assert kind == "local" or not any(psutil.pid_exists(pid) for pid in pids)
        assert not psutil.Process().children(recursive=True)

    run(main())


@KIND
def test_a_latency_budget_below_the_batch_time_is_reported(
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        config = runner_config(batching=BatchingConfig(max_latency_ms=10), init={"delay_s": 0.03})
        async with POOL_KINDS[kind](config) as pool:
            await pool.call("predict", np.ones(2))

    run(main())
    assert any("below its batch time" in r.getMessage() for r in caplog.records)


def test_both_kinds_refuse_with_the_same_errors_and_count_alike() -> None:
    config = runner_config(
        max_queue=2, init={"delay_s": 0.2}, batching=BatchingConfig(max_batch_size=1)
    )

    async def scenario(kind: str) -> tuple[list[str], tuple[Any, ...]]:
        async with POOL_KINDS[kind](config) as pool:
            stats = lambda: pool.stats().methods["predict"]  # noqa: E731
            running = asyncio.ensure_future(pool.call("predict", np.zeros(1)))
            await until(lambda: stats().in_flight == 1)
            waiting = [asyncio.ensure_future(pool.call("predict", np.ones(1))) for _ in range(2)]
            await until(lambda: stats().queue_length == 2)
            errors = []
            for attempt in (
                pool.call("predict", np.ones(1)),
                pool.call("no_such_method"),
                pool.submit("predict", (np.ones(1),), {}, deadline=time.monotonic() - 1.0),
            ):
                try:
                    await attempt
                except RunnerError as error:
                    errors.append(f"{type(error).__name__}: {error}")
            await asyncio.gather(running, *waiting)
            s = stats()
            return errors, (s.calls, s.batches, s.rejected, s.timed_out, dict(s.batch_sizes))

    process, in_process = (run(scenario(kind)) for kind in POOL_KINDS)
    assert process == in_process
    assert process[0] == [
        "Overloaded: runner 'test.predict': the queue is full (2 calls)",
        "RunnerError: runner 'test.no_such_method': runner_models:Sleepy has no method"
        " 'no_such_method'",
        "CallTimeout: runner 'test.predict': the deadline passed before the call was queued",
    ]
