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

from runners.types import CallResult, PoolStats

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
        key = (graph, route, status)
        children = self._request_children.get(key)
        if children is None:
            code = str(status)
            children = (self.requests.labels(graph, route, code), self.latency.labels(graph, code))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_node(self, graph: str, node: str, seconds: float) -> None:
        self.node_timer(graph).observe(node, seconds)

    def node_timer(self, graph: str) -> NodeTimer:
        """Records ``graph``'s node latencies when passed to ``Graph.run`` as ``trace``."""
        timer = self._node_timers.get(graph)
        if timer is None:
            timer = self._node_timers[graph] = NodeTimer(self.node_latency, graph)
        return timer

    def render(self) -> bytes:
        return generate_latest(self.registry)


class PoolCollector(Collector):
    """Reads every runner pool's stats when Prometheus scrapes."""

    def __init__(self, stats: StatsSource) -> None:
        self._stats = stats

    def describe(self) -> list[Metric]:
        return []  # the label sets are only known at scrape time

    def collect(self) -> Iterator[Metric]:
        labels = ["graph", "runner"]
        method_labels = [*labels, "method"]
        ready = GaugeMetricFamily(
            "graphctl_runner_ready_workers", "Workers ready to serve.", labels=labels
        )
        configured = GaugeMetricFamily(
            "graphctl_runner_workers", "Workers configured.", labels=labels
        )
        restarts = CounterMetricFamily(
            "graphctl_runner_worker_restarts",
            "Workers restarted after a crash or hang.",
            labels=labels,
        )
        queue = GaugeMetricFamily(
            "graphctl_runner_queue_length",
            "Calls waiting in the batcher queue.",
            labels=method_labels,
        )
        in_flight = GaugeMetricFamily(
            "graphctl_runner_in_flight", "Items being run by workers.", labels=method_labels
        )
        calls = CounterMetricFamily(
            "graphctl_runner_calls", "Calls submitted.", labels=method_labels
        )
        rejected = CounterMetricFamily(
            "graphctl_runner_rejections",
            "Calls refused at enqueue (overload).",
            labels=method_labels,
        )
        timed_out = CounterMetricFamily(
            "graphctl_runner_timeouts",
            "Calls dropped from the queue at their deadline.",
            labels=method_labels,
        )
        wait = CounterMetricFamily(
            "graphctl_runner_queue_wait_seconds",
            "Total time calls waited in the queue.",
            labels=method_labels,
        )
        busy = CounterMetricFamily(
            "graphctl_runner_batch_seconds",
            "Total time workers spent running batches.",
            labels=method_labels,
        )
        sizes = HistogramMetricFamily(
            "graphctl_runner_batch_size", "Items per batch.", labels=method_labels
        )
        for graph, pools in self._stats().items():
            for runner, pool in pools.items():
                key = [graph, runner]
                ready.add_metric(key, pool.ready_workers)
                configured.add_metric(key, pool.workers)
                restarts.add_metric(key, pool.restarts)
                for method, stats in pool.methods.items():
                    mkey = [*key, method]
                    queue.add_metric(mkey, stats.queue_length)
                    in_flight.add_metric(mkey, stats.in_flight)
                    calls.add_metric(mkey, stats.calls)
                    rejected.add_metric(mkey, stats.rejected)
                    timed_out.add_metric(mkey, stats.timed_out)
                    wait.add_metric(mkey, stats.queue_wait_s_sum)
                    busy.add_metric(mkey, stats.batch_time_s_sum)
                    buckets, total = _batch_buckets(stats.batch_sizes)
                    sizes.add_metric(mkey, buckets, sum_value=total)
        yield from (
            ready,
            configured,
            restarts,
            queue,
            in_flight,
            calls,
            rejected,
            timed_out,
            wait,
            busy,
            sizes,
        )


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
        return self  # stateless per request: every span is observed at once

    def observe(self, node: str, seconds: float) -> None:
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
