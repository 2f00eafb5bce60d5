"""The server's OpenTelemetry traces: FastAPI's native server span per request,
the graph's node spans under it, and its trace id in the request's log fields.

FastAPI (0.165+) makes the server span itself (``FastAPI(telemetry=...)``): it
continues an incoming W3C ``traceparent`` through the propagators
(``OTEL_PROPAGATORS``), follows the HTTP semantic conventions and ends the span
when the response is sent. graphctl gives it its own provider and keeps only
that span: its metrics and logs are off (``/metrics`` and the server log are
graphctl's), and so are its per-operation spans. Health probes and scrapes make
no span. With tracing off, all of it is off: the check per request is one
dictionary lookup, cheaper than FastAPI's default (three provider lookups).
"""

from __future__ import annotations

from collections.abc import Collection, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Receive, Scope, Send

from runners import log_context

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

UNTRACED_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


def telemetry_config(provider: TracerProvider | None) -> TelemetryConfig:
    """FastAPI's telemetry: the server span through ``provider``, or nothing at all."""
    off: TelemetryConfig = {
        "tracing": False,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,
    }
    if provider is None:
        return off
    return {**off, "tracing": True, "tracer_provider": provider, "exclude": _is_probe}


def _is_probe(scope: MutableMapping[str, Any]) -> bool:
    path = str(scope.get("path", ""))
    return path in UNTRACED_PATHS or path.startswith("/readyz/")


class TraceLogFields:
    """Binds the request's ``trace_id`` as a log field (``runners.log_context``) and
    names the server span of a graph route ``POST /{graph}`` (FastAPI's router,
    which would name it, does not see those requests). Installed only when the
    server traces; outermost of graphctl's middleware, so every log line of the
    request carries the trace id."""

    def __init__(self, app: ASGIApp, *, graph_paths: Collection[str]) -> None:
        from opentelemetry import trace

        self.app = app
        self._current_span = trace.get_current_span
        self._graph_paths = frozenset(graph_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = self._current_span()
        context = span.get_span_context()
        if not context.is_valid:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in self._graph_paths:
            span.update_name(f"{scope['method']} {path}")
            span.set_attribute("http.route", path)
        with log_context.bound(trace_id=f"{context.trace_id:032x}"):
            await self.app(scope, receive, send)
