"""Supervision of worker processes: the Supervisor on its own (driven through
``WorkerEvents``), and through a pool: crashes retried once then failed as poison
calls, hung and silent workers replaced, start-up failures marking the runner
unhealthy, one worker per GPU."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import numpy as np
import psutil
import pytest

from runners import (
    BatchingConfig,
    PoisonCall,
    Resources,
    SupervisionConfig,
    WorkerCrashed,
    WorkerPool,
)
from runners.resources import plan_environments
from runners.supervisor import Supervisor
from tests._worker_events import RecordedEvents
from tests.conftest import LOOPS, LoopFactory, run, runner_config, until


def _worker_pids(pool: WorkerPool) -> list[int]:
    sup = pool._workers
    assert isinstance(sup, Supervisor)
    return [w.process.pid for w in sup.workers.values() if w.process is not None]


def _supervisor(events: RecordedEvents, **overrides: object) -> Supervisor:
    config = runner_config(**overrides)
    return Supervisor(config, plan_environments(config), events, stop_timeout_s=5.0)


def test_every_slot_reports_ready_and_close_reaps_every_worker() -> None:
    async def main() -> None:
        events = RecordedEvents()
        sup = _supervisor(events, workers=2)
        await sup.start()
        assert sorted(w.id for w in events.ready) == [0, 1] and sup.live == sup.slots == 2
        assert "predict" in events.ready[0].methods
        supervising = asyncio.create_task(sup.run())
        pids = [w.process.pid for w in sup.workers.values() if w.process is not None]
        sup.close()
        await supervising
        assert sup.live == 0 and sup.restarts == 0
        assert {w.id for w in events.lost} == {0, 1}
        assert not any(psutil.pid_exists(pid) for pid in pids)

    run(main())


def test_a_dead_worker_is_reported_lost_and_replaced() -> None:
    async def main() -> None:
        events = RecordedEvents()
        sup = _supervisor(events)
        await sup.start()
        supervising = asyncio.create_task(sup.run())
        (first,) = sup.workers.values()
        assert first.process is not None
        os.kill(first.process.pid, signal.SIGKILL)
        await until(lambda: sup.restarts == 1 and sup.live == 1)
        assert events.lost == [first] and [w.id for w in events.ready] == [0, 1]
        sup.close()
        await supervising

    run(main())


def test_an_idle_worker_is_pinged() -> None:
    async def main() -> None:
        events = RecordedEvents()
        sup = _supervisor(events, supervision=SupervisionConfig(ping_interval_s=0.01))
        await sup.start()
        supervising = asyncio.create_task(sup.run())
        (worker,) = sup.workers.values()
        await until(lambda: worker.pongs >= 3)
        assert events.replies == [] and sup.restarts == 0
        sup.close()
        await supervising

    run(main())


def test_start_ups_that_keep_failing_give_up_once(tmp_path: Path) -> None:
    async def main() -> None:
        marker = tmp_path / "broken"
        events = RecordedEvents()
        supervision = SupervisionConfig(max_start_failures=2)
        sup = _supervisor(
            events,
            runnable="runner_models:Flaky",
            init={"marker": str(marker)},
            supervision=supervision,
        )
        await sup.start()
        supervising = asyncio.create_task(sup.run())
        marker.touch()
        (worker,) = sup.workers.values()
        assert worker.process is not None
        os.kill(worker.process.pid, signal.SIGKILL)
        await supervising  # the only slot gave up: supervision ends by itself
        assert events.gave_up == 1 and not sup.healthy and sup.live == 0
        sup.close()

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
