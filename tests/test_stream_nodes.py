"""Per-chunk function nodes (``each_chunk``): over a real ``graphctl serve`` with
worker processes, the transformed chunks of a stream arrive as separate events
while the stream still runs; a plain caller gets their list; a per-chunk function
that raises ends the answer with an error event and stops the worker's item; the
compiler rejects what cannot stream, at the line and column to edit."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orchestrator import GraphFileError, compile_text
from orchestrator.graph import Graph
from tests._serve_helpers import ROOT, SERVE_GRAPHS, ServeProcess, timed_events
from tests.conftest import run

CHUNKED = SERVE_GRAPHS / "chunked.yaml"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with ServeProcess([str(CHUNKED)]) as serve:
        serve.wait_ready()
        yield serve.url


def test_transformed_chunks_arrive_as_events_while_the_stream_runs(server: str) -> None:
    sent = time.monotonic()
    events = timed_events(server, "chunked", {"n": 6, "step_ms": 100})
    assert [kind for kind, _, _ in events] == ["chunk"] * 6 + ["result"]
    assert [data for _, data, _ in events[:6]] == [
        {"output": "shouted", "chunk": f"T{i}!"} for i in range(6)
    ]
    # the chained per-chunk node dropped the odd steps; a plain node got its list
    assert events[-1][1] == {"kept": ["T0!", "T2!", "T4!"], "count": 3}
    first, end = events[0][2], events[-1][2]
    assert end - first >= 0.4  # the first chunk came at least 4 steps before the end
    assert first - sent < end - first  # ... and early: about one step after the request


def test_without_the_header_the_answer_holds_the_transformed_list(server: str) -> None:
    answer = httpx.post(f"{server}/chunked", json={"n": 3, "step_ms": 1}, timeout=30)
    assert answer.status_code == 200
    assert answer.json() == {"shouted": ["T0!", "T1!", "T2!"], "kept": ["T0!", "T2!"], "count": 2}


def test_a_per_chunk_function_that_raises_ends_with_an_error_and_stops_the_stream(
    server: str,
) -> None:
    events = timed_events(server, "chunked", {"n": 100_000, "step_ms": 10, "fail_at": "t3"})
    assert [kind for kind, _, _ in events] == ["chunk"] * 3 + ["error"]
    error = events[-1][1]
    assert error["status"] == 500
    assert error["error"].startswith("node 'shouted' failed: ValueError")  # details: the log
    # one worker: the next request runs at once, so the failed one's item was stopped
    after = timed_events(server, "chunked", {"n": 2, "step_ms": 1})
    assert [kind for kind, _, _ in after] == ["chunk", "chunk", "result"]


SKIPPING = """\
apiVersion: graphctl/v1
kind: Graph
metadata: {name: skipping}
spec:
  timeout_ms: 20000
  runners:
    gen: {runnable: streamer:Streamer, workers: 1}
  inputs:
    n: {type: integer}
  nodes:
    generated: {runner: gen, method: tokens, args: {n: $inputs.n, step_ms: 5}}
    shouted:
      function: streamer:shout
      each_chunk: token
      on_error: skip
      args: {token: $generated, fail_at: t2}
  outputs:
    shouted: $shouted
"""


def test_a_skipped_failure_stops_a_stream_nothing_else_reads() -> None:
    async def main() -> dict[str, Any]:
        plan = compile_text(SKIPPING, "skipping.yaml", base_dir=SERVE_GRAPHS)
        async with Graph(plan) as graph:
            return await graph.run({"n": 100_000})  # 500 s of tokens, unless stopped

    assert run(main(), timeout_s=60) == {"shouted": None}


BROKEN = """\
apiVersion: graphctl/v1
kind: Graph
metadata: {name: broken}
spec:
  runners:
    gen: {runnable: streamer:Streamer}
  inputs:
    n: {type: integer}
  nodes:
    generated: {runner: gen, method: tokens, args: {n: $inputs.n, step_ms: 1}}
    plain: {function: streamer:count, args: {items: [1]}}
    on_plain: {function: streamer:shout, each_chunk: token, args: {token: $plain}}
    two: {function: streamer:shout, each_chunk: token, args: {token: $generated, fail_at: $generated}}
    typo: {function: streamer:shout, each_chunk: tokn, args: {token: $generated}}
    mapped: {function: streamer:shout, each_chunk: token, map: $inputs.n, retries: 2, args: {token: $generated}}
    part: {function: streamer:shout, each_chunk: token, args: {token: $generated.0}}
    ran: {runner: gen, method: tokens, each_chunk: n, args: {n: $inputs.n, step_ms: 1}}
  outputs:
    a: {from: $plain, stream: true}
    b: {from: $on_plain, stream: true}
    c: $typo
"""  # noqa: E501 - one node a line, so each error's column is easy to see


def test_what_cannot_stream_is_an_error_at_its_line_and_column() -> None:
    with pytest.raises(GraphFileError) as caught:
        compile_text(BROKEN, "broken.yaml", base_dir=SERVE_GRAPHS)
    stream = (
        "a whole streaming node ($node): a runner node whose method streams,"
        " or a per-chunk node (each_chunk)"
    )
    argument = "its each_chunk argument 'token' must read"
    assert [str(d) for d in caught.value.errors] == [
        f"broken.yaml:12:75: error: node 'on_plain': {argument} {stream}",
        "broken.yaml:13:91: error: node 'two': reads the stream of 'generated' outside each_chunk:"
        " a per-chunk node reads one stream, through its each_chunk argument",
        "broken.yaml:14:50: error: node 'typo': each_chunk names 'tokn', which is not one of its"
        " args (did you mean 'token'?)",
        "broken.yaml:15:59: error: node 'mapped': `map` does not apply to a per-chunk node:"
        " it already runs once per chunk",
        "broken.yaml:15:75: error: node 'mapped': `retries` does not apply to a per-chunk node:"
        " its stream is read once, as it comes",
        f"broken.yaml:16:71: error: node 'part': {argument} {stream}",
        "broken.yaml:17:40: error: node 'ran': `each_chunk` applies only to function nodes",
        f"broken.yaml:19:15: error: output 'a': must read {stream}",
    ]


def test_the_documented_example_is_the_test_graph() -> None:
    doc = (ROOT / "docs" / "graph-file.md").read_text()
    section = doc.split("### Per-chunk nodes", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    graph = CHUNKED.read_text()
    for line in snippet.splitlines():
        assert line.strip() in graph
