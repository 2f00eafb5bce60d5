"""WorkerPool with real worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import uvloop

from runners import (
    BatchingConfig,
    CallTimeout,
    MethodError,
    Overloaded,
    PoisonCall,
    PoolClosed,
    Resources,
    RunnerClient,
    RunnerStartupError,
    SupervisionConfig,
    UnsupportedValue,
    WorkerCrashed,
    WorkerPool,
)
from runners.supervisor import Supervisor
from tests.conftest import run, runner_config, until

LOOPS = pytest.mark.parametrize(
    "loop_factory", [None, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)


LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None


def _as_client(pool: WorkerPool) -> RunnerClient:
    return pool  # mypy checks that WorkerPool satisfies the executor's protocol


def _worker_pids(pool: WorkerPool) -> list[int]:
    sup = pool._workers
    assert isinstance(sup, Supervisor)
    return [w.process.pid for w in sup.workers.values() if w.process is not None]


@LOOPS
def test_concurrent_calls_are_batched_and_answered_to_their_callers(
    loop_factory: LoopFactory,
) -> None:
    async def main() -> None:
        config = runner_config(batching=BatchingConfig(max_batch_size=32))
        async with WorkerPool(config) as pool:
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


def test_map_fan_out_becomes_one_batch() -> None:
    async def main() -> None:
        async with WorkerPool(runner_config()) as pool:
            calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
                ((np.full(2, i, np.float64),), {}) for i in range(20)
            ]
            results = await pool.submit_many("predict", calls)
            assert [float(r.value[0]) for r in results] == [2.0 * i for i in range(20)]
            assert {r.batch_id for r in results} == {results[0].batch_id}
            assert await pool.call("seen_sizes") == [20]

    run(main())


def test_batch_dim_one() -> None:
    async def main() -> None:
        async with WorkerPool(runner_config()) as pool:
            xs = [np.arange(6, dtype=np.float64).reshape(2, 3) + 100 * i for i in range(5)]
            results = await pool.submit_many("columns", [((x,), {}) for x in xs])
            total = sum(xs)  # the method adds the sum of the batch's items (along dim 1)
            for x, result in zip(xs, results, strict=True):
                assert result.value.shape == (2, 3)
                np.testing.assert_allclose(result.value, x + total)

    run(main())


def test_non_batchable_methods_get_one_call_each() -> None:
    async def main() -> None:
        async with WorkerPool(runner_config()) as pool:
            texts = [f"t{i}" for i in range(10)]
            results = await asyncio.gather(
                *(pool.submit("describe", (t,), {"repeat": 2}) for t in texts)
            )
            assert [r.value["text"] for r in results] == [t * 2 for t in texts]
            assert {r.batch_size for r in results} == {1}

    run(main())


def test_a_raising_item_fails_only_its_caller_and_the_worker_lives() -> None:
    async def main() -> None:
        async with WorkerPool(runner_config()) as pool:
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


@LOOPS
def test_async_methods_are_awaited_in_the_worker_batched_or_not(
    loop_factory: LoopFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        config = runner_config("runner_models:Awaiting", batching=BatchingConfig(max_batch_size=8))
        async with WorkerPool(config) as pool:
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
    tracebacks = [r for r in caplog.records if "Traceback (most recent call last)" in r.message]
    assert len(tracebacks) == 1  # the pool has stopped: every worker line was read
    assert tracebacks[0].levelname == "ERROR"
    assert tracebacks[0].message.startswith("[test/worker-0] runners.worker: refuse raised")
    assert "PermissionError: not today" in tracebacks[0].message


def test_an_unsendable_result_is_a_clear_error() -> None:
    async def main() -> None:
        async with WorkerPool(runner_config()) as pool:
            with pytest.raises(UnsupportedValue, match="object"):
                await pool.call("bad_value")
            with pytest.raises(UnsupportedValue, match=r"'test\.echo'"):
                await pool.call("echo", {1, 2})
            assert await pool.call("echo", "still alive") == "still alive"

    run(main())


def test_a_raising_constructor_is_a_startup_error() -> None:
    async def main() -> None:
        pool = WorkerPool(runner_config("runner_models:Broken", name="broken", workers=2))
        with pytest.raises(RunnerStartupError) as info:
            await pool.start()
        message = str(info.value)
        assert "'broken'" in message and "runner_models:Broken" in message
        assert "RuntimeError: weights file missing" in message
        assert not psutil.Process().children(recursive=True)

    run(main())


@LOOPS
def test_sigkill_under_load_loses_no_call_and_the_pool_recovers(loop_factory: LoopFactory) -> None:
    async def main() -> None:
        config = runner_config(workers=2, batching=BatchingConfig(max_batch_size=8))
        async with WorkerPool(config) as pool:
            victim = _worker_pids(pool)[0]
            calls = [pool.call("predict", np.full(3, i, np.float32)) for i in range(200)]
            gathered = asyncio.gather(*calls, return_exceptions=True)
            await until(lambda: pool.stats().methods["predict"].batches >= 2)
            os.kill(victim, signal.SIGKILL)
            results = await gathered
            for i, result in enumerate(results):
                if isinstance(result, BaseException):
                    assert isinstance(result, PoisonCall), result
                else:
                    np.testing.assert_array_equal(result, np.full(3, 2.0 * i))
            await until(lambda: pool.stats().restarts == 1 and pool.stats().ready_workers == 2)
            assert victim not in _worker_pids(pool)
            assert float((await pool.call("predict", np.ones(1)))[0]) == 2.0

    run(main(), loop_factory=loop_factory)


def test_a_call_that_kills_every_worker_it_meets_fails_as_a_poison_call() -> None:
    async def main() -> None:
        async with WorkerPool(runner_config(workers=2)) as pool:
            with pytest.raises(PoisonCall, match="crashed two workers"):
                await pool.call("crash")
            await until(lambda: pool.stats().ready_workers == 2)
            assert pool.stats().restarts == 2 and pool.stats().healthy

    run(main())


def test_a_hung_worker_is_replaced() -> None:
    async def main() -> None:
        config = runner_config(supervision=SupervisionConfig(hang_timeout_s=0.3))
        async with WorkerPool(config) as pool:
            with pytest.raises(PoisonCall, match="hung"):
                await pool.call("hang")
            await until(lambda: pool.stats().restarts == 2 and pool.stats().ready_workers == 1)
            assert await pool.call("echo", 1) == 1

    run(main())


def test_a_batch_shorter_than_the_hang_timeout_is_not_taken_for_a_hang() -> None:
    """The hang timer outlives the batch that armed it: when it fires during a later
    batch, that batch's own start counts."""

    async def main() -> None:
        supervision = SupervisionConfig(hang_timeout_s=0.4)
        config = runner_config(init={"delay_s": 0.25}, supervision=supervision)
        async with WorkerPool(config) as pool:
            x = np.zeros(2, np.float32)
            for _ in range(3):  # the timer of the first batch fires during the second
                assert (await pool.call("predict", x)).shape == (2,)
            assert pool.stats().restarts == 0

    run(main())


