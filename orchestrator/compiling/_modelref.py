"""Runners built from the model store: ``runners: {digits: {model: digits:latest}}``.

The compiler calls ``resolve_model_runner`` for a runner written with ``model:``
instead of ``runnable:``. The reference is resolved once, here, to an exact
version, so every worker loads the same files even if ``latest`` moves while
the graph runs. The framework's runner class serves it; the stored signatures
are its methods (with their ``batchable``/``batch_dim``), and the runner's own
settings (``workers``, ``batching``, ...) apply on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.compiling._runner_settings import SETTINGS_KEYS, merge_settings
from orchestrator.errors import GraphctlError
from runners.config import BatchingConfig, RunnerConfig
from runners.errors import ModelError
from runners.models import framework_for, get, store_home
from runners.models.store import ModelInfo
from runners.runnable import MethodSpec


def model_methods(model_ref: str) -> dict[str, MethodSpec]:
    """The methods a stored model exposes (its signatures), for the compiler's checks.

    Raises ``ModelNotFound`` / ``ModelCorrupt`` naming the entry."""
    info = get(model_ref)
    return _method_specs(info)


def _method_specs(info: ModelInfo) -> dict[str, MethodSpec]:
    return {
        name: MethodSpec(name, sig.batchable, sig.batch_dim, sig.stack)
        for name, sig in info.signatures.items()
    }


def _framework_init(info: ModelInfo, runner_spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the framework runner's ``__init__`` gets: the exact version, the store, and
    threads or device from the runner's resources (``init:`` in the graph wins)."""
    init: dict[str, Any] = {"model": str(info.ref), "store": str(store_home())}
    resources = runner_spec.get("resources") or {}
    cpu = resources.get("cpu") if isinstance(resources, Mapping) else None
    gpu = resources.get("gpu") if isinstance(resources, Mapping) else None
    devices = resources.get("devices") if isinstance(resources, Mapping) else None
    if info.framework in ("onnx", "torch") and isinstance(cpu, int | float) and cpu >= 1:
        init["threads"] = int(cpu)
    if info.framework == "torch" and ((isinstance(gpu, int) and gpu > 0) or devices):
        init["device"] = "cuda"
    extra = runner_spec.get("init") or {}
    if not isinstance(extra, Mapping):
        raise ModelError(f"runner init must be a mapping, got {type(extra).__name__}")
    return init | dict(extra)


def resolve_model_runner(
    runner_name: str,
    model_ref: str | Mapping[str, Any],
    runner_spec: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
) -> RunnerConfig:
    """The ``RunnerConfig`` of a model runner. ``runner_spec`` is the runner's entry
    as written (``model``, ``workers``, ``batching``, ``methods``, ``init``, ...);
    ``resolve_model_runner(name, runner_spec)`` reads the reference from it.

    Raises ``GraphctlError`` naming the model (not found, corrupt, bad settings)."""
    if isinstance(model_ref, Mapping):
        runner_spec, model_ref = model_ref, str(model_ref.get("model", ""))
    try:
        return _resolve(runner_name, model_ref, runner_spec or {}, base_dir)
    except ModelError as error:
        raise GraphctlError(error.message) from None


def _resolve(
    runner_name: str, model_ref: str, runner_spec: Mapping[str, Any], base_dir: Path | None
) -> RunnerConfig:
    info = get(model_ref)
    framework = framework_for(info.framework)
    methods = {
        name: BatchingConfig(batchable=sig.batchable, batch_dim=sig.batch_dim, stack=sig.stack)
        for name, sig in info.signatures.items()
    }
    base = RunnerConfig(
        name=runner_name,
        runnable=framework.runnable,
        search_path=base_dir,
        init=_framework_init(info, runner_spec),
        workers="auto",  # threads follow the framework: see runners.resources
        methods=methods,
    )
    settings = {k: v for k, v in runner_spec.items() if k in SETTINGS_KEYS}
    config, problems = merge_settings(base, settings, known_methods=info.signatures)
    if problems:
        first = problems[0]
        where = ".".join(str(p) for p in first.path)
        raise ModelError(f"runner {runner_name!r}: {where}: {first.message}", ref=str(info.ref))
    return config
