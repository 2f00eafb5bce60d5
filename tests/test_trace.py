"""Chrome trace events: rows per request, span times relative to the trace's
start, how runner calls are summarised, and the file a viewer opens."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.running import Trace
from orchestrator.running._trace import call_args
from runners.types import CallResult


def _call(wait_s: float, batch: int, size: int, worker: int) -> CallResult:
    return CallResult(
        value=None, queue_wait_s=wait_s, batch_id=batch, batch_size=size, worker_id=worker
    )


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([], {}),
        (
            [_call(0.0012345, 7, 4, 1)],
            {"queue_wait_ms": 1.234, "batch_id": 7, "batch_size": 4, "worker": 1},
        ),
        (
            [_call(0.001, 9, 2, 1), _call(0.003, 3, 2, 0), _call(0.002, 9, 5, 1)],
            {
                "queue_wait_ms": 3.0,
                "batch_id": [3, 9],
                "batch_size": [2, 2, 5],
                "worker": [0, 1],
                "items": 3,
            },
        ),
    ],
)
def test_call_args_summarise_one_call_or_a_map(
    calls: list[CallResult], expected: dict[str, Any]
) -> None:
    assert call_args(calls) == expected


def test_each_request_is_a_named_row_and_spans_are_relative_microseconds() -> None:
    trace = Trace(process_name="svc")
    origin = time.monotonic()
    first, second = trace.request("req A"), trace.request()
    first.span("pre", origin + 1.0, origin + 1.5, kind="function")
    second.span(
        "a",
        origin + 2.0,
        origin + 1.0,
        kind="runner",
        status="error",
        calls=[_call(0.01, 4, 2, 0)],
        attempt=2,
    )
    metadata = [e for e in trace.events if e["ph"] == "M"]
    assert metadata == [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "svc"}},
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "req A"}},
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 2, "args": {"name": "request 2"}},
    ]
    pre, a = (e for e in trace.events if e["ph"] == "X")
    assert (pre["name"], pre["cat"], pre["tid"], pre["args"]) == (
        "pre",
        "function",
        1,
        {"status": "ok"},
    )
    assert pre["ts"] == pytest.approx(1e6, abs=5e4) and pre["dur"] == pytest.approx(5e5)
    assert a["dur"] == 0.0  # an end before its start is clamped, never negative
    assert a["args"] == {
        "status": "error",
        "attempt": 2,
        "queue_wait_ms": 10.0,
        "batch_id": 4,
        "batch_size": 2,
        "worker": 0,
    }


def test_events_is_a_copy() -> None:
    trace = Trace()
    trace.events.append({"bogus": True})
    assert len(trace.events) == 1


def test_write_saves_a_trace_event_object(tmp_path: Path) -> None:
    trace = Trace()
    start = time.monotonic()
    trace.request().span("n", start, start + 0.001, kind="function", value=Path("x"))
    path = tmp_path / "trace.json"
    trace.write(path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["displayTimeUnit"] == "ms"
    assert [e["ph"] for e in saved["traceEvents"]] == ["M", "M", "X"]
    assert saved["traceEvents"][-1]["args"]["value"] == "x"  # unknown values as text
