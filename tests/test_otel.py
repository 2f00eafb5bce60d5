"""OpenTelemetry traces, end to end, into a real OTLP/HTTP receiver: the server
continues the caller's trace, each node is a span, and each worker process
exports a span per batch linked to the node span of every request in it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import orchestrator
from orchestrator.server import create_app
from runners import otel
from runners.errors import TracingError
from tests._otlp_receiver import ReceivedSpan, Receiver, otlp_receiver
from tests._serve_helpers import CLI, DIAMOND, SERVE_GRAPHS, thread_server
from tests.conftest import wait_until

SERVER_KIND = 2  # SPAN_KIND_SERVER in the OTLP protobuf
ERROR_CODE = 2


def test_traces_are_off_unless_the_environment_asks() -> None:
    assert not otel.requested({})
    assert otel.tracer_provider({}, env={}) is None
    assert otel.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert otel.requested({"OTEL_TRACES_EXPORTER": "console"})
    assert not otel.requested({"OTEL_TRACES_EXPORTER": "none"})
    disabled = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}
    assert not otel.requested(disabled)


def test_an_exporter_or_protocol_it_cannot_use_is_an_error_for_users() -> None:
    with pytest.raises(TracingError, match="'zipkin' is not supported"):
        otel.tracer_provider({}, env={"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(TracingError, match="http/json"):
        otel.tracer_provider(
            {}, env={"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
        )


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A receiver, and the environment (inherited by worker processes) exporting to it."""
    with otlp_receiver() as found:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", found.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "graphctl-test")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        yield found


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def _one(spans: list[ReceivedSpan], **attributes: object) -> ReceivedSpan:
    found = [s for s in spans if attributes.items() <= s.attributes.items()]
    assert len(found) == 1, (attributes, spans)
    return found[0]


def test_a_served_request_is_traced_from_caller_to_the_batch_it_rode_in(
    receiver: Receiver, tmp_path: Path
) -> None:
    provider = otel.tracer_provider({"process.pid": os.getpid()})
    assert provider is not None
    graph = orchestrator.load(SERVE_GRAPHS / "traced.yaml")
    app = create_app([graph], tracer_provider=provider)
    first_gate, shared_gate = tmp_path / "first", tmp_path / "shared"
    callers = [_traceparent() for _ in range(4)]

    def post(url: str, index: int) -> int:
        gate = first_gate if index == 0 else shared_gate
        body = {"x": [float(index)], "gate": str(gate)}
        headers = {"traceparent": callers[index][0]}
        return httpx.post(f"{url}/traced", json=body, headers=headers, timeout=30).status_code

    def hold_stats() -> tuple[int, int]:
        stats = graph.stats()["latch"].methods["hold"]
        return stats.in_flight, stats.queue_length

    with thread_server(app) as url, ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(post, url, 0)]
        wait_until(lambda: hold_stats() == (1, 0), what="the first request to hold the worker")
        answers += [pool.submit(post, url, i) for i in (1, 2, 3)]
        wait_until(lambda: hold_stats() == (1, 3), what="three requests queued behind it")
        shared_gate.touch()
        first_gate.touch()
        assert [answer.result(timeout=30) for answer in answers] == [200] * 4
        wait_until(lambda: len(receiver.named("batch ")) == 2, what="two batch spans")
    provider.shutdown()

    servers = [s for s in receiver.spans if s.kind == SERVER_KIND]
    for (_, trace_id, caller_span), index in zip(callers, range(4), strict=True):
        (server,) = [s for s in servers if s.trace_id == trace_id]
        assert server.parent_span_id == caller_span, "the server span continues the caller's"
        assert server.name == "POST /traced"
        nodes = [s for s in receiver.named("node ") if s.trace_id == trace_id]
        assert {s.name for s in nodes} == {"node held", "node summary"}
        assert all(s.parent_span_id == server.span_id for s in nodes)
        held = _one(nodes, **{"graphctl.node": "held"})
        assert held.attributes["graphctl.status"] == "ok"
        assert held.attributes["graphctl.batch_size"] == (1 if index == 0 else 3)
        assert "graphctl.queue_wait_ms" in held.attributes

    node_span = {
        s.trace_id: s.span_id for s in receiver.named("node held") if s.name == "node held"
    }
    alone, shared = sorted(receiver.named("batch "), key=lambda s: len(s.links))
    for batch in (alone, shared):
        assert batch.name == "batch latch.hold"
        assert batch.resource["graphctl.runner"] == "latch"
        assert batch.resource["service.name"] == "graphctl-test"
        assert batch.resource["process.pid"] != os.getpid(), "exported by the worker process"
        assert batch.attributes["graphctl.batch.calls"] == len(batch.links)
    assert [(ln.trace_id, ln.span_id) for ln in alone.links] == [
        (callers[0][1], node_span[callers[0][1]])
    ]
    assert alone.parent_span_id == node_span[callers[0][1]], "a batch of one nests in its trace"
    linked = {(ln.trace_id, ln.span_id) for ln in shared.links}
    assert linked == {(callers[i][1], node_span[callers[i][1]]) for i in (1, 2, 3)}
    assert alone.attributes["graphctl.batch_id"] != shared.attributes["graphctl.batch_id"]
    held_batches = {
        s.trace_id: s.attributes["graphctl.batch_id"] for s in receiver.named("node held")
    }
    assert held_batches[callers[1][1]] == shared.attributes["graphctl.batch_id"]


