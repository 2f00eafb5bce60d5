"""Prometheus metrics of streaming runner calls, by graph, runner and method.

The executor tells the request's ``SpanSink`` when a node opens a stream, of each
chunk and of the end (``_trace.StreamSink``), whatever the request is: server-sent
events, a JSON answer collecting the chunks, or ``Graph.run`` given the server's
tracer. So every path is counted by this one recorder, and a stream that ends in
any way (its last chunk, an error, its client leaving, a deadline) leaves the
active gauge.

Time to first chunk runs from the call's start, its queue wait included: it is
what the client waits for. Chunks per second is the rate of the chunk counter;
the gap between two chunks of one stream is its own histogram.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from runners.types import QUEUE_WAIT_BUCKETS_S

# The 1-2.5-5 steps of every latency histogram (``QUEUE_WAIT_BUCKETS_S`` up to
# 2.5 s); streams last longer than requests that answer at once: a few minutes.
STREAM_BUCKETS = (*QUEUE_WAIT_BUCKETS_S[3:], 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
GAP_BUCKETS = (*QUEUE_WAIT_BUCKETS_S, 5.0)
_LABELS = ["graph", "runner", "method"]


class StreamFamilies:
    """The stream families of one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.first_chunk = Histogram(
            "graphctl_runner_stream_first_chunk_duration_seconds",
            "Time from a streaming call's start (queue wait included) to its first chunk.",
            _LABELS,
            buckets=STREAM_BUCKETS,
            registry=registry,
        )
        self.chunks = Counter(
            "graphctl_runner_stream_chunks",
            "Chunks of streaming calls delivered to their callers.",
            _LABELS,
            registry=registry,
        )
        self.gap = Histogram(
            "graphctl_runner_stream_chunk_gap_duration_seconds",
            "Time between two consecutive chunks of one stream.",
            _LABELS,
            buckets=GAP_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "graphctl_runner_stream_duration_seconds",
            "Time from a streaming call's start to its end, by outcome "
            "(ok, failed, cancelled, timed_out).",
            [*_LABELS, "outcome"],
            buckets=STREAM_BUCKETS,
            registry=registry,
        )
        self.active = Gauge(
            "graphctl_runner_active_streams",
            "Streaming calls running: started and not yet ended.",
            _LABELS,
            registry=registry,
        )
        self._children: dict[tuple[str, str, str], _StreamChildren] = {}

    def of(self, graph: str, runner: str, method: str) -> _StreamChildren:
        """The labelled children of one streaming method (made once: ``labels()``
        costs a lock and a tuple per call)."""
        key = (graph, runner, method)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = _StreamChildren(
                self.first_chunk.labels(*key),
                self.chunks.labels(*key),
                self.gap.labels(*key),
                self.active.labels(*key),
                self,
                key,
            )
        return children


@dataclass(frozen=True)
class _StreamChildren:
    first_chunk: Histogram
    chunks: Counter
    gap: Histogram
    active: Gauge
    families: StreamFamilies
    key: tuple[str, str, str]

    def duration(self, status: str) -> Histogram:
        return self.families.duration.labels(*self.key, status.replace(" ", "_"))


class StreamMetrics:
    """One stream as it runs: in the active gauge from its start to its end."""

    __slots__ = ("_children", "_last", "_start")

    def __init__(self, children: _StreamChildren, start: float) -> None:
        self._children = children
        self._start = start
        self._last: float | None = None
        children.active.inc()

    def chunk(self, at: float) -> None:
        children = self._children
        children.chunks.inc()
        if self._last is None:
            children.first_chunk.observe(max(at - self._start, 0.0))
        else:
            children.gap.observe(max(at - self._last, 0.0))
        self._last = at

    def end(self, at: float, status: str) -> None:
        self._children.active.dec()
        self._children.duration(status).observe(max(at - self._start, 0.0))
