"""Prometheus metrics of one server, in a registry of its own (no global state).

Request counts and latencies are recorded as requests finish; everything the
worker pools know (queue length, batch sizes, queue wait, restarts, rejections,
ready workers) is read from ``graph.stats()`` at scrape time by a collector, so
serving a request costs no extra bookkeeping for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from runners.types import CallResult, MethodStats, PoolStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

StatsSource = Callable[[], Mapping[str, Mapping[str, PoolStats]]]


class Metrics:
    """The metrics of one app; ``render()`` is the ``/metrics`` body."""

    def __init__(self, stats: StatsSource) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "graphctl_requests",
            "Requests answered, by graph, route and HTTP status.",
            ["graph", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "graphctl_request_seconds",
            "Request latency in seconds, by graph and HTTP status.",
            ["graph", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.node_latency = Histogram(
            "graphctl_node_seconds",
            "Time from a node's start to its result, in seconds.",
            ["graph", "node"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(PoolCollector(stats))
        # Labelled children by label values: ``labels()`` costs a lock and a tuple
        # build per call, and these run on every request.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._node_timers: dict[str, NodeTimer] = {}

    def observe_request(self, graph: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (graph, route, status)
        children = self._request_children.get(key)
        if children is None:
            code = str(status)
            children = (self.requests.labels(graph, route, code), self.latency.labels(graph, code))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def node_timer(self, graph: str) -> NodeTimer:
        """Records ``graph``'s node latencies when passed to ``Graph.run`` as ``trace``."""
        timer = self._node_timers.get(graph)
        if timer is None:
            timer = self._node_timers[graph] = NodeTimer(self.node_latency, graph)
        return timer

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


# What the collector reads from each pool and each of its methods: family name,
# help text, kind, and the figure. One row per family keeps the exposition and
# the stats types in step at a glance.
_Family = type[GaugeMetricFamily] | type[CounterMetricFamily]
_POOL_FAMILIES: tuple[tuple[str, str, _Family, Callable[[PoolStats], float]], ...] = (
    (
        "graphctl_runner_ready_workers",
        "Workers ready to serve.",
        GaugeMetricFamily,
        lambda pool: pool.ready_workers,
    ),
    (
        "graphctl_runner_workers",
        "Workers configured.",
        GaugeMetricFamily,
        lambda pool: pool.workers,
    ),
    (
        "graphctl_runner_worker_restarts",
        "Workers restarted after a crash or hang.",
        CounterMetricFamily,
        lambda pool: pool.restarts,
    ),
)
_METHOD_FAMILIES: tuple[tuple[str, str, _Family, Callable[[MethodStats], float]], ...] = (
    (
        "graphctl_runner_queue_length",
        "Calls waiting in the batcher queue.",
        GaugeMetricFamily,
        lambda stats: stats.queue_length,
    ),
    (
        "graphctl_runner_in_flight",
        "Items being run by workers.",
        GaugeMetricFamily,
        lambda stats: stats.in_flight,
    ),
    ("graphctl_runner_calls", "Calls submitted.", CounterMetricFamily, lambda stats: stats.calls),
    (
        "graphctl_runner_rejections",
        "Calls refused at enqueue (overload).",
        CounterMetricFamily,
        lambda stats: stats.rejected,
    ),
    (
        "graphctl_runner_timeouts",
        "Calls dropped from the queue at their deadline.",
        CounterMetricFamily,
        lambda stats: stats.timed_out,
    ),
    (
        "graphctl_runner_queue_wait_seconds",
        "Total time calls waited in the queue.",
        CounterMetricFamily,
        lambda stats: stats.queue_wait_s_sum,
    ),
    (
        "graphctl_runner_batch_seconds",
        "Total time workers spent running batches.",
        CounterMetricFamily,
        lambda stats: stats.batch_time_s_sum,
    ),
)
_POOL_LABELS = ["graph", "runner"]
_METHOD_LABELS = [*_POOL_LABELS, "method"]


class PoolCollector(Collector):
    """Reads every runner pool's stats when Prometheus scrapes."""

    def __init__(self, stats: StatsSource) -> None:
        self._stats = stats

    def describe(self) -> list[Metric]:
        """Nothing up front: the label sets are only known at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """One family per row of the tables above, plus the batch-size histogram."""
        pool_families = [
            (kind(name, doc, labels=_POOL_LABELS), figure)
            for name, doc, kind, figure in _POOL_FAMILIES
        ]
        method_families = [
            (kind(name, doc, labels=_METHOD_LABELS), figure)
            for name, doc, kind, figure in _METHOD_FAMILIES
        ]
        sizes = HistogramMetricFamily(
            "graphctl_runner_batch_size", "Items per batch.", labels=_METHOD_LABELS
        )
        for graph, pools in self._stats().items():
            for runner, pool in pools.items():
                key = [graph, runner]
                for family, of_pool in pool_families:
                    family.add_metric(key, of_pool(pool))
                for method, stats in pool.methods.items():
                    for family, of_method in method_families:
                        family.add_metric([*key, method], of_method(stats))
                    buckets, total = _batch_buckets(stats.batch_sizes)
                    sizes.add_metric([*key, method], buckets, sum_value=total)
        yield from (family for family, _ in pool_families)
        yield from (family for family, _ in method_families)
        yield sizes


def _batch_buckets(counts: Mapping[int, int]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative Prometheus buckets from a ``size -> batches`` table, and the items' sum."""
    buckets: list[tuple[str, float]] = []
    for bound in BATCH_BUCKETS:
        buckets.append((str(bound), float(sum(n for size, n in counts.items() if size <= bound))))
    buckets.append(("+Inf", float(sum(counts.values()))))
    return buckets, float(sum(size * n for size, n in counts.items()))


class NodeTimer:
    """A ``Tracer`` whose spans only feed the node latency histogram: a request's
    node timings without building trace events (one ``observe`` per node)."""

    def __init__(self, histogram: Histogram, graph: str) -> None:
        self._histogram = histogram
        self._graph = graph
        self._children: dict[str, Histogram] = {}

    def request(self, label: str | None = None) -> NodeTimer:
        """This timer itself: it keeps nothing per request."""
        return self  # stateless per request: every span is observed at once

    def start(self, name: str, kind: str) -> None:
        """Nothing to open: only the duration is kept."""
        return None

    def event(self, name: str, event: str, **attributes: Any) -> None:
        """Events are not metrics."""

    def observe(self, node: str, seconds: float) -> None:
        """Add one node latency to the histogram."""
        child = self._children.get(node)
        if child is None:
            child = self._children[node] = self._histogram.labels(self._graph, node)
        child.observe(seconds)

    def span(
        self,
        name: str,
        start: float,
        end: float,
        *,
        kind: str,
        status: str = "ok",
        calls: Sequence[CallResult] = (),
        **extra: Any,
    ) -> None:
        self.observe(name, max(end - start, 0.0))