def test_graphctl_run_exports_a_trace_per_request(receiver: Receiver) -> None:
    inputs = DIAMOND.parent / "diamond.input.json"
    done = subprocess.run(
        [sys.executable, "-c", CLI, "run", str(DIAMOND), "--input", f"@{inputs}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert done.returncode == 0, done.stderr
    wait_until(lambda: bool(receiver.named("batch ")), what="the workers' batch spans")
    (root,) = receiver.named("graph diamond")
    nodes = receiver.named("node ")
    assert nodes and all(s.parent_span_id == root.span_id for s in nodes)
    node_ids = {s.span_id for s in nodes}
    for batch in receiver.named("batch "):
        assert batch.trace_id == root.trace_id
        assert {ln.span_id for ln in batch.links} <= node_ids


def _memory_tracer() -> tuple[Any, Any]:
    """An SDK provider keeping its spans in memory, and the tracer over it."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from orchestrator.running._otel import OtelTracer

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, OtelTracer(provider)


def test_a_retry_is_an_event_and_a_timed_out_node_an_error_status() -> None:
    from orchestrator.errors import DeadlineExceeded
    from tests._executor_helpers import TEST_GRAPHS, Probe, run

    exporter, tracer = _memory_tracer()

    async def main() -> None:
        async with orchestrator.load(TEST_GRAPHS / "retry_after.yaml") as graph:
            with tracer.root(graph.name):
                await graph.run({"probe": Probe(), "retry_after_s": 0.01}, trace=tracer)
        async with orchestrator.load(TEST_GRAPHS / "deadline.yaml") as graph:
            with tracer.root(graph.name), pytest.raises(DeadlineExceeded):
                await graph.run({"items": [1, 2]}, trace=tracer)

    run(main())
    spans = {span.name: span for span in exporter.get_finished_spans()}
    refused = spans["node refused"]
    assert refused.attributes["graphctl.status"] == "ok"
    assert [event.name for event in refused.events] == ["retry"]
    assert refused.events[0].attributes["attempt"] == 2
    assert refused.parent.span_id == spans["graph retry_after"].context.span_id
    naps = spans["node naps"]
    assert naps.attributes["graphctl.status"] == "timed out"
    assert naps.status.status_code.name == "ERROR"


def _stream_spans(receiver: Receiver, status: str) -> tuple[ReceivedSpan, ReceivedSpan]:
    """The node span of the stream that ended with ``status``, and its batch span."""
    node = _one(receiver.named("node generated"), **{"graphctl.status": status})
    (batch,) = [s for s in receiver.named("batch ") if s.parent_span_id == node.span_id]
    return node, batch


def test_a_streams_spans_last_until_its_last_chunk_and_say_how_it_ended(
    receiver: Receiver,
) -> None:
    provider = otel.tracer_provider({"process.pid": os.getpid()})
    assert provider is not None
    app = create_app([orchestrator.load(SERVE_GRAPHS / "streamed.yaml")], tracer_provider=provider)
    sse = {"accept": "text/event-stream"}
    with thread_server(app) as url:
        whole = httpx.post(f"{url}/streamed", json={"n": 5, "step_ms": 60}, timeout=30)
        broken = httpx.post(f"{url}/streamed", json={"n": -1, "step_ms": 1}, timeout=30)
        endless = {"n": 100_000, "step_ms": 10}
        with httpx.stream("POST", f"{url}/streamed", json=endless, headers=sse, timeout=30) as left:
            next(line for line in left.iter_lines() if line.startswith("data: "))
            # and leaves after its first chunk
        wait_until(lambda: len(receiver.named("batch ")) == 3, what="three batch spans")
        wait_until(lambda: len(receiver.named("node generated")) == 3, what="three node spans")
    provider.shutdown()
    assert (whole.status_code, broken.status_code) == (200, 500)

    node, batch = _stream_spans(receiver, "ok")
    assert node.attributes["graphctl.stream.chunks"] == 5
    first_ms = node.attributes["graphctl.stream.first_chunk_ms"]
    node_ms = (node.end_ns - node.start_ns) / 1e6
    assert first_ms >= 60
    assert node_ms - first_ms >= 4 * 60, "the span lasts past the four chunks after the first"
    assert [name for name, _ in node.events] == ["first chunk"]
    assert (batch.end_ns - batch.start_ns) / 1e6 >= 5 * 60, "the batch span covers every step"
    assert (node.status_code, batch.status_code) == (0, 0)

    node, batch = _stream_spans(receiver, "failed")
    assert node.attributes["graphctl.stream.chunks"] == 2
    assert (node.status_code, batch.status_code) == (ERROR_CODE, ERROR_CODE)

    node, batch = _stream_spans(receiver, "cancelled")
    assert node.attributes["graphctl.stream.chunks"] >= 1
    assert batch.status_code == 0, "a batch whose caller left did not fail"
