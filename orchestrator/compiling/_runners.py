"""Compile ``spec.runners``: a ``RunnerConfig`` per runner, with its Runnable class
imported here (never instantiated) so node calls can be checked against it.

A runner is written with ``runnable: module:Class``, or with ``model: NAME:VERSION``
for a model of the model store, which ``orchestrator.compiling._modelref`` turns into a
``RunnerConfig``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.compiling._context import CompileContext, spec_path
from orchestrator.compiling._imports import ImportFailure, check_arguments
from orchestrator.compiling._modelref import model_methods, resolve_model_runner
from orchestrator.compiling._spec import DataPath
from orchestrator.compiling._validation import did_you_mean
from orchestrator.errors import GraphctlError
from orchestrator.plan import NodePlan
from runners.config import (
    DEFAULT_MAX_QUEUE,
    DEFAULT_STARTUP_TIMEOUT_S,
    BatchingConfig,
    RemoteConfig,
    Resources,
    RunnerConfig,
    SupervisionConfig,
    parse_endpoint,
)
from runners.errors import RunnerError
from runners.runnable import MethodSpec, Runnable, runnable_methods


@dataclass(frozen=True)
class CompiledRunner:
    """A runner's config and, when its class imported, the class and its methods."""

    config: RunnerConfig
    cls: type[Runnable] | None = None
    methods: Mapping[str, MethodSpec] | None = None
    model: str | None = None  # the ``model:`` reference of a model-store runner


def _batching(data: Mapping[str, Any] | None) -> BatchingConfig:
    return BatchingConfig(**dict(data or {}))


def _config(ctx: CompileContext, name: str, data: Mapping[str, Any]) -> RunnerConfig:
    resources = data.get("resources") or {}
    return RunnerConfig(
        name=name,
        runnable=str(data["runnable"]),
        search_path=ctx.folder,
        init=dict(data.get("init") or {}),
        workers=data.get("workers", 1),
        batching=_batching(data.get("batching")),
        methods={m: _batching(b) for m, b in (data.get("methods") or {}).items()},
        max_queue=data.get("max_queue", DEFAULT_MAX_QUEUE),
        resources=Resources(
            cpu=resources.get("cpu"),
            gpu=resources.get("gpu", 0),
            devices=tuple(devices) if (devices := resources.get("devices")) is not None else None,
        ),
        env=dict(data.get("env") or {}),
        startup_timeout_s=data.get("startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S),
        supervision=SupervisionConfig(**dict(data.get("supervision") or {})),
        endpoints=tuple(parse_endpoint(str(e)) for e in data.get("endpoints") or ()),
        remote=RemoteConfig(**dict(data.get("remote") or {})),
    )


def _model_config(ctx: CompileContext, name: str, data: Mapping[str, Any]) -> RunnerConfig | None:
    try:
        return resolve_model_runner(name, data)
    except (GraphctlError, RunnerError, LookupError, ValueError, OSError) as error:
        ctx.error_at(spec_path("runners", name, "model"), f"runner {name!r}: {error}")
        return None


def _methods(cls: type[Runnable], data: Mapping[str, Any]) -> dict[str, MethodSpec]:
    """A model runner exposes the signatures it was saved with, not every method
    its framework class could serve; any other runner, its ``@method``s."""
    if "model" not in data:
        return runnable_methods(cls)
    stored = model_methods(str(data["model"]))
    return {m: spec for m, spec in stored.items() if m in runnable_methods(cls)}


def _import_class(
    ctx: CompileContext, config: RunnerConfig, path: DataPath
) -> type[Runnable] | None:
    try:
        target = ctx.import_object(config.runnable, config.search_path)
    except ImportFailure as error:
        ctx.error_at(path, f"runner {config.name!r}: {error}")
        return None
    if not (isinstance(target, type) and issubclass(target, Runnable)):
        ctx.error_at(
            path,
            f"runner {config.name!r}: {config.runnable!r} is not a subclass of runners.Runnable",
        )
        return None
    return target


def _check_class(ctx: CompileContext, name: str, runner: CompiledRunner) -> None:
    """``init`` against ``__init__``; ``methods`` keys against the ``@method``s."""
    assert runner.cls is not None and runner.methods is not None
    init = runner.config.init
    problems = check_arguments(runner.cls, list(init))
    for missing in problems.missing:
        ctx.error_at(
            spec_path("runners", name),
            f"runner {name!r}: `init` misses {missing!r}, "
            f"required by {runner.config.runnable}.__init__",
            on_key=True,
        )
    for unknown, hint in problems.unknown:
        ctx.error_at(
            spec_path("runners", name, "init", unknown),
            f"runner {name!r}: {runner.config.runnable}.__init__ takes no {unknown!r}{hint}",
            on_key=True,
        )
    for method in runner.config.methods:
        if method not in runner.methods:
            ctx.error_at(
                spec_path("runners", name, "methods", method),
                f"runner {name!r}: {runner.config.runnable} has no @method {method!r}"
                + did_you_mean(method, list(runner.methods)),
                on_key=True,
            )


def compile_runner(
    ctx: CompileContext, name: str, data: Mapping[str, Any]
) -> CompiledRunner | None:
    """One runner, or ``None`` if it has faults (each reported in ``ctx``)."""
    if ctx.faulty(spec_path("runners", name)):
        return None
    model = str(data["model"]) if "model" in data else None
    if model is not None:
        config = _model_config(ctx, name, data)
    else:
        try:
            config = _config(ctx, name, data)
        except ValueError as error:
            ctx.error_at(spec_path("runners", name), f"runner {name!r}: {error}", on_key=True)
            return None
    if config is None:
        return None
    written_as = "runnable" if model is None else "model"
    cls = _import_class(ctx, config, spec_path("runners", name, written_as))
    if cls is None:
        return CompiledRunner(config)
    runner = CompiledRunner(config, cls, _methods(cls, data), model)
    _check_class(ctx, name, runner)
    return runner


def node_method(
    node: NodePlan, runners: Mapping[str, CompiledRunner]
) -> tuple[CompiledRunner, MethodSpec] | None:
    """The runner a runner node calls and its method as declared, when both are
    known (a runner or method that could not be read is reported elsewhere)."""
    runner = runners.get(node.runner or "")
    declared = (runner.methods or {}).get(node.method or "") if runner else None
    return None if runner is None or declared is None else (runner, declared)


def compile_runners(ctx: CompileContext, data: Mapping[str, Any]) -> dict[str, CompiledRunner]:
    """Every runner that compiled; the names of faulty ones are still known to ``data``."""
    compiled = {}
    for name, runner_data in data.items():
        if isinstance(runner_data, dict):
            runner = compile_runner(ctx, str(name), runner_data)
            if runner is not None:
                compiled[str(name)] = runner
    return compiled