def test_an_idle_worker_that_stops_answering_pings_is_replaced() -> None:
    async def main() -> None:
        supervision = SupervisionConfig(ping_interval_s=0.1, ping_timeout_s=0.5)
        pool = WorkerPool(runner_config(supervision=supervision))
        async with pool:
            (stopped,) = _worker_pids(pool)
            os.kill(stopped, signal.SIGSTOP)
            try:
                await until(lambda: pool.stats().restarts == 1 and pool.stats().ready_workers == 1)
            finally:
                if psutil.pid_exists(stopped):
                    os.kill(stopped, signal.SIGCONT)
            assert _worker_pids(pool) != [stopped]
            assert await pool.call("echo", 2) == 2
        assert not psutil.pid_exists(stopped) or psutil.Process(stopped).status() == "zombie"

    run(main())


def test_pings_interleaved_with_calls_disturb_nothing() -> None:
    async def main() -> None:
        supervision = SupervisionConfig(ping_interval_s=0.01, ping_timeout_s=5.0)
        async with WorkerPool(runner_config(supervision=supervision)) as pool:
            sup = pool._workers
            assert isinstance(sup, Supervisor)
            (worker,) = sup.workers.values()
            for i in range(20):
                pongs = worker.pongs
                await until(lambda: worker.pongs > pongs)  # noqa: B023 - evaluated now
                values = await asyncio.gather(*(pool.call("echo", i * 10 + k) for k in range(3)))
                assert values == [i * 10 + k for k in range(3)]
            assert pool.stats().restarts == 0

    run(main())


