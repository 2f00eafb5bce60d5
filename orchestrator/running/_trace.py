"""Spans of a request's nodes, and where they go: a ``SpanSink`` per request,
given by a ``Tracer``. Three tracers: ``Trace`` (this module: a Chrome trace,
viewable in Perfetto or chrome://tracing, for ``graphctl run --trace``), the
server's node latency histogram, and OpenTelemetry (``_otel.OtelTracer``);
``Tee`` sends one request's spans to several.

    trace = Trace()
    await graph.run(inputs, trace=trace)
    trace.write("trace.json")

In a Chrome trace each request is one row (``tid``); runner spans carry
``queue_wait_ms``, ``batch_id``, ``batch_size`` and ``worker`` in ``args``, a
streaming call's span ``chunks`` and ``first_chunk_ms``; a retry and a stream's
first chunk are instant events. Times are microseconds from the trace's
creation, on the monotonic clock.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from runners.types import CallResult

_PID = 1


class SpanSink(Protocol):
    """Where one request's node spans go: a ``RequestTrace``, metrics, OpenTelemetry.

    The executor calls ``start`` when a node starts, ``event`` for what happens
    while it runs, ``stream`` when it opens a streaming runner call, and ``span``
    once it ends."""

    def start(self, name: str, kind: str) -> str | None:
        """Node ``name`` starts. A sink keeping a live span opens it and returns its
        W3C ``traceparent`` (the node's runner calls carry it); others ``None``."""

    def event(self, name: str, event: str, **attributes: Any) -> None:
        """Something happened while node ``name`` ran (a ``retry``)."""

    def stream(self, name: str, runner: str, method: str, start: float) -> StreamSink | None:
        """Node ``name`` opened a stream of ``runner.method`` at ``start``: what hears
        its chunks and its end (``None``: nothing to hear). Optional: a sink without
        this method hears nothing of streams."""

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
        """Record node ``name``'s span (``time.monotonic()`` seconds) and its runner calls."""


class StreamSink(Protocol):
    """Hears one streaming runner call while it runs (``time.monotonic()`` seconds).
    ``end`` comes once, before the node's span ends, however the stream ended."""

    def chunk(self, at: float) -> None:
        """A chunk reached the caller."""

    def end(self, at: float, status: str) -> None:
        """The stream ended: ``ok``, ``failed``, ``cancelled`` or ``timed out``."""


class Tracer(Protocol):
    """Gives each request a ``SpanSink``: a ``Trace``, or the server's node timings."""

    def request(self, label: str | None = None) -> SpanSink:
        """The sink of one request's spans; ``label`` names its row."""


class Tee:
    """A ``Tracer`` sending each request's spans to every one of ``tracers``."""

    def __init__(self, *tracers: Tracer) -> None:
        self._tracers = tracers

    def request(self, label: str | None = None) -> TeeSink:
        return TeeSink([tracer.request(label) for tracer in self._tracers])


class TeeSink:
    """One request's sinks as one: the first ``traceparent`` a sink gives is kept."""

    def __init__(self, sinks: Sequence[SpanSink]) -> None:
        self._sinks = sinks

    def start(self, name: str, kind: str) -> str | None:
        parents = [sink.start(name, kind) for sink in self._sinks]
        return next((parent for parent in parents if parent is not None), None)

    def event(self, name: str, event: str, **attributes: Any) -> None:
        for sink in self._sinks:
            sink.event(name, event, **attributes)

    def stream(self, name: str, runner: str, method: str, start: float) -> StreamSink | None:
        heard = [s for sink in self._sinks if (s := open_stream(sink, name, runner, method, start))]
        if len(heard) <= 1:
            return heard[0] if heard else None
        return TeeStream(heard)

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
        for sink in self._sinks:
            sink.span(name, start, end, kind=kind, status=status, calls=calls, **extra)


def open_stream(
    sink: SpanSink, name: str, runner: str, method: str, start: float
) -> StreamSink | None:
    """``sink.stream(...)``; ``None`` from a sink written before streams, which has
    no ``stream`` (it is optional)."""
    opens = getattr(sink, "stream", None)
    return None if opens is None else opens(name, runner, method, start)


class TeeStream:
    """One stream's sinks as one."""

    def __init__(self, sinks: Sequence[StreamSink]) -> None:
        self._sinks = sinks

    def chunk(self, at: float) -> None:
        for sink in self._sinks:
            sink.chunk(at)

    def end(self, at: float, status: str) -> None:
        for sink in self._sinks:
            sink.end(at, status)


class StreamTally:
    """A stream's chunk count and first chunk, for a span's attributes."""

    __slots__ = ("chunks", "first_at", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.chunks = 0
        self.first_at: float | None = None

    def chunk(self, at: float) -> bool:
        """Count a chunk; ``True`` for the first."""
        self.chunks += 1
        if self.first_at is None:
            self.first_at = at
            return True
        return False

    def args(self) -> dict[str, Any]:
        """``chunks``, and ``first_chunk_ms`` once a chunk came."""
        found: dict[str, Any] = {"chunks": self.chunks}
        if self.first_at is not None:
            found["first_chunk_ms"] = round((self.first_at - self.start) * 1e3, 3)
        return found


class Trace:
    """Collects trace events of any number of requests; ``write`` saves them."""

    def __init__(self, *, process_name: str = "graphctl") -> None:
        self._origin = time.monotonic()
        self._events: list[dict[str, Any]] = [_metadata("process_name", 0, process_name)]
        self._request_ids = itertools.count(1)

    def request(self, label: str | None = None) -> RequestTrace:
        """A recorder for one request, shown as its own row."""
        tid = next(self._request_ids)
        self._events.append(_metadata("thread_name", tid, label or f"request {tid}"))
        return RequestTrace(self, tid)

    def add_span(
        self, tid: int, name: str, start: float, end: float, args: dict[str, Any], cat: str
    ) -> None:
        """Record a complete span; ``start``/``end`` are ``time.monotonic()`` seconds."""
        self._events.append(
            {
                "name": name,
                "cat": cat,
                "ph": "X",
                "ts": round((start - self._origin) * 1e6, 3),
                "dur": round(max(end - start, 0.0) * 1e6, 3),
                "pid": _PID,
                "tid": tid,
                "args": args,
            }
        )

    def add_instant(self, tid: int, name: str, at: float, args: dict[str, Any]) -> None:
        """Record an instant event at ``at`` (``time.monotonic()`` seconds)."""
        ts = round((at - self._origin) * 1e6, 3)
        self._events.append(
            {"name": name, "ph": "i", "s": "t", "ts": ts, "pid": _PID, "tid": tid, "args": args}
        )

    @property
    def events(self) -> list[dict[str, Any]]:
        """A copy of the events recorded so far."""
        return list(self._events)

    def to_json(self) -> dict[str, Any]:
        """The trace as a trace-event JSON object."""
        return {"traceEvents": self.events, "displayTimeUnit": "ms"}

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the trace file (JSON object format)."""
        Path(path).write_text(json.dumps(self.to_json(), default=str), encoding="utf-8")


class RequestTrace:
    """The spans of one request."""

    def __init__(self, trace: Trace, tid: int) -> None:
        self._trace = trace
        self.tid = tid
        self._streams: dict[str, StreamTally] = {}  # node -> its stream, until its span

    def start(self, name: str, kind: str) -> None:
        """Nothing to open: the span is recorded whole when it ends."""
        return None

    def event(self, name: str, event: str, **attributes: Any) -> None:
        """An instant event on the request's row, named ``node: event``."""
        self._trace.add_instant(self.tid, f"{name}: {event}", time.monotonic(), attributes)

    def stream(self, name: str, runner: str, method: str, start: float) -> _TracedStream:
        """The stream's first chunk as an instant event; its tally goes in the span."""
        tally = self._streams[name] = StreamTally(start)
        return _TracedStream(self, name, tally)

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
        """Record one node's span, with how its runner calls were served."""
        args: dict[str, Any] = {"status": status, **extra}
        args.update(call_args(calls))
        tally = self._streams.pop(name, None)
        if tally is not None:
            args.update(tally.args())
        self._trace.add_span(self.tid, name, start, end, args, kind)


class _TracedStream:
    """A ``RequestTrace``'s ear on one stream."""

    def __init__(self, trace: RequestTrace, name: str, tally: StreamTally) -> None:
        self._trace = trace
        self._name = name
        self._tally = tally

    def chunk(self, at: float) -> None:
        if self._tally.chunk(at):
            self._trace.event(self._name, "first chunk")

    def end(self, at: float, status: str) -> None:
        """Nothing more: the tally is read when the node's span is recorded."""


def call_args(calls: Sequence[CallResult]) -> dict[str, Any]:
    """Span arguments describing runner calls: one call as scalars, a map as lists."""
    if not calls:
        return {}
    if len(calls) == 1:
        call = calls[0]
        return {
            "queue_wait_ms": round(call.queue_wait_s * 1e3, 3),
            "batch_id": call.batch_id,
            "batch_size": call.batch_size,
            "worker": call.worker_id,
        }
    return {
        "queue_wait_ms": round(max(call.queue_wait_s for call in calls) * 1e3, 3),
        "batch_id": sorted({call.batch_id for call in calls}),
        "batch_size": [call.batch_size for call in calls],
        "worker": sorted({call.worker_id for call in calls}),
        "items": len(calls),
    }


def _metadata(name: str, tid: int, value: str) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": _PID, "tid": tid, "args": {"name": value}}
