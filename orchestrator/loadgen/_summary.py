"""What a load run measured, as plain data, and the pure maths that summarizes
it: percentiles of request latencies, errors counted by kind, and per-node
calls, latency, queue wait and mean batch size from trace samples.

    summary = summarize(target="in-process", concurrency=16, duration_s=10.0,
                        latencies_ms=latencies, errors={}, nodes={})
    print(summary.to_json())
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestrator._stats import percentiles


@dataclass(frozen=True)
class NodeSample:
    """How one node served one request (from a trace span)."""

    node: str
    latency_ms: float
    queue_wait_ms: float | None = None  # runner nodes only
    batch_id: int | None = None
    batch_size: int | None = None


@dataclass(frozen=True)
class NodeSummary:
    """One node's figures over the measured window (``None``: not measured)."""

    calls: int
    mean_batch_size: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    queue_wait_ms: float | None = None  # mean time a call waited for a worker

    def to_json(self) -> dict[str, Any]:
        """The node's figures as JSON, rounded to microseconds."""
        return {
            "calls": self.calls,
            "mean_batch_size": _rounded(self.mean_batch_size),
            "p50_ms": _rounded(self.p50_ms),
            "p99_ms": _rounded(self.p99_ms),
            "queue_wait_ms": _rounded(self.queue_wait_ms),
        }


@dataclass(frozen=True)
class BenchSummary:
    """What a load run measured; ``to_json`` is the ``graphctl bench -o json`` object."""

    target: str
    concurrency: int
    duration_s: float  # the measured window actually elapsed
    requests: int  # successful requests completed in the window
    throughput_rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    errors: Mapping[str, int] = field(default_factory=dict)
    nodes: Mapping[str, NodeSummary] = field(default_factory=dict)
    refused: int = 0  # answered "retry later" (503 with Retry-After): not errors

    @property
    def error_count(self) -> int:
        """Failed requests in the window, of every kind."""
        return sum(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        """The ``graphctl bench -o json`` object."""
        return {
            "target": self.target,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "throughput_rps": round(self.throughput_rps, 2),
            "p50_ms": _rounded(self.p50_ms),
            "p90_ms": _rounded(self.p90_ms),
            "p99_ms": _rounded(self.p99_ms),
            "max_ms": _rounded(self.max_ms),
            "mean_ms": _rounded(self.mean_ms),
            "errors": dict(sorted(self.errors.items())),
            "refused": self.refused,
            "nodes": {name: node.to_json() for name, node in self.nodes.items()},
        }


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def mean_or_none(values: Sequence[float]) -> float | None:
    """The mean of ``values``, or ``None`` when there are none."""
    return float(np.mean(np.asarray(values, dtype=np.float64))) if values else None


def error_kind(error: BaseException) -> str:
    """A short, stable name for a failure: ``HTTP 503``, ``Overloaded``,
    ``NodeFailed(WorkerCrashed)``. An error may name itself with ``kind``."""
    kind = getattr(error, "kind", None)
    if isinstance(kind, str):
        return kind
    name = type(error).__name__
    cause = getattr(error, "cause", None) or error.__cause__
    return f"{name}({type(cause).__name__})" if name == "NodeFailed" and cause else name


def summarize_nodes(samples: Sequence[NodeSample]) -> dict[str, NodeSummary]:
    """Per-node figures from trace samples, nodes in first-seen order. The mean
    batch size is over distinct batches, the way a batcher counts it."""
    latencies: dict[str, list[float]] = {}
    waits: dict[str, list[float]] = {}
    batches: dict[str, dict[int, int]] = {}
    for sample in samples:
        latencies.setdefault(sample.node, []).append(sample.latency_ms)
        if sample.queue_wait_ms is not None:
            waits.setdefault(sample.node, []).append(sample.queue_wait_ms)
        if sample.batch_id is not None and sample.batch_size is not None:
            batches.setdefault(sample.node, {})[sample.batch_id] = sample.batch_size
    summaries: dict[str, NodeSummary] = {}
    for node, values in latencies.items():
        p50, p99 = percentiles(values, (50, 99))
        sizes = list(batches.get(node, {}).values())
        summaries[node] = NodeSummary(
            calls=len(values),
            mean_batch_size=mean_or_none(sizes),
            p50_ms=p50,
            p99_ms=p99,
            queue_wait_ms=mean_or_none(waits.get(node, [])),
        )
    return summaries


def summarize(
    *,
    target: str,
    concurrency: int,
    duration_s: float,
    latencies_ms: Sequence[float],
    errors: Mapping[str, int],
    nodes: Mapping[str, NodeSummary],
    refused: int = 0,
) -> BenchSummary:
    """The run's figures from its successful latencies (the only pure input)."""
    p50, p90, p99, top = percentiles(latencies_ms, (50, 90, 99, 100))
    return BenchSummary(
        target=target,
        concurrency=concurrency,
        duration_s=duration_s,
        requests=len(latencies_ms),
        throughput_rps=len(latencies_ms) / duration_s if duration_s > 0 else 0.0,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=top,
        mean_ms=mean_or_none(latencies_ms),
        errors=dict(errors),
        nodes=dict(nodes),
        refused=refused,
    )
