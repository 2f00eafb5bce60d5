"""OpenTelemetry as a ``Tracer``: a span per node, child of the span current when
the request starts (the server's HTTP span, or the request span ``root`` opens
for ``graphctl run``).

A node span opens when the node starts, so the runner calls it makes carry its
``traceparent`` to the workers (``runners.call_context``), whose batch spans link
to it. It ends with the node: status ``ok``, ``skipped``, ``error handled``,
``failed``, ``cancelled`` or ``timed out`` in ``graphctl.status`` (the last three
also as the span's error status), retries as ``retry`` events, and for runner
calls the queue wait, batch id and size and worker; a streaming call adds its
chunk count and time to first chunk (``OtelStream``). Only built when the ``OTEL_*``
variables ask for traces: the SDK is imported by ``runners.otel`` then, never before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode, TracerProvider

from orchestrator.running._trace import StreamTally, call_args
from runners.otel import traceparent_of
from runners.types import CallResult

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Tracer as OtelApiTracer

ERROR_STATUSES = frozenset({"failed", "cancelled", "timed out"})
SCOPE = "graphctl"


class OtelTracer:
    """Gives each request an ``OtelRequest`` exporting through ``provider``."""

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer(SCOPE)

    def request(self, label: str | None = None) -> OtelRequest:
        """The sink of one request whose nodes are children of the current span."""
        return OtelRequest(self._tracer, otel_context.get_current(), label)

    @contextmanager
    def root(self, graph: str) -> Iterator[None]:
        """A span for one request run outside a server (``graphctl run``), made current
        so the request's node spans are its children."""
        with self._tracer.start_as_current_span(
            f"graph {graph}", attributes={"graphctl.graph": graph}
        ):
            yield


class OtelRequest:
    """The open node spans of one request, by node name (unique in a request)."""

    def __init__(self, tracer: OtelApiTracer, parent: Context, graph: str | None) -> None:
        self._tracer = tracer
        self._parent = parent
        self._graph = graph
        self._open: dict[str, Span] = {}

    def start(self, name: str, kind: str) -> str:
        attributes = {"graphctl.node": name, "graphctl.node.kind": kind}
        if self._graph is not None:
            attributes["graphctl.graph"] = self._graph
        span = self._tracer.start_span(f"node {name}", context=self._parent, attributes=attributes)
        self._open[name] = span
        return traceparent_of(span)

    def event(self, name: str, event: str, **attributes: Any) -> None:
        span = self._open.get(name)
        if span is not None:
            span.add_event(event, {key: _attribute(value) for key, value in attributes.items()})

    def stream(self, name: str, runner: str, method: str, start: float) -> OtelStream | None:
        span = self._open.get(name)
        return OtelStream(span, start) if span is not None else None

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
        span = self._open.pop(name, None)
        if span is None:
            return
        span.set_attribute("graphctl.status", status)
        for key, value in call_args(calls).items():
            span.set_attribute(f"graphctl.{key}", _attribute(value))
        for key, value in extra.items():
            span.set_attribute(f"graphctl.{key}", _attribute(value))
        if status in ERROR_STATUSES:
            span.set_status(Status(StatusCode.ERROR, str(extra.get("error", status))))
        span.end()


def _attribute(value: Any) -> Any:
    """A value OpenTelemetry accepts as an attribute: primitives and lists of them."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | bool | int | float) for v in value
    ):
        return list(value)
    return str(value)


class OtelStream:
    """A streaming call on its node span: a ``first chunk`` event when it comes, and
    ``graphctl.stream.chunks`` and ``graphctl.stream.first_chunk_ms`` when it ends
    (the node span itself ends with the node, after the last chunk)."""

    def __init__(self, span: Span, start: float) -> None:
        self._span = span
        self._tally = StreamTally(start)

    def chunk(self, at: float) -> None:
        if self._tally.chunk(at):
            self._span.add_event("first chunk")

    def end(self, at: float, status: str) -> None:
        for key, value in self._tally.args().items():
            self._span.set_attribute(f"graphctl.stream.{key}", value)
