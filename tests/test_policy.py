"""A node's retries over a real ``graphctl serve``: a streaming node is retried
while it has sent nothing, and never once its chunks went out (its client
already has them: a second run would send them again)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._serve_helpers import SERVE_GRAPHS, SSE, ServeProcess, sse_events

GRAPHS = ("retried_crash", "retried_timeout", "retried_slow")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with ServeProcess([str(SERVE_GRAPHS / f"{name}.yaml") for name in GRAPHS]) as serve:
        serve.wait_ready()
        yield serve.url


def _events(base: str, graph: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(kind, data) of each server-sent event of one request."""
    with httpx.stream("POST", f"{base}/{graph}", json=body, headers=SSE, timeout=30) as answer:
        return list(sse_events(answer))


def _chunks(events: list[tuple[str, Any]]) -> list[Any]:
    return [data["chunk"] for kind, data in events if kind == "chunk"]


def test_a_stream_whose_worker_died_after_its_chunks_is_not_run_again(server: str) -> None:
    events = _events(server, "retried_crash", {"n": 10, "die_at": 3})
    assert [kind for kind, _ in events] == ["chunk"] * 3 + ["error"]
    assert _chunks(events) == ["t0", "t1", "t2"]
    assert "Traceback" not in events[-1][1]["error"]


def test_a_stream_past_its_timeout_after_its_chunks_is_not_run_again(server: str) -> None:
    events = _events(server, "retried_timeout", {"n": 1000, "step_ms": 20})
    chunks = _chunks(events)
    assert events[-1][0] == "error" and "timeout_ms=300" in events[-1][1]["error"]
    assert chunks and chunks == [f"t{i}" for i in range(len(chunks))]  # each once, in order


def test_a_stream_that_sent_nothing_is_retried(server: str) -> None:
    """The first attempt times out before its first chunk; the second streams."""
    events = _events(server, "retried_slow", {"n": 3, "first_ms": 500})
    assert [kind for kind, _ in events] == ["chunk"] * 3 + ["result"]
    assert _chunks(events) == ["t0", "t1", "t2"]