def test_repeated_startup_failures_mark_the_pool_unhealthy(tmp_path: Path) -> None:
    async def main() -> None:
        marker = tmp_path / "broken"
        supervision = SupervisionConfig(max_start_failures=2)
        config = runner_config(
            "runner_models:Flaky", init={"marker": str(marker)}, supervision=supervision
        )
        async with WorkerPool(config) as pool:
            assert await pool.call("ping") == "pong"
            marker.touch()
            with pytest.raises(WorkerCrashed):
                await pool.call("crash")  # kills the worker, then its retry finds none
            await until(lambda: not pool.stats().healthy)
            with pytest.raises(WorkerCrashed, match="failing to start"):
                await pool.call("ping")

    run(main())


def test_queue_overflow_is_refused_at_enqueue() -> None:
    async def main() -> None:
        config = runner_config(max_queue=4, init={"delay_s": 0.05})
        async with WorkerPool(config) as pool:
            calls = [pool.submit("predict", (np.ones(2),), {}) for _ in range(12)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            refused = [r for r in results if isinstance(r, Overloaded)]
            assert len(refused) == 12 - 5  # one dispatched at once, four queued
            assert all(r.retry_after_s > 0 for r in refused)
            assert pool.stats().methods["predict"].rejected == 7

    run(main())


def test_a_hopeless_deadline_is_refused_at_enqueue() -> None:
    async def main() -> None:
        async with WorkerPool(runner_config(init={"delay_s": 0.05})) as pool:
            await pool.call("predict", np.ones(2))  # measures the batch time
            busy = asyncio.ensure_future(pool.call("predict", np.ones(2)))
            await until(lambda: pool.stats().methods["predict"].in_flight == 1)
            with pytest.raises(Overloaded, match="predicted"):
                await pool.submit("predict", (np.ones(2),), {}, deadline=time.monotonic() + 0.01)
            await busy

    run(main())


def test_a_queued_call_past_max_latency_times_out_before_any_worker() -> None:
    async def main() -> None:
        batching = BatchingConfig(max_latency_ms=200)
        async with WorkerPool(runner_config(batching=batching, init={"delay_s": 0.5})) as pool:
            first = asyncio.ensure_future(pool.call("predict", np.ones(2)))
            await until(lambda: pool.stats().methods["predict"].in_flight == 1)
            with pytest.raises(CallTimeout):
                await pool.call("predict", np.ones((2,), np.float64) * 7)
            await first
            assert await pool.call("seen_sizes") == [1]
            assert pool.stats().methods["predict"].timed_out == 1

    run(main())


def test_cancelling_a_queued_call_removes_it() -> None:
    async def main() -> None:
        async with WorkerPool(runner_config(init={"delay_s": 0.2})) as pool:
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


def test_stop_finishes_in_flight_calls_then_refuses() -> None:
    async def main() -> None:
        pool = WorkerPool(runner_config(init={"delay_s": 0.05}))
        await pool.start()
        pids = _worker_pids(pool)
        pending = asyncio.gather(*(pool.call("predict", np.ones(2) * i) for i in range(5)))
        await asyncio.sleep(0)
        await pool.stop()
        assert [float(v[0]) for v in await pending] == [2.0 * i for i in range(5)]
        with pytest.raises(PoolClosed):
            await pool.call("predict", np.ones(2))
        assert not any(psutil.pid_exists(pid) for pid in pids)
        assert not psutil.Process().children(recursive=True)

    run(main())


def test_auto_workers_one_per_gpu_with_its_device() -> None:
    async def main() -> None:
        config = runner_config("runner_models:GpuEnv", workers="auto", resources=Resources(gpu=1))
        async with WorkerPool(config, gpus=2) as pool:
            assert pool.stats().workers == 2
            seen = await asyncio.gather(
                *(pool.call("env", "CUDA_VISIBLE_DEVICES") for _ in range(8))
            )
            assert set(seen) == {"0", "1"}

    run(main())


def test_env_reaches_the_workers() -> None:
    async def main() -> None:
        async with WorkerPool(runner_config(env={"GRAPHCTL_TEST": "yes"})) as pool:
            assert await pool.call("env", "GRAPHCTL_TEST") == "yes"
            assert await pool.call("env", "OMP_NUM_THREADS") == "1"

    run(main())


def test_a_latency_budget_below_the_batch_time_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        config = runner_config(batching=BatchingConfig(max_latency_ms=10), init={"delay_s": 0.03})
        async with WorkerPool(config) as pool:
            await pool.call("predict", np.ones(2))

    run(main())
    assert any("below its batch time" in r.getMessage() for r in caplog.records)
