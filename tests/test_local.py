"""The in-process runner client: pool semantics without worker processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from runners import RunnerConfig
from runners.config import BatchingConfig
from runners.errors import (
    CallTimeout,
    MethodError,
    Overloaded,
    PoolClosed,
    RunnerStartupError,
    UnsupportedValue,
)
from runners.local import LocalClient
from tests.conftest import run, runner_config

ROOT = Path(__file__).resolve().parents[1]
GRAPHCTL = str(Path(sys.executable).parent / "graphctl")


def test_submit_many_is_one_batch_and_each_caller_gets_its_item() -> None:
    async def scenario() -> None:
        async with LocalClient(runner_config(init={"delay_s": 0.0})) as client:
            xs = [(np.full(3, i, dtype=np.float32),) for i in range(10)]
            results = await client.submit_many("predict", [(x, {}) for x in xs])
            assert {r.batch_size for r in results} == {10}
            assert len({r.batch_id for r in results}) == 1
            for i, result in enumerate(results):
                np.testing.assert_array_equal(result.value, np.full(3, 2.0 * i))
            assert await client.call("seen_sizes") == [10]

    run(scenario())


def test_concurrent_calls_batch_up_to_max_batch_size() -> None:
    config = runner_config(init={"delay_s": 0.01}, batching=BatchingConfig(max_batch_size=4))

    async def scenario() -> None:
        async with LocalClient(config) as client:
            calls = [client.call("predict", np.array([float(i)])) for i in range(12)]
            values = await asyncio.gather(*calls)
            assert [float(v[0]) for v in values] == [2.0 * i for i in range(12)]
            sizes = client.stats().methods["predict"].batch_sizes
            assert max(sizes) == 4 and sum(k * v for k, v in sizes.items()) == 12

    run(scenario())


def test_batch_dim_one_and_non_batchable_methods() -> None:
    async def scenario() -> None:
        async with LocalClient(runner_config()) as client:
            a, b = np.array([1.0, 2.0]), np.array([10.0, 20.0])
            results = await client.submit_many("columns", [((a,), {}), ((b,), {})])
            np.testing.assert_array_equal(results[0].value, a + a + b)
            described = await client.call("describe", "ab", repeat=2)
            assert described["text"] == "abab"

    run(scenario())


def test_a_failing_item_fails_alone() -> None:
    async def scenario() -> None:
        async with LocalClient(runner_config()) as client:
            calls = [client.call("maybe_fail", v) for v in (1, -1, 2)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert results[0] == 2 and results[2] == 3
            assert isinstance(results[1], MethodError)
            assert results[1].error_type == "ValueError"

    run(scenario())


def test_values_cross_the_same_codec_as_workers() -> None:
    async def scenario() -> None:
        async with LocalClient(runner_config()) as client:
            assert await client.call("echo", (1, "a")) == [1, "a"]  # tuples arrive as lists
            with pytest.raises(UnsupportedValue):
                await client.call("bad_value")

    run(scenario())


def test_queue_full_deadline_and_cancellation() -> None:
    config = runner_config(
        init={"delay_s": 0.2}, max_queue=2, batching=BatchingConfig(max_batch_size=1)
    )

    async def until(condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not condition():  # noqa: ASYNC110 - a bounded poll of the client's stats
                await asyncio.sleep(0.001)

    async def scenario() -> None:
        async with LocalClient(config) as client:
            stats = lambda: client.stats().methods["predict"]  # noqa: E731
            running = asyncio.create_task(client.call("predict", np.zeros(1)))
            await until(lambda: stats().in_flight == 1)
            queued = asyncio.create_task(client.call("predict", np.ones(1)))
            await until(lambda: stats().queue_length == 1)
            with pytest.raises(CallTimeout):
                await client.submit("predict", (np.ones(1),), {}, deadline=time.monotonic() + 0.05)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert stats().queue_length == 0
            waiting = [asyncio.create_task(client.call("predict", np.ones(1))) for _ in range(2)]
            await until(lambda: stats().queue_length == 2)
            with pytest.raises(Overloaded):
                await client.call("predict", np.ones(1))
            await asyncio.gather(running, *waiting)
            assert stats().rejected == 1 and stats().timed_out == 1

    run(scenario())


def test_constructor_error_and_use_after_stop() -> None:
    async def scenario() -> None:
        with pytest.raises(RunnerStartupError, match="Broken"):
            await LocalClient(runner_config("runner_models:Broken")).start()
        client = LocalClient(runner_config())
        await client.start()
        await client.stop()
        with pytest.raises(PoolClosed):
            await client.call("echo", 1)

    run(scenario())


def test_local_run_gives_the_worker_pool_outputs() -> None:
    """``graphctl run --local`` and the worker-pool run answer the same, line by line."""
    inputs = ROOT / "graphs" / "diamond.input.json"
    outputs = []
    for extra in ([], ["--local"]):
        done = subprocess.run(
            [
                GRAPHCTL,
                "run",
                "graphs/diamond.yaml",
                "--input",
                f"@{inputs}",
                *extra,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]


def test_runner_config_is_accepted_unchanged() -> None:
    config = RunnerConfig(name="x", runnable="runner_models:Sleepy")
    assert LocalClient(config).name == "x"
