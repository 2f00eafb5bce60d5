"""Runner configuration: small frozen value objects, validated when built.

The orchestrator builds these from a graph file; ``runners`` never reads YAML,
environment variables or graph files itself.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from runners.runnable import MethodSpec

DEFAULT_MAX_BATCH_SIZE = 32
# Generous on purpose: a latency budget shorter than one batch's run time sheds
# healthy load (nearly every call times out under load). Deadlines per call are
# the tool for tight latency, not this.
DEFAULT_MAX_LATENCY_MS = 60_000.0
DEFAULT_MAX_QUEUE = 4096
DEFAULT_STARTUP_TIMEOUT_S = 60.0


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


def _seconds(settings: type) -> tuple[str, ...]:
    """The fields of a settings class that are durations (``_s``): each must be > 0."""
    return tuple(f.name for f in fields(settings) if f.name.endswith("_s"))


def _require_positive(settings: object, names: tuple[str, ...]) -> None:
    """``ValueError`` naming the first of ``names`` set to a value not > 0 (``None``:
    unset, allowed)."""
    for name in names:
        value = getattr(settings, name)
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


@dataclass(frozen=True)
class BatchingConfig:
    """How calls to one method are merged: up to ``max_batch_size`` items per batch,
    no call waiting in the queue longer than ``max_latency_ms``.

    ``batchable`` / ``batch_dim`` / ``stack`` left as ``None`` take the ``@method``
    declaration (see ``runners.merging`` for what they mean).
    ``adaptive_wait``: under high load, a free worker may hold a short batch a little
    (at most half the measured fixed cost of a batch, never past ``max_latency_ms``)
    when the method's measured latency model says fuller batches serve more;
    ``False`` dispatches at once always.
    """

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS
    batchable: bool | None = None
    batch_dim: int | None = None
    stack: bool | None = None
    adaptive_wait: bool = True

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_latency_ms <= 0:
            raise ValueError(f"max_latency_ms must be > 0, got {self.max_latency_ms}")


@dataclass(frozen=True)
class SupervisionConfig:
    """How a runner's workers are watched and replaced.

    An idle worker is pinged every ``ping_interval_s`` and replaced when no pong
    comes within ``ping_timeout_s``. A worker holding a batch longer than its hang
    limit is killed and replaced: ``hang_timeout_s`` when set, else
    ``max(hang_floor_s, hang_factor x`` the method's p99 batch time ``)`` once
    ``hang_warmup_batches`` batches were measured (``hang_warmup_s`` before then,
    so a first call that loads a model is not taken for a hang). A worker that
    dies is restarted after ``restart_backoff_s``, doubled per consecutive early
    death up to ``restart_backoff_cap_s``; ``max_start_failures`` start-ups in a
    row that fail stop the restarts and mark the runner unhealthy.
    """

    ping_interval_s: float = 5.0
    ping_timeout_s: float = 5.0
    hang_timeout_s: float | None = None
    hang_floor_s: float = 5.0
    hang_factor: float = 10.0
    hang_warmup_s: float = 60.0
    hang_warmup_batches: int = 20
    restart_backoff_s: float = 0.05
    restart_backoff_cap_s: float = 5.0
    max_start_failures: int = 3

    def __post_init__(self) -> None:
        _require_positive(self, SUPERVISION_SECONDS)
        if self.hang_factor < 1:
            raise ValueError(f"hang_factor must be >= 1, got {self.hang_factor}")
        if self.hang_warmup_batches < 1 or self.max_start_failures < 1:
            raise ValueError("hang_warmup_batches and max_start_failures must be >= 1")

    def restart_delay_s(self, early_deaths: int) -> float:
        """Delay before the restart following ``early_deaths`` early deaths in a row."""
        return float(min(self.restart_backoff_cap_s, self.restart_backoff_s * 2**early_deaths))

    def hang_limit_s(self, measured_batches: int, p99_batch_s: float) -> float:
        """How long one batch may run before its worker is taken for hung."""
        if self.hang_timeout_s is not None:
            return self.hang_timeout_s
        if measured_batches < self.hang_warmup_batches:
            return max(self.hang_floor_s, self.hang_warmup_s)
        return max(self.hang_floor_s, self.hang_factor * p99_batch_s)


SUPERVISION_SECONDS = _seconds(SupervisionConfig)


@dataclass(frozen=True)
class Endpoint:
    """Where a runner's worker listens on another host: ``HOST:PORT``, or
    ``dns:NAME:PORT`` (every address ``NAME`` resolves to, looked up again and again:
    a Kubernetes headless Service gives one address per ready pod)."""

    host: str
    port: int
    dns: bool = False

    def __str__(self) -> str:
        return f"{'dns:' if self.dns else ''}{host_port(self.host, self.port)}"


def host_port(host: str, port: int) -> str:
    """``HOST:PORT``, with an IPv6 host in brackets so its colons are not read as the port's."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_endpoint(text: str, *, listen: bool = False) -> Endpoint:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``dns:NAME:PORT``; ``ValueError`` says what is wrong.
    ``listen``: an address to bind (port 0: any free port; no ``dns:``)."""
    dns = text.startswith("dns:") and not listen
    rest = text[4:] if dns else text
    host, sep, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    lowest = 0 if listen else 1
    if not sep or not host or not port.isdigit() or not lowest <= int(port) < 65536:
        expected = "HOST:PORT" if listen else "HOST:PORT or dns:NAME:PORT"
        raise ValueError(f"endpoint {text!r} must be {expected}")
    return Endpoint(host, int(port), dns)


@dataclass(frozen=True)
class RemoteConfig:
    """How an orchestrator talks to a runner's workers on other hosts (``endpoints``).

    ``tls_ca``: a CA file; when set, connections use TLS and the worker's certificate
    must be signed by it for the endpoint's host name. A connection that cannot be
    made within ``connect_timeout_s`` is retried after ``reconnect_backoff_s``,
    doubled (with jitter) per failure up to ``reconnect_backoff_cap_s``. A heartbeat
    goes every ``heartbeat_interval_s``; a peer silent for ``dead_peer_timeout_s``
    (also the TCP user timeout) is taken for dead and its batch retried elsewhere.
    ``dns:`` names are resolved every ``dns_refresh_s`` and right after a failure.
    """

    tls_ca: str | None = None
    connect_timeout_s: float = 5.0
    heartbeat_interval_s: float = 1.0
    dead_peer_timeout_s: float = 5.0
    dns_refresh_s: float = 5.0
    reconnect_backoff_s: float = 0.1
    reconnect_backoff_cap_s: float = 5.0

    def __post_init__(self) -> None:
        _require_positive(self, REMOTE_SECONDS)

    def reconnect_delay_s(self, failures: int, rng: random.Random) -> float:
        """Delay before the connection attempt following ``failures`` failed ones:
        exponential with full jitter from ``rng``, so hosts are not retried in step."""
        cap = min(self.reconnect_backoff_cap_s, self.reconnect_backoff_s * 2 ** min(failures, 20))
        return rng.uniform(self.reconnect_backoff_s, max(self.reconnect_backoff_s, cap))


REMOTE_SECONDS = _seconds(RemoteConfig)


@dataclass(frozen=True)
class Resources:
    """What one runner asks for: CPU cores (``None``: all) and GPUs.

    ``devices``: which GPUs its workers use, in turn, as indexes into the GPUs this
    process sees (``None``: all of them). A device list asks for a GPU by itself."""

    cpu: float | None = None
    gpu: int = 0
    devices: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.devices is not None:
            if not self.devices or any(d < 0 for d in self.devices):
                raise ValueError(f"devices must list GPU indexes >= 0, got {list(self.devices)}")
            object.__setattr__(self, "gpu", max(self.gpu, 1))


@dataclass(frozen=True)
class RunnerConfig:
    """Everything a worker pool needs to start and serve one runner.

    ``runnable`` is ``"module:Class"``, imported in the worker with ``search_path``
    first on ``sys.path``. ``methods`` overrides ``batching`` per method name.
    ``gpu_offset``: the visible GPU its first worker takes (modulo their number), so
    that runners sharing a process's GPUs start on different ones. With
    ``endpoints`` the workers run on other hosts (``graphctl worker``), reached as
    ``remote`` says, and ``workers``, ``resources`` and ``env`` are theirs to set.
    """

    name: str
    runnable: str
    search_path: Path | None = None
    init: Mapping[str, Any] = field(default_factory=dict)
    workers: int | Literal["auto"] = 1
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    methods: Mapping[str, BatchingConfig] = field(default_factory=dict)
    max_queue: int = DEFAULT_MAX_QUEUE
    resources: Resources = field(default_factory=Resources)
    env: Mapping[str, str] = field(default_factory=dict)
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    gpu_offset: int = 0  # set by ``runners.resources.spread_gpus``, not by users
    supervision: SupervisionConfig = field(default_factory=SupervisionConfig)
    endpoints: tuple[Endpoint, ...] = ()  # workers on other hosts: no local processes
    remote: RemoteConfig = field(default_factory=RemoteConfig)

    def __post_init__(self) -> None:
        if ":" not in self.runnable:
            raise ValueError(f"runnable must be 'module:Class', got {self.runnable!r}")
        if self.workers != "auto" and (not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"workers must be a positive integer or 'auto', got {self.workers!r}")
        if self.max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {self.max_queue}")
        object.__setattr__(self, "init", _frozen(self.init))
        object.__setattr__(self, "methods", _frozen(self.methods))
        object.__setattr__(self, "env", _frozen(self.env))

    def batching_for(self, method: str) -> BatchingConfig:
        """The batching settings of one method: its override, else the runner's."""
        return self.methods.get(method, self.batching)

    def method_spec(self, declared: MethodSpec) -> MethodSpec:
        """A method as this runner calls it: the declaration with its overrides."""
        batching = self.batching_for(declared.name)
        batchable = declared.batchable if batching.batchable is None else batching.batchable
        return MethodSpec(
            declared.name,
            batchable,
            declared.batch_dim if batching.batch_dim is None else batching.batch_dim,
            declared.stack if batching.stack is None else batching.stack,
            declared.stream,
            declared.joins and batchable,
        )
