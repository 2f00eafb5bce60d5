"""Stream metrics on a live server's ``/metrics``: time to first chunk, chunks,
gaps, durations by outcome and the active gauge, recorded once for server-sent
events, JSON answers and ``Graph.run``; a stream that ends in any way leaves the
active gauge. Real workers, uvicorn, httpx."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from orchestrator import create_app, load
from orchestrator.running import Trace
from orchestrator.running._trace import Tee
from orchestrator.server._metrics import Metrics
from tests._serve_helpers import ROOT, SERVE_GRAPHS, SSE, metric_value, sse_events, thread_server
from tests.conftest import run, wait_until

FIRST = "graphctl_runner_stream_first_chunk_duration_seconds_count"
CHUNKS = "graphctl_runner_stream_chunks_total"
GAPS = "graphctl_runner_stream_chunk_gap_duration_seconds_count"
DURATIONS = "graphctl_runner_stream_duration_seconds_count"
ACTIVE = "graphctl_runner_active_streams"


def _sse(
    base: str,
    body: dict[str, Any],
    first: threading.Event | None = None,
    leave: threading.Event | None = None,
) -> list[tuple[str, Any]]:
    """The (kind, data) events of one answer. With ``first`` and ``leave``: set
    ``first`` at the first chunk, then disconnect once ``leave`` is set."""
    found: list[tuple[str, Any]] = []
    with httpx.stream("POST", f"{base}/streamed", json=body, headers=SSE, timeout=30) as answer:
        for event in sse_events(answer):
            found.append(event)
            if first is not None and leave is not None:
                first.set()
                assert leave.wait(timeout=30)
                break
    return found


def _figure(base: str, sample: str, **labels: str) -> float:
    return metric_value(base, sample, graph="streamed", runner="gen", method="tokens", **labels)


def test_concurrent_streams_and_a_collected_one_are_counted_once_each() -> None:
    lengths = [3, 4, 5, 6, 7, 8]
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        with ThreadPoolExecutor(len(lengths)) as threads:
            answers = list(threads.map(lambda n: _sse(base, {"n": n, "step_ms": 5}), lengths))
        collected = httpx.post(f"{base}/streamed", json={"n": 2, "step_ms": 1}, timeout=30)
        text = httpx.get(f"{base}/metrics", timeout=10).text
        figures = {name: _figure(base, name) for name in (FIRST, CHUNKS, GAPS, DURATIONS, ACTIVE)}
        ok = _figure(base, DURATIONS, outcome="ok")
    assert [sum(kind == "chunk" for kind, _ in a) for a in answers] == lengths
    assert collected.json()["tokens"] == ["t0", "t1"]
    streams, chunks = len(lengths) + 1, sum(lengths) + 2
    assert figures == {
        FIRST: streams,
        CHUNKS: chunks,
        GAPS: chunks - streams,  # a stream of k chunks has k - 1 gaps
        DURATIONS: streams,
        ACTIVE: 0,
    }
    assert ok == streams
    assert len(_documented_families()) == 5
    for name in {*_documented_families(), *_queried_series()}:
        assert f"\n{name}{{" in text or f"\n{name}_" in text, name  # a sample of it


def test_running_streams_are_active_until_their_clients_leave() -> None:
    count = 3
    firsts = [threading.Event() for _ in range(count)]
    leave = threading.Event()
    body = {"n": 100_000, "step_ms": 10}
    # One worker each: a running streaming batch takes no new item.
    graph = load(SERVE_GRAPHS / "streamed.yaml", sets=[f"runners.gen.workers={count}"])
    with thread_server(create_app([graph])) as base:
        with ThreadPoolExecutor(count) as threads:
            held = [threads.submit(_sse, base, body, first, leave) for first in firsts]
            try:
                assert all(first.wait(timeout=30) for first in firsts)
                active = _figure(base, ACTIVE)
                started = _figure(base, FIRST)
            finally:
                leave.set()
            assert all(len(answer.result(timeout=30)) == 1 for answer in held)
        wait_until(lambda: _figure(base, ACTIVE) == 0, timeout_s=30, what="no active stream")
        cancelled = _figure(base, DURATIONS, outcome="cancelled")
        wait_until(lambda: _figure(base, "graphctl_runner_in_flight") == 0, what="a free worker")
    assert (active, started, cancelled) == (count, count, count)


def test_a_stream_that_fails_leaves_the_active_gauge() -> None:
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        events = _sse(base, {"n": -1, "step_ms": 1})
        figures = (
            _figure(base, ACTIVE),
            _figure(base, CHUNKS),
            _figure(base, DURATIONS, outcome="failed"),
        )
    assert [kind for kind, _ in events] == ["chunk", "chunk", "error"]
    assert figures == (0, 2, 1)


def test_graph_run_with_the_servers_tracer_records_the_same_figures() -> None:
    metrics, chrome = Metrics(dict), Trace()
    heard: list[Any] = []

    async def main() -> dict[str, Any]:
        async with load(SERVE_GRAPHS / "streamed.yaml") as graph:
            tracer = Tee(metrics.node_timer("streamed"), chrome)
            return await graph.run(
                {"n": 4, "step_ms": 20}, trace=tracer, on_chunk=lambda _, c: heard.append(c)
            )

    outputs = run(main())
    text = metrics.render().decode()
    assert outputs["tokens"] == heard == ["t0", "t1", "t2", "t3"]
    labels = 'graph="streamed",method="tokens",runner="gen"'
    assert f"{CHUNKS}{{{labels}}} 4.0" in text
    assert f"{FIRST}{{{labels}}} 1.0" in text
    assert f"{ACTIVE}{{{labels}}} 0.0" in text
    (span,) = [e for e in chrome.events if e.get("ph") == "X" and e["name"] == "generated"]
    assert span["args"]["chunks"] == 4
    assert 20 <= span["args"]["first_chunk_ms"] < span["dur"] / 1e3
    assert [e["name"] for e in chrome.events if e.get("ph") == "i"] == ["generated: first chunk"]


class _SpansOnly:
    """A user's tracer written before streams: its sinks have no ``stream``."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str]] = []

    def request(self, label: str | None = None) -> _SpansOnly:
        return self

    def start(self, name: str, kind: str) -> None:
        return None

    def event(self, name: str, event: str, **attributes: Any) -> None:
        pass

    def span(self, name: str, start: float, end: float, *, kind: str, **extra: Any) -> None:
        self.spans.append((name, extra.get("status", "ok")))


