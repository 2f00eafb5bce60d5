"""Server-sent events from ``POST /{graph}``: chunks of a streamed output arrive as
they are made, batched across requests, a disconnect frees the worker, and a
failure mid-stream ends with an error event. Real workers, uvicorn, httpx."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from orchestrator import create_app, load
from tests._serve_helpers import SERVE_GRAPHS, metric_value, thread_server, timed_events


def test_chunks_arrive_as_they_are_made_then_the_result() -> None:
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        events = timed_events(base, "streamed", {"n": 5, "step_ms": 50})
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
                threads.map(
                    lambda i: timed_events(base, "streamed", {"n": 4 + i % 3, "step_ms": 20}),
                    range(16),
                )
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
        # it hangs up after two events; the one worker is then free again
        first = timed_events(base, "streamed", {"n": 100_000, "step_ms": 10}, limit=2)
        after = timed_events(base, "streamed", {"n": 2, "step_ms": 1})
    assert [kind for kind, _, _ in first] == ["chunk", "chunk"]
    assert [kind for kind, _, _ in after] == ["chunk", "chunk", "result"]


def test_a_failure_mid_stream_ends_with_an_error_event() -> None:
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        events = timed_events(base, "streamed", {"n": -1, "step_ms": 1})
    assert [kind for kind, _, _ in events] == ["chunk", "chunk", "error"]
    error = events[-1][1]
    assert error["status"] == 500
    assert "raised RuntimeError" in error["error"]


def _ended_by_deadline(base: str) -> tuple[float, float]:
    """Streams that timed out, and items still in flight in the worker."""
    labels = {"graph": "streamed", "method": "tokens"}
    durations = "graphctl_runner_stream_duration_seconds_count"
    return (
        metric_value(base, durations, outcome="timed_out", **labels),
        metric_value(base, "graphctl_runner_in_flight", **labels),
    )


def test_a_request_deadline_ends_a_running_stream_with_a_504_event() -> None:
    endless = {"n": 100_000, "step_ms": 10}
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        events = timed_events(base, "streamed", endless, timeout_ms=300)
        # one worker: it answers only if its item was stopped
        after = timed_events(base, "streamed", {"n": 2, "step_ms": 1})
        ended = _ended_by_deadline(base)
    kinds = [kind for kind, _, _ in events]
    assert kinds[0] == "chunk" and kinds[-1] == "error"
    assert set(kinds[:-1]) == {"chunk"}
    assert events[-1][1]["status"] == 504
    assert "deadline of 300 ms passed" in events[-1][1]["error"]
    assert [kind for kind, _, _ in after] == ["chunk", "chunk", "result"]
    assert ended == (1, 0)


def test_a_request_deadline_ends_a_collected_stream_with_504() -> None:
    endless = {"n": 100_000, "step_ms": 10}
    with thread_server(create_app([load(SERVE_GRAPHS / "streamed.yaml")])) as base:
        late = httpx.post(
            f"{base}/streamed", json=endless, headers={"x-request-timeout-ms": "300"}, timeout=30
        )
        after = httpx.post(f"{base}/streamed", json={"n": 2, "step_ms": 1}, timeout=30)
        ended = _ended_by_deadline(base)
    assert late.status_code == 504
    assert after.json() == {"tokens": ["t0", "t1"], "n": 2}
    assert ended == (1, 0)


def test_a_node_timeout_ends_a_running_stream_and_frees_the_worker() -> None:
    graph = load(SERVE_GRAPHS / "streamed_limited.yaml")
    with thread_server(create_app([graph])) as base:
        events = timed_events(base, "streamed_limited", {"n": 100_000, "step_ms": 10})
        after = timed_events(base, "streamed_limited", {"n": 2, "step_ms": 1})
    assert [kind for kind, _, _ in events][-1] == "error"
    assert len(events) > 2  # chunks came before the node's timeout_ms
    error = events[-1][1]
    assert error["status"] == 503  # a call timeout: the client may retry
    assert "timeout_ms=300" in error["error"]
    assert [kind for kind, _, _ in after] == ["chunk", "chunk", "result"]
