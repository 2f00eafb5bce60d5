"""Runner settings written in YAML (``workers``, ``batching``, ``methods``,
``max_queue``, ``resources``, ``env``, ``supervision``, ``endpoints``, ``remote``)
merged onto a ``RunnerConfig``.

One merge serves both places that need it: a model runner's graph entry on
top of its stored signatures, and a deploy-time override on top of a compiled
runner. Merging is per field: ``batching: {max_batch_size: 8}`` changes only
that field, on the runner's default and on every per-method entry. Problems
are collected, not raised, so a user sees all of them at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from runners.config import (
    REMOTE_SECONDS,
    BatchingConfig,
    Endpoint,
    RemoteConfig,
    Resources,
    RunnerConfig,
    SupervisionConfig,
    parse_endpoint,
)

SETTINGS_KEYS = (
    "workers",
    "batching",
    "methods",
    "max_queue",
    "resources",
    "env",
    "supervision",
    "endpoints",
    "remote",
)
RESOURCES_KEYS = ("cpu", "gpu", "devices")

Path = tuple[str | int, ...]
ConfigT = TypeVar("ConfigT", BatchingConfig, SupervisionConfig, RemoteConfig)


@dataclass(frozen=True)
class Problem:
    """One invalid setting: where (a key path) and what is wrong."""

    path: Path
    message: str
    on_key: bool = False  # the key itself is wrong (not its value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unknown(raw: Mapping[str, Any], allowed: Iterable[str], path: Path) -> list[Problem]:
    allowed = tuple(allowed)
    return [
        Problem((*path, key), f"unknown key {key!r}; expected one of: {', '.join(allowed)}", True)
        for key in raw
        if key not in allowed
    ]


def _mapping(raw: Any, path: Path, problems: list[Problem]) -> Mapping[str, Any] | None:
    if isinstance(raw, Mapping):
        return raw
    problems.append(Problem(path, f"must be a mapping, got {type(raw).__name__}"))
    return None


Check = tuple[Callable[[Any], bool], str]  # a predicate and what it expects, for messages

_BATCHING_CHECKS: dict[str, Check] = {
    "max_batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "max_latency_ms": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "batchable": (lambda v: isinstance(v, bool), "true or false"),
    "batch_dim": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "stack": (lambda v: isinstance(v, bool), "true or false"),
    "adaptive_wait": (lambda v: isinstance(v, bool), "true or false"),
}
_POSITIVE: Check = (lambda v: _is_number(v) and v > 0, "a number > 0")
_SUPERVISION_CHECKS: dict[str, Check] = {
    "ping_interval_s": _POSITIVE,
    "ping_timeout_s": _POSITIVE,
    "hang_timeout_s": (lambda v: v is None or (_is_number(v) and v > 0), "a number > 0 or null"),
    "hang_floor_s": _POSITIVE,
    "hang_factor": (lambda v: _is_number(v) and v >= 1, "a number >= 1"),
    "hang_warmup_s": _POSITIVE,
    "hang_warmup_batches": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "restart_backoff_s": _POSITIVE,
    "restart_backoff_cap_s": _POSITIVE,
    "max_start_failures": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
}

_REMOTE_CHECKS: dict[str, Check] = {
    "tls_ca": (lambda v: v is None or (isinstance(v, str) and bool(v)), "a file name or null"),
    **{name: _POSITIVE for name in REMOTE_SECONDS},
}


def _merge_checked(
    base: ConfigT, raw: Any, checks: Mapping[str, Check], path: Path, problems: list[Problem]
) -> ConfigT:
    """``base`` with the fields of ``raw`` replaced; unknown keys and values that fail
    their check become problems."""
    mapping = _mapping(raw, path, problems)
    if mapping is None:
        return base
    problems.extend(_unknown(mapping, checks, path))
    changes: dict[str, Any] = {}
    for key, (ok, expected) in checks.items():
        if key in mapping:
            if ok(mapping[key]):
                changes[key] = mapping[key]
            else:
                problems.append(Problem((*path, key), f"must be {expected}, got {mapping[key]!r}"))
    return dataclasses.replace(base, **changes)


def merge_batching(
    base: BatchingConfig, raw: Any, path: Path, problems: list[Problem]
) -> BatchingConfig:
    """``base`` with the fields of ``raw`` replaced; invalid fields become problems."""
    return _merge_checked(base, raw, _BATCHING_CHECKS, path, problems)


def _merge_resources(base: Resources, raw: Any, path: Path, problems: list[Problem]) -> Resources:
    mapping = _mapping(raw, path, problems)
    if mapping is None:
        return base
    problems.extend(_unknown(mapping, RESOURCES_KEYS, path))
    changes: dict[str, Any] = {}
    cpu, gpu = mapping.get("cpu", base.cpu), mapping.get("gpu", base.gpu)
    if cpu is not None and not (_is_number(cpu) and cpu > 0):
        problems.append(Problem((*path, "cpu"), f"must be a number > 0 or null, got {cpu!r}"))
    else:
        changes["cpu"] = cpu
    if not (_is_int(gpu) and gpu >= 0):
        problems.append(Problem((*path, "gpu"), f"must be an integer >= 0, got {gpu!r}"))
    else:
        changes["gpu"] = gpu
    if "devices" in mapping:
        devices = mapping["devices"]
        if devices is None or _is_device_list(devices):
            changes["devices"] = None if devices is None else tuple(devices)
        else:
            problems.append(
                Problem(
                    (*path, "devices"),
                    f"must be a list of distinct GPU indexes >= 0 or null, got {devices!r}",
                )
            )
    return dataclasses.replace(base, **changes)


def _is_device_list(raw: Any) -> bool:
    """A non-empty list of distinct integers >= 0 (indexes of the visible GPUs)."""
    if not isinstance(raw, list) or not raw:
        return False
    return all(_is_int(i) and i >= 0 for i in raw) and len(set(raw)) == len(raw)


def _merge_supervision(
    base: SupervisionConfig, raw: Any, path: Path, problems: list[Problem]
) -> SupervisionConfig:
    """``base`` with the timings of ``raw`` replaced (``hang_timeout_s: null``: adaptive)."""
    return _merge_checked(base, raw, _SUPERVISION_CHECKS, path, problems)


def _endpoints(raw: Any, path: Path, problems: list[Problem]) -> tuple[Endpoint, ...] | None:
    """A list of ``HOST:PORT`` or ``dns:NAME:PORT`` strings (empty: local workers)."""
    if not isinstance(raw, list):
        problems.append(Problem(path, f"must be a list of HOST:PORT or dns:NAME:PORT, got {raw!r}"))
        return None
    endpoints = []
    for index, text in enumerate(raw):
        try:
            endpoints.append(parse_endpoint(str(text)))
        except ValueError as error:
            problems.append(Problem((*path, index), str(error)))
    return tuple(endpoints)


def _merge_env(
    base: Mapping[str, str], raw: Any, path: Path, problems: list[Problem]
) -> dict[str, str]:
    mapping = _mapping(raw, path, problems)
    merged = dict(base)
    for key, value in (mapping or {}).items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            merged[str(key)] = str(value)
        else:
            problems.append(Problem((*path, key), f"must be a string, got {value!r}"))
    return merged


def _merge_methods(
    config: RunnerConfig,
    raw: Mapping[str, Any],
    known_methods: Iterable[str] | None,
    problems: list[Problem],
) -> tuple[BatchingConfig, dict[str, BatchingConfig]]:
    batching = config.batching
    methods = dict(config.methods)
    if "batching" in raw:
        batching = merge_batching(config.batching, raw["batching"], ("batching",), problems)
        for name, entry in methods.items():  # the runner default applies to every method
            methods[name] = merge_batching(entry, raw["batching"], ("batching",), [])
    per_method = _mapping(raw.get("methods", {}), ("methods",), problems) or {}
    known = None if known_methods is None else sorted(set(known_methods) | set(methods))
    for name, entry in per_method.items():
        if known is not None and name not in known:
            problems.append(
                Problem(
                    ("methods", name),
                    f"runner {config.name!r} has no method {name!r}; known: {', '.join(known)}",
                    True,
                )
            )
            continue
        methods[name] = merge_batching(
            methods.get(name, batching), entry, ("methods", name), problems
        )
    return batching, methods


def merge_settings(
    config: RunnerConfig,
    raw: Mapping[str, Any],
    *,
    known_methods: Iterable[str] | None = None,
) -> tuple[RunnerConfig, list[Problem]]:
    """``config`` with the settings of ``raw`` applied, and every problem found.

    ``known_methods`` (when given) are the method names ``methods:`` may name."""
    problems = _unknown(raw, SETTINGS_KEYS, ())
    changes: dict[str, Any] = {}
    if "workers" in raw:
        workers = raw["workers"]
        if workers == "auto" or (_is_int(workers) and workers >= 1):
            changes["workers"] = workers
        else:
            problems.append(
                Problem(("workers",), f"must be an integer >= 1 or 'auto', got {workers!r}")
            )
    if "max_queue" in raw:
        if _is_int(raw["max_queue"]) and raw["max_queue"] >= 1:
            changes["max_queue"] = raw["max_queue"]
        else:
            problems.append(
                Problem(("max_queue",), f"must be an integer >= 1, got {raw['max_queue']!r}")
            )
    if "resources" in raw:
        changes["resources"] = _merge_resources(
            config.resources, raw["resources"], ("resources",), problems
        )
    if "env" in raw:
        changes["env"] = _merge_env(config.env, raw["env"], ("env",), problems)
    if "supervision" in raw:
        changes["supervision"] = _merge_supervision(
            config.supervision, raw["supervision"], ("supervision",), problems
        )
    if "endpoints" in raw:
        endpoints = _endpoints(raw["endpoints"], ("endpoints",), problems)
        if endpoints is not None:
            changes["endpoints"] = endpoints
    if "remote" in raw:
        changes["remote"] = _merge_checked(
            config.remote, raw["remote"], _REMOTE_CHECKS, ("remote",), problems
        )
    if "batching" in raw or "methods" in raw:
        changes["batching"], changes["methods"] = _merge_methods(
            config, raw, known_methods, problems
        )
    return dataclasses.replace(config, **changes), problems


def config_to_dict(config: RunnerConfig) -> dict[str, Any]:
    """The JSON/YAML form of a runner's effective settings (``graphctl config``)."""
    return {
        "runnable": config.runnable,
        "init": dict(config.init),
        "workers": config.workers,
        "batching": dataclasses.asdict(config.batching),
        "methods": {name: dataclasses.asdict(b) for name, b in config.methods.items()},
        "max_queue": config.max_queue,
        "resources": _resources_to_dict(config.resources),
        "env": dict(config.env),
        "supervision": dataclasses.asdict(config.supervision),
        "endpoints": [str(endpoint) for endpoint in config.endpoints],
        "remote": dataclasses.asdict(config.remote),
    }


def _resources_to_dict(resources: Resources) -> dict[str, Any]:
    devices = resources.devices
    return {"cpu": resources.cpu, "gpu": resources.gpu, "devices": devices and list(devices)}
