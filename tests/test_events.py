"""Server-sent events from ``POST /{graph}``: chunks of a streamed output arrive as
they are made, batched across requests, a disconnect frees the worker, and a
failure mid-stream ends with an error event. Real workers, uvicorn, httpx."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from orchestrator import create_app, load
from tests._serve_helpers import SERVE_GRAPHS, metric_value, thread_server

SSE = {"accept": "text/event-stream"}


def _events(
    base: str, body: dict[str, Any], limit: int | None = None
) -> list[tuple[str, Any, float]]:
    """(kind, data, arrival time) of each event; stop reading after ``limit`` events."""
    found: list[tuple[str, Any, float]] = []
    with httpx.stream("POST", f"{base}/streamed", json=body, headers=SSE, timeout=30) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in answer.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                found.append((kind, json.loads(line[len("data: ") :]), time.monotonic()))
                if limit is not None and len(found) >= limit:
                    break
    return found


def test_chunks_arrive_as_they_are_made_then_the_result() -> None:
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        events = _events(base, {"n": 5, "step_ms": 50})
        plain = httpx.post(f"{base}/streamed", json={"n": 3, "step_ms": 1}, timeout=30)
    kinds = [kind for kind, _, _ in events]
    assert kinds == ["chunk"] * 5 + ["result"]
    assert [data for _, data, _ in events[:5]] == [
        {"output": "tokens", "chunk": f"t{i}"} for i in range(5)
    ]
    assert events[-1][1] == {"n": 5}
    first, last = events[0][2], events[-1][2]
    assert last - first >= 0.15  # the first chunk came at least 3 steps before the end
    assert plain.json() == {"tokens": ["t0", "t1", "t2"], "n": 3}  # no Accept: collected


def test_concurrent_streams_share_batches() -> None:
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        with ThreadPoolExecutor(16) as threads:
            answers = list(
                threads.map(lambda i: _events(base, {"n": 4 + i % 3, "step_ms": 20}), range(16))
            )
        batches = metric_value(base, "graphctl_runner_batch_size_count", method="tokens")
        items = metric_value(base, "graphctl_runner_batch_size_sum", method="tokens")
    for i, events in enumerate(answers):
        chunks = [data["chunk"] for kind, data, _ in events if kind == "chunk"]
        assert chunks == [f"t{k}" for k in range(4 + i % 3)]
        assert events[-1][0] == "result"
    assert items == 16
    assert items / batches > 1


def test_a_client_that_disconnects_frees_the_worker() -> None:
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        first = _events(base, {"n": 100_000, "step_ms": 10}, limit=2)  # then it hangs up
        after = _events(base, {"n": 2, "step_ms": 1})  # one worker: free again
    assert [kind for kind, _, _ in first] == ["chunk", "chunk"]
    assert [kind for kind, _, _ in after] == ["chunk", "chunk", "result"]


def test_a_failure_mid_stream_ends_with_an_error_event() -> None:
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        events = _events(base, {"n": -1, "step_ms": 1})
    assert [kind for kind, _, _ in events] == ["chunk", "chunk", "error"]
    error = events[-1][1]
    assert error["status"] == 500
    assert "raised RuntimeError" in error["error"]
