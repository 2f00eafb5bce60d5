"""Prometheus metrics of one server, in a registry of its own (no global state).

Names follow Prometheus' conventions: a histogram of durations ends in
``_duration_seconds``, a counter in ``_total``, an HTTP status is the label
``code``; ``graphctl_build_info`` and the standard process, platform and GC
collectors come along. ``docs/observability.md`` lists every family.

Request counts and latencies are recorded as requests finish; everything the
worker pools know (queue length, batch sizes, queue waits, restarts, rejections,
ready workers, each worker process's CPU and memory) is read from
``graph.stats()`` and ``/proc`` at scrape time by a collector, so serving a
request costs no extra bookkeeping for it. Streams are recorded as they run
(``_stream_metrics``), through the node timer each request is traced with.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from orchestrator._about import graphctl_version
from orchestrator.server._process_usage import process_usage
from orchestrator.server._stream_metrics import StreamFamilies, StreamMetrics
from runners.types import QUEUE_WAIT_BUCKETS_S, CallResult, EndpointStats, MethodStats, PoolStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The queue waits' bounds carried on to 10 s: a request's latency and its calls'
# queue waits read on the same scale.
LATENCY_BUCKETS = (*QUEUE_WAIT_BUCKETS_S, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

StatsSource = Callable[[], Mapping[str, Mapping[str, PoolStats]]]


class Metrics:
    """The metrics of one app; ``render()`` is the ``/metrics`` body."""

    def __init__(self, stats: StatsSource) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        Info("graphctl_build", "The graphctl version serving.", registry=self.registry).info(
            {"version": graphctl_version(), "python": platform.python_version()}
        )
        self.requests = Counter(
            "graphctl_requests",
            "Requests answered, by graph, route (json or oip) and HTTP status code.",
            ["graph", "route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "graphctl_request_duration_seconds",
            "Time from a request's arrival to its answer, by graph, route and status code.",
            ["graph", "route", "code"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.node_latency = Histogram(
            "graphctl_node_duration_seconds",
            "Time from a node's start to its result, by outcome "
            "(ok, skipped, error_handled, failed, cancelled, timed_out).",
            ["graph", "node", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.streams = StreamFamilies(self.registry)
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
            children = (
                self.requests.labels(graph, route, code),
                self.latency.labels(graph, route, code),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def node_timer(self, graph: str) -> NodeTimer:
        """Records ``graph``'s node latencies when passed to ``Graph.run`` as ``trace``."""
        timer = self._node_timers.get(graph)
        if timer is None:
            timer = NodeTimer(self.node_latency, graph, self.streams)
            self._node_timers[graph] = timer
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
        "graphctl_runner_worker_restarts_total",
        "Workers restarted after a crash or hang.",
        CounterMetricFamily,
        lambda pool: pool.restarts,
    ),
    (
        "graphctl_runner_load_items",
        "Items queued or in flight over every method: the signal to autoscale worker hosts on.",
        GaugeMetricFamily,
        lambda pool: pool.load_items,
    ),
)
_ENDPOINT_FAMILIES: tuple[tuple[str, str, _Family, Callable[[EndpointStats], float]], ...] = (
    (
        "graphctl_endpoint_up",
        "1 while the worker host is connected and takes batches.",
        GaugeMetricFamily,
        lambda host: float(host.connected),
    ),
    (
        "graphctl_endpoint_in_flight_items",
        "Items sent to the worker host and not yet answered.",
        GaugeMetricFamily,
        lambda host: host.in_flight,
    ),
    (
        "graphctl_endpoint_batches",
        "Batches the worker host answered.",
        CounterMetricFamily,
        lambda host: host.batches,
    ),
    (
        "graphctl_endpoint_failures",
        "Connections to the worker host that failed or were lost.",
        CounterMetricFamily,
        lambda host: host.failures,
    ),
    (
        "graphctl_endpoint_reconnects",
        "Connections to the worker host made after the first.",
        CounterMetricFamily,
        lambda host: host.reconnects,
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
    (
        "graphctl_runner_calls_total",
        "Calls submitted.",
        CounterMetricFamily,
        lambda stats: stats.calls,
    ),
    (
        "graphctl_runner_rejections_total",
        "Calls refused at enqueue (overload).",
        CounterMetricFamily,
        lambda stats: stats.rejected,
    ),
    (
        "graphctl_runner_timeouts_total",
        "Calls dropped from the queue at their deadline.",
        CounterMetricFamily,
        lambda stats: stats.timed_out,
    ),
    (
        "graphctl_runner_busy_seconds_total",
        "Time workers spent running this method's batches.",
        CounterMetricFamily,
        lambda stats: stats.batch_time_s_sum,
    ),
)
_POOL_LABELS = ["graph", "runner"]
_METHOD_LABELS = [*_POOL_LABELS, "method"]
_WORKER_LABELS = [*_POOL_LABELS, "worker"]
_ENDPOINT_LABELS = [*_POOL_LABELS, "endpoint"]


class PoolCollector(Collector):
    """Reads every runner pool's stats, and its worker processes' usage, when
    Prometheus scrapes."""

    def __init__(self, stats: StatsSource) -> None:
        self._stats = stats

    def describe(self) -> list[Metric]:
        """Nothing up front: the label sets are only known at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """One family per row of the tables above, the histograms, the workers' usage."""
        pool_families = [
            (kind(name, doc, labels=_POOL_LABELS), figure)
            for name, doc, kind, figure in _POOL_FAMILIES
        ]
        method_families = [
            (kind(name, doc, labels=_METHOD_LABELS), figure)
            for name, doc, kind, figure in _METHOD_FAMILIES
        ]
        endpoint_families = [
            (kind(name, doc, labels=_ENDPOINT_LABELS), figure)
            for name, doc, kind, figure in _ENDPOINT_FAMILIES
        ]
        sizes = HistogramMetricFamily(
            "graphctl_runner_batch_size", "Items per batch.", labels=_METHOD_LABELS
        )
        waits = HistogramMetricFamily(
            "graphctl_runner_queue_wait_duration_seconds",
            "Time a call waited in the batcher queue before a worker took its batch.",
            labels=_METHOD_LABELS,
        )
        cpu = CounterMetricFamily(
            "graphctl_runner_worker_cpu_seconds_total",
            "CPU time (user and system) of a worker process.",
            labels=_WORKER_LABELS,
        )
        memory = GaugeMetricFamily(
            "graphctl_runner_worker_resident_memory_bytes",
            "Resident memory of a worker process.",
            labels=_WORKER_LABELS,
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
                    waits.add_metric(
                        [*key, method], _wait_buckets(stats.queue_waits), stats.queue_wait_s_sum
                    )
                for worker, pid in pool.worker_pids.items():
                    usage = process_usage(pid)
                    if usage is not None:  # gone since the snapshot: left out
                        cpu.add_metric([*key, str(worker)], usage.cpu_s)
                        memory.add_metric([*key, str(worker)], usage.resident_bytes)
                for host in pool.endpoints:
                    for family, of_host in endpoint_families:
                        family.add_metric([*key, host.endpoint], of_host(host))
        yield from (family for family, _ in pool_families)
        yield from (family for family, _ in endpoint_families)
        yield from (family for family, _ in method_families)
        yield from (sizes, waits, cpu, memory)


def _batch_buckets(counts: Mapping[int, int]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative Prometheus buckets from a ``size -> batches`` table, and the items' sum."""
    buckets: list[tuple[str, float]] = []
    for bound in BATCH_BUCKETS:
        buckets.append((str(bound), float(sum(n for size, n in counts.items() if size <= bound))))
    buckets.append(("+Inf", float(sum(counts.values()))))
    return buckets, float(sum(size * n for size, n in counts.items()))


def _wait_buckets(counts: Sequence[int]) -> list[tuple[str, float]]:
    """Cumulative Prometheus buckets from the per-bucket counts of ``MethodStats.queue_waits``."""
    buckets: list[tuple[str, float]] = []
    seen = 0
    for bound, count in zip((*QUEUE_WAIT_BUCKETS_S, float("inf")), counts, strict=False):
        seen += count
        buckets.append(("+Inf" if bound == float("inf") else str(bound), float(seen)))
    if not buckets or buckets[-1][0] != "+Inf":
        buckets.append(("+Inf", float(seen)))
    return buckets


class NodeTimer:
    """A ``Tracer`` whose spans only feed the node latency histogram: a request's
    node timings without building trace events (one ``observe`` per node), each
    under its outcome, so failures never blur the latency of successes. Its
    streams feed the stream families (``_stream_metrics``)."""

    def __init__(self, histogram: Histogram, graph: str, streams: StreamFamilies) -> None:
        self._histogram = histogram
        self._graph = graph
        self._streams = streams
        self._children: dict[tuple[str, str], Histogram] = {}

    def request(self, label: str | None = None) -> NodeTimer:
        """This timer itself: it keeps nothing per request."""
        return self  # stateless per request: every span is observed at once

    def start(self, name: str, kind: str) -> None:
        """Nothing to open: only the duration is kept."""
        return None

    def event(self, name: str, event: str, **attributes: Any) -> None:
        """Events are not metrics."""

    def stream(self, name: str, runner: str, method: str, start: float) -> StreamMetrics:
        """The stream's figures, under its runner and method."""
        return StreamMetrics(self._streams.of(self._graph, runner, method), start)

    def observe(self, node: str, seconds: float, status: str = "ok") -> None:
        """Add one node latency to the histogram, under the node's outcome."""
        child = self._children.get((node, status))
        if child is None:
            outcome = status.replace(" ", "_")
            child = self._histogram.labels(self._graph, node, outcome)
            self._children[(node, status)] = child
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
        self.observe(name, max(end - start, 0.0), status)