def test_a_tracer_whose_sinks_do_not_hear_streams_still_traces_a_streaming_graph() -> None:
    tracer = _SpansOnly()

    async def main() -> dict[str, Any]:
        async with load(SERVE_GRAPHS / "streamed.yaml") as graph:
            return await graph.run({"n": 3, "step_ms": 0}, trace=tracer)

    assert run(main())["tokens"] == ["t0", "t1", "t2"]
    assert ("generated", "ok") in tracer.spans


def test_a_tee_with_a_sink_that_does_not_hear_streams_still_gives_the_others_the_stream() -> None:
    spans_only, chrome = _SpansOnly(), Trace()

    async def main() -> dict[str, Any]:
        async with load(SERVE_GRAPHS / "streamed.yaml") as graph:
            return await graph.run({"n": 3, "step_ms": 0}, trace=Tee(spans_only, chrome))

    assert run(main())["tokens"] == ["t0", "t1", "t2"]
    assert ("generated", "ok") in spans_only.spans
    (span,) = [e for e in chrome.events if e.get("ph") == "X" and e["name"] == "generated"]
    assert span["args"]["chunks"] == 3


def _doc() -> str:
    return (ROOT / "docs" / "observability.md").read_text(encoding="utf-8")


def _documented_families() -> list[str]:
    """The stream families of the metrics table."""
    return re.findall(r"^\| `(graphctl_runner_\w*stream\w*)`", _doc(), re.MULTILINE)


def _queried_series() -> set[str]:
    """The series the doc's stream queries read."""
    section = _doc().split("\n### Streams\n", 1)[1].split("\n## ", 1)[0]
    (queries,) = re.findall(r"^```text\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    return set(re.findall(r"graphctl_\w+", queries))
