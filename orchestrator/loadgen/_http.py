"""The HTTP target of the load generator: ``POST {url}/{graph}`` on a loopback
server, with per-node figures from the server's ``/metrics`` scraped at the
start and the end of the measured window and diffed.

Histograms only give quantiles to a bucket's resolution, so node p50/p99 over
HTTP are estimates (interpolated as Prometheus' ``histogram_quantile`` does);
calls, mean batch size and mean queue wait are exact (differences of the
histograms' counts and sums).

    async with HTTPTarget("http://127.0.0.1:8000", "diamond", inputs, nodes) as target:
        summary = await run_load(target, concurrency=64, duration_s=10)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.loadgen._client import ConnectionPool
from orchestrator.loadgen._errors import BenchError
from orchestrator.loadgen._summary import NodeSample, NodeSummary
from runners.lifecycle import AsyncLifecycle
from runners.remote.protocol import is_loopback

LabelSet = tuple[tuple[str, str], ...]

# The server's metric families this reads (see orchestrator/server/_metrics.py).
NODE_SECONDS = "graphctl_node_duration_seconds"  # histogram {graph, node, outcome}
BATCH_SIZE = "graphctl_runner_batch_size"  # histogram {graph, runner, method}
QUEUE_WAIT_SECONDS = "graphctl_runner_queue_wait_duration_seconds"  # histogram, same labels


@dataclass(frozen=True)
class Series:
    """One scraped sample: its family, sample name, labels and value."""

    family: str
    kind: str  # the family's type: counter, gauge, histogram, ...
    name: str  # e.g. ``graphctl_node_duration_seconds_bucket``
    labels: LabelSet
    value: float


Snapshot = tuple[Series, ...]


class HTTPStatusFailure(Exception):
    """A response that was not 2xx; ``kind`` is what the error table shows, and
    ``wait_before_retry_s`` the server's ``Retry-After`` (the client waits that long)."""

    def __init__(self, status: int, wait_before_retry_s: float | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.kind = f"HTTP {status}"
        self.wait_before_retry_s = wait_before_retry_s


@dataclass(frozen=True)
class NodeRoute:
    """What a node calls, so a runner's batch metrics can be shown on its nodes."""

    runner: str | None = None
    method: str | None = None


def require_loopback(url: str) -> str:
    """``url`` without a trailing slash; raises ``BenchError`` unless it is loopback.
    Load generation is a tool for one's own machine, never for someone's server."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise BenchError(f"--url must look like http://127.0.0.1:8000, got {url!r}")
    if not is_loopback(parts.hostname):
        raise BenchError(
            f"--url host {parts.hostname!r} is not a loopback address: "
            "graphctl bench only sends load to this machine (127.0.0.1, ::1, localhost)"
        )
    return url.rstrip("/")


class HTTPTarget(AsyncLifecycle):
    """A loopback server's graph endpoint; use as ``async with`` (owns its client)."""

    def __init__(
        self,
        url: str,
        graph: str,
        inputs: Mapping[str, Any],
        nodes: Mapping[str, NodeRoute],
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self._url = require_loopback(url)
        self._endpoint = f"{self._url}/{graph}"
        parts = urlsplit(self._url)
        self._path = f"{parts.path}/{graph}"
        self._timeout_s = timeout_s
        # Requests go through a lean keep-alive client (see http_client: httpx
        # would be the bottleneck); httpx only scrapes /metrics.
        self._pool = ConnectionPool(parts.hostname or "127.0.0.1", parts.port or 80)
        self._body = json.dumps(inputs).encode()
        self._graph = graph
        self._nodes = dict(nodes)
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)

    async def stop(self) -> None:
        """Close both clients' connections."""
        await self._pool.close()
        await self._client.aclose()

    @property
    def description(self) -> str:
        return self._endpoint

    async def send(self) -> Sequence[NodeSample]:
        reply = await self._pool.request(
            b"POST",
            self._path,
            self._body,
            timeout_s=self._timeout_s,
            content_type=b"application/json",
        )
        if not 200 <= reply.status < 300:
            raise HTTPStatusFailure(reply.status, reply.retry_after_s)
        return ()

    async def snapshot(self) -> Snapshot:
        try:
            response = await self._client.get(f"{self._url}/metrics")
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            raise BenchError(f"cannot reach a server at {self._url}: {reason}") from None
        if not response.is_success:
            raise BenchError(f"GET {self._url}/metrics answered HTTP {response.status_code}")
        return parse_metrics(response.text)

    def node_stats(self, before: Any, after: Any) -> dict[str, NodeSummary] | None:
        return node_stats_from_metrics(diff_snapshots(before, after), self._graph, self._nodes)


# ---------------------------------------------------------------- pure metric maths


def parse_metrics(text: str) -> Snapshot:
    """Every sample of a Prometheus text exposition."""
    series = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((str(k), str(v)) for k, v in sample.labels.items()))
            series.append(Series(family.name, family.type, sample.name, labels, sample.value))
    return tuple(series)


def diff_snapshots(before: Snapshot, after: Snapshot) -> Snapshot:
    """``after - before`` for counters and histograms (gauges keep ``after``)."""
    earlier = {(s.name, s.labels): s.value for s in before}
    return tuple(
        s
        if s.kind == "gauge"
        else Series(
            s.family, s.kind, s.name, s.labels, s.value - earlier.get((s.name, s.labels), 0)
        )
        for s in after
    )


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` (0..1) quantile of cumulative ``(upper_bound, count)`` buckets,
    interpolating linearly inside the bucket; ``None`` when there is no count."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank and count > below:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


@dataclass(frozen=True)
class _Histogram:
    buckets: tuple[tuple[float, float], ...]
    total: float
    count: float

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count > 0 else None


def _histogram(series: Iterable[Series], family: str, match: Mapping[str, str]) -> _Histogram:
    """The histogram of ``family`` summed over every label set containing ``match``."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    for s in series:
        labels = dict(s.labels)
        if s.family != family or any(labels.get(k) != v for k, v in match.items()):
            continue
        if s.name.endswith("_bucket"):
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + s.value
        elif s.name.endswith("_sum"):
            total += s.value
        elif s.name.endswith("_count"):
            count += s.value
    return _Histogram(tuple(sorted(buckets.items())), total, count)


def node_stats_from_metrics(
    delta: Snapshot, graph: str, nodes: Mapping[str, NodeRoute]
) -> dict[str, NodeSummary]:
    """Per-node figures from a metrics difference: the node latency histogram
    gives calls and p50/p99; a runner node's mean batch size and queue wait are
    its runner method's (shared by every node calling that method)."""
    summaries = {}
    for node, route in nodes.items():
        latency = _histogram(delta, NODE_SECONDS, {"graph": graph, "node": node})
        p50 = histogram_quantile(0.5, latency.buckets)
        p99 = histogram_quantile(0.99, latency.buckets)
        batch_size = wait_ms = None
        if route.runner is not None:
            match = {"graph": graph, "runner": route.runner}
            if route.method is not None:
                match["method"] = route.method
            batch_size = _histogram(delta, BATCH_SIZE, match).mean
            wait_s = _histogram(delta, QUEUE_WAIT_SECONDS, match).mean
            wait_ms = None if wait_s is None else wait_s * 1000.0
        summaries[node] = NodeSummary(
            calls=int(latency.count),
            mean_batch_size=batch_size,
            p50_ms=None if p50 is None else p50 * 1000.0,
            p99_ms=None if p99 is None else p99 * 1000.0,
            queue_wait_ms=wait_ms,
        )
    return summaries
