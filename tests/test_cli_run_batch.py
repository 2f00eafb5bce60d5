"""Many JSON lines through a real graph (function nodes only, so no workers):
outputs in input order whatever the concurrency, a bad line answered in place,
and the latency summary."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import orchestrator
from orchestrator.cli._run_batch import BatchSummary, _OrderedWriter, run_lines
from orchestrator.running import Trace

ROUTING = Path(__file__).resolve().parent.parent / "graphs" / "routing.yaml"


def _numbered(*lines: str) -> Iterator[tuple[int, str]]:
    return iter(enumerate(lines, start=1))


def _run(lines: Iterator[tuple[int, str]], **kwargs: Any) -> tuple[list[Any], BatchSummary]:
    sink = io.StringIO()

    async def main() -> BatchSummary:
        async with orchestrator.load(ROUTING) as graph:
            return await run_lines(graph, lines, sink, **kwargs)

    summary = asyncio.run(main())
    return [json.loads(line) for line in sink.getvalue().splitlines()], summary


@pytest.mark.parametrize("concurrency", [1, 3, 16])
def test_outputs_come_in_input_order(concurrency: int) -> None:
    texts = [f"question {i}?" if i % 2 else f"hello {i}" for i in range(12)]
    lines = (json.dumps({"text": t}) for t in texts)
    outputs, summary = _run(iter(enumerate(lines, start=1)), concurrency=concurrency)
    assert [o["route"] for o in outputs] == [
        "greeting" if i % 2 == 0 else "question" for i in range(12)
    ]
    assert summary.count == 12 and summary.errors == 0
    assert len(summary.latencies_ms) == 12 and summary.elapsed_s > 0


def test_bad_lines_are_answered_in_place_and_counted(capsys: pytest.CaptureFixture[str]) -> None:
    outputs, summary = _run(
        _numbered('{"text": "hi"}', "{oops", "[1]", '{"txt": "typo"}', '{"text": "why?"}'),
        concurrency=2,
    )
    assert outputs[0]["route"] == "greeting" and outputs[4]["route"] == "question"
    assert outputs[1]["line"] == 2 and outputs[1]["error"].startswith("not valid JSON: ")
    assert outputs[2] == {"error": "a line must be a JSON object of inputs", "line": 3}
    assert outputs[3]["line"] == 4 and "text" in outputs[3]["error"]
    assert summary.count == 5 and summary.errors == 3 and len(summary.latencies_ms) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == ["line 2", "line 3", "line 4"]


def test_a_trace_records_every_line() -> None:
    trace = Trace()
    _run(_numbered('{"text": "hi"}', '{"text": "why?"}'), concurrency=2, trace=trace)
    rows = [e for e in trace.events if e["ph"] == "M" and e["name"] == "thread_name"]
    assert len(rows) == 2


def test_no_lines_give_an_empty_summary() -> None:
    outputs, summary = _run(iter(()), concurrency=4)
    assert outputs == [] and summary.count == 0
    assert summary.percentile(50) == 0.0


@pytest.mark.parametrize(("q", "expected"), [(0, 1.0), (50, 2.5), (100, 4.0), (25, 1.75)])
def test_percentiles_interpolate(q: float, expected: float) -> None:
    assert BatchSummary(latencies_ms=[4.0, 1.0, 3.0, 2.0]).percentile(q) == pytest.approx(expected)


def test_the_writer_holds_back_early_results() -> None:
    sink = io.StringIO()
    writer = _OrderedWriter(sink)
    writer.put(2, "c")
    writer.put(1, "b")
    assert sink.getvalue() == ""
    writer.put(0, "a")
    assert sink.getvalue() == "a\nb\nc\n"
    writer.put(3, "d")
    assert sink.getvalue().splitlines() == ["a", "b", "c", "d"]
