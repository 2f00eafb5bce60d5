from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from orchestrator import load
from runners import Resources, RunnerStartupError, WorkerPool
from runners.resources import (
    RunnableTraits,
    detect_gpus,
    plan_environments,
    read_traits,
    runner_gpus,
    spread_gpus,
    visible_gpus,
    worker_environments,
)
from tests.conftest import RUNNABLES, run, runner_config

SINGLE = RunnableTraits()
THREADED = RunnableTraits(multi_threaded=True)
GPU = RunnableTraits(supported_resources=("nvidia.com/gpu", "cpu"))


def test_auto_single_threaded_gets_one_worker_per_core() -> None:
    envs = worker_environments("auto", Resources(), SINGLE, cores=4, gpus=())
    assert len(envs) == 4 and all(env["OMP_NUM_THREADS"] == "1" for env in envs)


def test_auto_multi_threaded_gets_one_worker_with_every_core() -> None:
    (env,) = worker_environments("auto", Resources(), THREADED, cores=6, gpus=())
    assert env["OMP_NUM_THREADS"] == "6" and env["MKL_NUM_THREADS"] == "6"


def test_cpu_resources_cap_the_cores() -> None:
    assert len(worker_environments("auto", Resources(cpu=2.5), SINGLE, cores=8, gpus=())) == 2


def test_auto_gpu_gets_one_worker_per_device() -> None:
    envs = worker_environments("auto", Resources(gpu=1), GPU, cores=4, gpus=("0", "1", "2"))
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0", "1", "2"]


def test_gpu_request_without_gpu_support_or_devices_stays_on_cpu() -> None:
    assert (
        "CUDA_VISIBLE_DEVICES"
        not in worker_environments("auto", Resources(gpu=1), SINGLE, cores=1, gpus=("0", "1"))[0]
    )
    assert len(worker_environments("auto", Resources(gpu=1), GPU, cores=2, gpus=())) == 2


def test_an_explicit_count_wins() -> None:
    assert len(worker_environments(3, Resources(), THREADED, cores=8, gpus=())) == 3


def test_traits_are_read_from_the_class() -> None:
    assert read_traits("runner_models:Threaded", str(RUNNABLES)) == THREADED
    with pytest.raises(RunnerStartupError, match="cannot import"):
        read_traits("runner_models:Missing", str(RUNNABLES))


def test_plan_merges_the_runner_env() -> None:
    config = runner_config("runner_models:Threaded", workers="auto", env={"A": "1"})
    (env,) = plan_environments(config, gpus=0, cores=3)
    assert env["A"] == "1" and env["OMP_NUM_THREADS"] == "3"


def test_detect_gpus_reads_cuda_visible_devices() -> None:
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "0,2"}) == 2
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": ""}) == 0


def test_visible_gpus_keep_the_parents_ids_and_uuids_as_written() -> None:
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == ("2", "3")
    uuids = visible_gpus({"CUDA_VISIBLE_DEVICES": " GPU-8f2a, GPU-77c1 "})
    assert uuids == ("GPU-8f2a", "GPU-77c1")
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,0"}) == ("1",)  # CUDA stops at -1


def test_workers_land_on_the_gpus_the_parent_was_given() -> None:
    envs = worker_environments(2, Resources(gpu=1), GPU, cores=4, gpus=("2", "3"))
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["2", "3"]


def test_a_runner_offset_starts_on_a_later_gpu_and_wraps() -> None:
    assert runner_gpus(Resources(gpu=1), ("2", "3", "5"), offset=1) == ["3", "5", "2"]
    assert runner_gpus(Resources(gpu=1), ("2", "3"), offset=3) == ["3", "2"]
    envs = worker_environments(3, Resources(gpu=1), GPU, cores=3, gpus=("2", "3"), gpu_offset=1)
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["3", "2", "3"]


def test_a_device_list_picks_by_index_among_the_visible_gpus() -> None:
    resources = Resources(devices=(1, 0))
    assert resources.gpu == 1  # a device list asks for a GPU by itself
    envs = worker_environments("auto", resources, GPU, cores=4, gpus=("2", "3", "7"))
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["3", "2"]
    envs = worker_environments(3, Resources(devices=(2,)), GPU, cores=4, gpus=("2", "3", "7"))
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["7", "7", "7"]


def test_a_device_index_past_the_visible_gpus_fails_with_what_is_seen() -> None:
    config = runner_config("runner_models:GpuEnv", resources=Resources(devices=(0, 2)))
    with pytest.raises(RunnerStartupError) as caught:
        plan_environments(config, gpus=("2", "3"))
    assert str(caught.value) == (
        "runner 'test': resources.devices lists GPU 2, but this process sees 2 GPUs (2, 3):"
        " use indexes 0 to 1"
    )


def test_spread_gpus_starts_each_runner_after_the_gpus_taken_before_it() -> None:
    configs = [
        runner_config(name="a", workers=2, resources=Resources(gpu=1)),
        runner_config(name="cpu"),
        runner_config(name="pinned", resources=Resources(devices=(0,))),
        runner_config(name="b", resources=Resources(gpu=1)),
        runner_config(name="c", workers="auto", resources=Resources(gpu=1)),
        runner_config(name="d", resources=Resources(gpu=1)),
    ]
    offsets = {c.name: c.gpu_offset for c in spread_gpus(configs)}
    assert offsets == {"a": 0, "cpu": 0, "pinned": 0, "b": 2, "c": 3, "d": 4}


def test_each_worker_process_sees_its_gpu_of_the_parents_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # detected, not passed in

    async def main() -> None:
        config = runner_config("runner_models:GpuEnv", workers="auto", resources=Resources(gpu=1))
        async with WorkerPool(config) as pool:
            assert pool.stats().workers == 2
            seen = await asyncio.gather(
                *(pool.call("env", "CUDA_VISIBLE_DEVICES") for _ in range(8))
            )
            assert sorted(set(seen)) == ["2", "3"]

    run(main())


GPU_MODELS = """
import os

from runners import Runnable, method


class Device(Runnable):
    SUPPORTED_RESOURCES = ("nvidia.com/gpu", "cpu")

    @method
    def visible(self, x: int) -> str:
        return os.environ["CUDA_VISIBLE_DEVICES"]
"""

GPU_GRAPH = """
apiVersion: graphctl/v1
kind: Graph
metadata: {name: gpus}
spec:
  runners:
    first: {runnable: gpu_models:Device, resources: {gpu: 1}}
    second: {runnable: gpu_models:Device, resources: {gpu: 1}}
    pinned: {runnable: gpu_models:Device, resources: {devices: [0]}}
  inputs:
    x: {type: integer}
  nodes:
    a: {runner: first, method: visible, args: {x: $inputs.x}}
    b: {runner: second, method: visible, args: {x: $inputs.x}}
    c: {runner: pinned, method: visible, args: {x: $inputs.x}}
  outputs:
    first: $a
    second: $b
    pinned: $c
"""


def test_runners_of_a_graph_start_on_different_gpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gpu_models.py").write_text(textwrap.dedent(GPU_MODELS))
    (tmp_path / "gpus.yaml").write_text(GPU_GRAPH)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")

    async def main() -> dict[str, object]:
        async with load(tmp_path / "gpus.yaml") as graph:
            return await graph.run({"x": 1})

    assert run(main()) == {"first": "2", "second": "3", "pinned": "2"}
