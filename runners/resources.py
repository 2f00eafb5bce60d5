"""How many workers a runner gets, and the environment of each (``workers: auto``).

BentoML's rule: a Runnable that declares ``SUPPORTS_CPU_MULTI_THREADING`` gets one
worker with every core; a single-threaded one gets one worker per core (with its
math libraries held to one thread, so workers do not fight over cores); a GPU
Runnable asking for GPUs gets one worker per GPU, each seeing only its own
device through ``CUDA_VISIBLE_DEVICES``.

GPUs are those this process was given: a parent started with
``CUDA_VISIBLE_DEVICES=2,3`` puts its workers on ``2`` and ``3`` (ids and UUIDs
kept as written). A runner's ``resources.devices`` picks among them by index;
without it, runners take the GPUs in turn (``spread_gpus``), so two one-worker
runners on a two-GPU host do not share GPU 0.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import sys
from collections.abc import Mapping, Sequence
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


def runner_gpus(resources: Resources, visible: Sequence[str], offset: int = 0) -> list[str]:
    """The GPUs a runner's workers take in turn: its ``devices`` (indexes into
    ``visible``), else every visible GPU starting at ``offset`` (wrapping around)."""
    if resources.devices is None:
        start = offset % len(visible)
        return [*visible[start:], *visible[:start]]
    outside = [index for index in resources.devices if index >= len(visible)]
    if outside:
        raise RunnerStartupError(
            f"resources.devices lists GPU {outside[0]}, but this process sees"
            f" {len(visible)} GPU{'s' * (len(visible) != 1)} ({', '.join(visible)}):"
            f" use indexes 0 to {len(visible) - 1}"
        )
    return [visible[index] for index in resources.devices]


def worker_environments(
    workers: int | str,
    resources: Resources,
    traits: RunnableTraits,
    *,
    cores: int,
    gpus: Sequence[str],
    gpu_offset: int = 0,
) -> list[dict[str, str]]:
    """One environment per worker to start (the list's length is the worker count).

    ``gpus``: the GPUs this process sees (``visible_gpus``)."""
    usable = cores if resources.cpu is None else max(1, min(cores, math.floor(resources.cpu)))
    wants_gpu = resources.gpu > 0 and bool(GPU_RESOURCES & set(traits.supported_resources))
    if wants_gpu and gpus:
        devices = runner_gpus(resources, gpus, gpu_offset)
        count = len(devices) if workers == "auto" else int(workers)
        per_worker = max(1, usable // count)
        return [
            {"CUDA_VISIBLE_DEVICES": devices[i % len(devices)], **_thread_env(per_worker)}
            for i in range(count)
        ]
    if workers == "auto":
        if traits.multi_threaded:
            return [_thread_env(usable)]
        return [_thread_env(1) for _ in range(usable)]
    count = int(workers)
    threads = max(1, usable // count) if traits.multi_threaded else 1
    return [_thread_env(threads) for _ in range(count)]


def plan_environments(
    config: RunnerConfig, *, gpus: int | Sequence[str] | None = None, cores: int | None = None
) -> list[dict[str, str]]:
    """The workers of ``config``; ``gpus`` overrides detection (for tests and CPU hosts):
    a count stands for GPUs ``0`` to ``gpus - 1``, a list for those device ids."""
    needs_traits = config.workers == "auto" or config.resources.gpu > 0
    search = str(config.search_path) if config.search_path is not None else None
    traits = read_traits(config.runnable, search) if needs_traits else RunnableTraits()
    if gpus is None:
        visible = visible_gpus()
    else:
        visible = tuple(str(i) for i in range(gpus)) if isinstance(gpus, int) else tuple(gpus)
    try:
        envs = worker_environments(
            config.workers,
            config.resources,
            traits,
            cores=cores if cores is not None else available_cores(),
            gpus=visible,
            gpu_offset=config.gpu_offset,
        )
    except RunnerStartupError as error:
        raise RunnerStartupError(error.message, runner=config.name) from None
    return [{**env, **dict(config.env)} for env in envs]


def spread_gpus(configs: Sequence[RunnerConfig]) -> list[RunnerConfig]:
    """``configs`` with offsets that spread GPU runners: each runner without a device
    list starts on the GPU after the last one the runners before it took."""
    spread, offset = [], 0
    for config in configs:
        if config.resources.gpu > 0 and config.resources.devices is None:
            config = dataclasses.replace(config, gpu_offset=offset)
            offset += config.workers if isinstance(config.workers, int) else 1
        spread.append(config)
    return spread


def visible_gpus(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The NVIDIA GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them
    (ids or UUIDs; CUDA ignores everything from a ``-1`` on), else ``/dev/nvidiaN``."""
    env = os.environ if environ is None else environ
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        devices: list[str] = []
        for entry in (part.strip() for part in listed.split(",")):
            if entry == "-1":
                break
            if entry:
                devices.append(entry)
        return tuple(devices)
    try:
        names = [n[6:] for n in os.listdir("/dev") if n.startswith("nvidia") and n[6:].isdigit()]
    except OSError:
        return ()
    return tuple(sorted(names, key=int))


def detect_gpus(environ: Mapping[str, str] | None = None) -> int:
    """How many NVIDIA GPUs this process may use (see ``visible_gpus``)."""
    return len(visible_gpus(environ))
