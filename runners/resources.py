"""How many workers a runner gets, and the environment of each (``workers: auto``).

BentoML's rule: a Runnable that declares ``SUPPORTS_CPU_MULTI_THREADING`` gets one
worker with every core; a single-threaded one gets one worker per core (with its
math libraries held to one thread, so workers do not fight over cores); a GPU
Runnable asking for GPUs gets one worker per GPU, each seeing only its own
device through ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runners.config import Resources, RunnerConfig
from runners.errors import RunnerStartupError

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
GPU_RESOURCES = frozenset({"nvidia.com/gpu", "gpu"})


@dataclass(frozen=True)
class RunnableTraits:
    """What a Runnable class declares about the resources it can use."""

    supported_resources: tuple[str, ...] = ("cpu",)
    multi_threaded: bool = False


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's size)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def read_traits(runnable: str, search_path: str | None) -> RunnableTraits:
    """Import ``module:Class`` (not construct it) to read its resource declarations."""
    module_name, _, class_name = runnable.partition(":")
    if search_path and search_path not in sys.path:
        sys.path.insert(0, search_path)
    try:
        cls: Any = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise RunnerStartupError(f"cannot import {runnable}: {exc}") from None
    return RunnableTraits(
        supported_resources=tuple(getattr(cls, "SUPPORTED_RESOURCES", ("cpu",))),
        multi_threaded=bool(getattr(cls, "SUPPORTS_CPU_MULTI_THREADING", False)),
    )


def _thread_env(threads: int) -> dict[str, str]:
    return {name: str(threads) for name in THREAD_VARIABLES}


def worker_environments(
    workers: int | str,
    resources: Resources,
    traits: RunnableTraits,
    *,
    cores: int,
    gpus: int,
) -> list[dict[str, str]]:
    """One environment per worker to start (the list's length is the worker count)."""
    usable = cores if resources.cpu is None else max(1, min(cores, math.floor(resources.cpu)))
    wants_gpu = resources.gpu > 0 and bool(GPU_RESOURCES & set(traits.supported_resources))
    if wants_gpu and gpus > 0:
        count = gpus if workers == "auto" else int(workers)
        per_worker = max(1, usable // count)
        return [
            {"CUDA_VISIBLE_DEVICES": str(i % gpus), **_thread_env(per_worker)} for i in range(count)
        ]
    if workers == "auto":
        if traits.multi_threaded:
            return [_thread_env(usable)]
        return [_thread_env(1) for _ in range(usable)]
    count = int(workers)
    threads = max(1, usable // count) if traits.multi_threaded else 1
    return [_thread_env(threads) for _ in range(count)]


def plan_environments(
    config: RunnerConfig, *, gpus: int | None = None, cores: int | None = None
) -> list[dict[str, str]]:
    """The workers of ``config``; ``gpus`` overrides detection (for tests and CPU hosts)."""
    needs_traits = config.workers == "auto" or config.resources.gpu > 0
    search = str(config.search_path) if config.search_path is not None else None
    traits = read_traits(config.runnable, search) if needs_traits else RunnableTraits()
    return [
        {**env, **dict(config.env)}
        for env in worker_environments(
            config.workers,
            config.resources,
            traits,
            cores=cores if cores is not None else available_cores(),
            gpus=gpus if gpus is not None else detect_gpus(),
        )
    ]


def detect_gpus(environ: Mapping[str, str] | None = None) -> int:
    """NVIDIA GPUs visible to this process (``CUDA_VISIBLE_DEVICES``, else /dev/nvidia*)."""
    env = os.environ if environ is None else environ
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        return sum(1 for n in os.listdir("/dev") if n.startswith("nvidia") and n[6:].isdigit())
    except OSError:
        return 0
