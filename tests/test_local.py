"""The in-process worker of ``--local``: what only it does. The dispatcher's
scenarios run against it and against worker processes alike in test_pool.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from runners import RunnerConfig
from runners.config import SupervisionConfig
from runners.errors import (
    PoolClosed,
    RunnerStartupError,
    UnsupportedValue,
)
from runners.local import LocalClient
from tests.conftest import run, runner_config

ROOT = Path(__file__).resolve().parents[1]
GRAPHCTL = str(Path(sys.executable).parent / "graphctl")


def test_batch_dim_one_and_non_batchable_methods() -> None:
    async def scenario() -> None:
        async with LocalClient(runner_config()) as client:
            a, b = np.array([1.0, 2.0]), np.array([10.0, 20.0])
            results = await client.submit_many("columns", [((a,), {}), ((b,), {})])
            np.testing.assert_array_equal(results[0].value, a + a + b)
            described = await client.call("describe", "ab", repeat=2)
            assert described["text"] == "abab"

    run(scenario())


def test_values_cross_the_same_codec_as_workers() -> None:
    async def scenario() -> None:
        async with LocalClient(runner_config()) as client:
            assert await client.call("echo", (1, "a")) == [1, "a"]  # tuples arrive as lists
            with pytest.raises(UnsupportedValue):
                await client.call("bad_value")

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


def test_a_batch_past_its_hang_limit_is_reported_and_still_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A breakpoint in a Runnable must not lose the call: the thread cannot be
    stopped, so the worker is only reported, and its answer still counts."""
    config = runner_config(
        init={"delay_s": 0.3}, supervision=SupervisionConfig(hang_timeout_s=0.05)
    )

    async def scenario() -> None:
        async with LocalClient(config) as client:
            value = await client.call("predict", np.ones(2))
            np.testing.assert_array_equal(value, np.full(2, 2.0))
            assert client.stats().ready_workers == 1 and client.stats().restarts == 0
            assert await client.call("echo", 3) == 3

    run(scenario())
    assert any("cannot be stopped" in r.getMessage() for r in caplog.records)


def test_sync_methods_run_off_the_event_loop_in_one_thread() -> None:
    async def scenario() -> None:
        async with LocalClient(runner_config(init={"delay_s": 0.0})) as client:
            names = await asyncio.gather(*(client.call("thread_name") for _ in range(4)))
            assert len(set(names)) == 1 and names[0] != threading.current_thread().name

    run(scenario())
