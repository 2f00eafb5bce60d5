"""OpenTelemetry traces from the standard ``OTEL_*`` variables, for the server,
``graphctl run`` and each worker process (a worker configures its own SDK from
the environment it inherits).

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``,
``console``) or an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); ``OTEL_TRACES_EXPORTER=none`` or
``OTEL_SDK_DISABLED=true`` turn it off. Off, no module of the SDK is imported.
The SDK reads the rest itself: ``OTEL_SERVICE_NAME`` (default ``graphctl``),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER[_ARG]``, the OTLP endpoint,
headers, timeout and compression, and ``OTEL_BSP_*`` (the batch processor).

    provider = otel.tracer_provider({"graphctl.runner": "mlp"})  # None when off
    ...
    provider.shutdown()  # exports the spans still buffered
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from runners.call_context import CallContext
from runners.errors import TracingError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, SpanContext
    from opentelemetry.trace import TracerProvider as ApiTracerProvider

DEFAULT_SERVICE_NAME = "graphctl"
PROTOCOLS = ("http/protobuf", "grpc")
INSTALL_HINT = "install the OpenTelemetry SDK with: pip install 'graphctl[otel]'"


def requested(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces (without importing anything)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporter_names(env)
    if exporters:
        return exporters != ["none"]
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def tracer_provider(
    attributes: Mapping[str, str | int], env: Mapping[str, str] = os.environ
) -> TracerProvider | None:
    """A provider exporting as the environment says, with ``attributes`` added to its
    resource; ``None`` when traces are not requested. Raises ``TracingError``."""
    if not requested(env):
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TracingError(f"the OTEL_* variables ask for traces: {INSTALL_HINT}") from None
    exporters = [_exporter(name, env) for name in _exporter_names(env) or ["otlp"]]
    resource = Resource.create(dict(attributes))
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    text = env.get("OTEL_TRACES_EXPORTER", "")
    return [name.strip().lower() for name in text.split(",") if name.strip()]


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter | None:
    if name == "none":
        return None
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise TracingError(
            f"OTEL_TRACES_EXPORTER={name!r} is not supported; use otlp, console or none"
        )
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    try:
        if protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter: SpanExporter = OTLPSpanExporter()
            return exporter
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )

            grpc_exporter: SpanExporter = GrpcExporter()
            return grpc_exporter
    except ImportError:
        raise TracingError(
            f"OTLP over {protocol} needs its exporter package: {INSTALL_HINT}"
            + (" and opentelemetry-exporter-otlp-proto-grpc" if protocol == "grpc" else "")
        ) from None
    raise TracingError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use one of {PROTOCOLS}")


def worker_attributes(runner: str, worker: int) -> dict[str, str | int]:
    """The resource attributes naming a worker process: its runner, id and pid."""
    return {"graphctl.runner": runner, "graphctl.worker.id": worker, "process.pid": os.getpid()}


def host_attributes(runner: str, endpoint: str) -> dict[str, str | int]:
    """The resource attributes naming a worker host (``graphctl worker``): its runner,
    the address it listens on and its pid."""
    return {
        "graphctl.runner": runner,
        "graphctl.worker.endpoint": endpoint,
        "process.pid": os.getpid(),
    }


def parent_of(traceparent: str) -> SpanContext | None:
    """The remote span a W3C ``traceparent`` names, or ``None`` if it is not valid."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def traceparent_of(span: Span) -> str:
    """The W3C ``traceparent`` of ``span``: what a call made inside it carries."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def global_batch_spans(runner: str) -> BatchSpans | None:
    """Batch spans through the process's global provider (``None`` if none is set):
    for a worker that runs in the tracing process itself (``runners.local``)."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return BatchSpans(provider, runner)


class BatchSpans:
    """A worker's span per batch. Its parent is the node span of the batch's first
    call (a batch of one nests in its request's trace); it links to the node span
    of every call, each link naming its request id, so a trace viewer shows which
    requests shared the batch."""

    def __init__(self, provider: ApiTracerProvider, runner: str) -> None:
        self._tracer = provider.get_tracer("graphctl.worker")
        self._runner = runner

    @contextmanager
    def batch(self, batch_id: int, method: str, contexts: Sequence[CallContext]) -> Iterator[None]:
        """Span the block (an exception raised in it marks the span failed)."""
        from opentelemetry import trace

        links, parents = [], []
        for context in contexts:
            parent = parent_of(context["traceparent"]) if "traceparent" in context else None
            if parent is not None:
                parents.append(parent)
                request_id = context.get("request_id")
                link = {"graphctl.request_id": request_id} if request_id else {}
                links.append(trace.Link(parent, link))
        if not parents:  # no call is traced: nothing to link, nothing to record
            yield
            return
        attributes: dict[str, Any] = {
            "graphctl.runner": self._runner,
            "graphctl.method": method,
            "graphctl.batch_id": batch_id,
            "graphctl.batch.calls": len(contexts),
        }
        parent_context = trace.set_span_in_context(trace.NonRecordingSpan(parents[0]))
        with self._tracer.start_as_current_span(
            f"batch {self._runner}.{method}",
            context=parent_context,
            links=links,
            attributes=attributes,
        ):
            yield
