from __future__ import annotations

import pytest

from runners import Resources, RunnerStartupError
from runners.resources import (
    RunnableTraits,
    detect_gpus,
    plan_environments,
    read_traits,
    worker_environments,
)
from tests.conftest import RUNNABLES, runner_config

SINGLE = RunnableTraits()
THREADED = RunnableTraits(multi_threaded=True)
GPU = RunnableTraits(supported_resources=("nvidia.com/gpu", "cpu"))


def test_auto_single_threaded_gets_one_worker_per_core() -> None:
    envs = worker_environments("auto", Resources(), SINGLE, cores=4, gpus=0)
    assert len(envs) == 4 and all(env["OMP_NUM_THREADS"] == "1" for env in envs)


def test_auto_multi_threaded_gets_one_worker_with_every_core() -> None:
    (env,) = worker_environments("auto", Resources(), THREADED, cores=6, gpus=0)
    assert env["OMP_NUM_THREADS"] == "6" and env["MKL_NUM_THREADS"] == "6"


def test_cpu_resources_cap_the_cores() -> None:
    assert len(worker_environments("auto", Resources(cpu=2.5), SINGLE, cores=8, gpus=0)) == 2


def test_auto_gpu_gets_one_worker_per_device() -> None:
    envs = worker_environments("auto", Resources(gpu=1), GPU, cores=4, gpus=3)
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0", "1", "2"]


def test_gpu_request_without_gpu_support_or_devices_stays_on_cpu() -> None:
    assert (
        "CUDA_VISIBLE_DEVICES"
        not in worker_environments("auto", Resources(gpu=1), SINGLE, cores=1, gpus=2)[0]
    )
    assert len(worker_environments("auto", Resources(gpu=1), GPU, cores=2, gpus=0)) == 2


def test_an_explicit_count_wins() -> None:
    assert len(worker_environments(3, Resources(), THREADED, cores=8, gpus=0)) == 3


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
