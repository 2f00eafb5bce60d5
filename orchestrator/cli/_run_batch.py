"""Many requests from numbered JSON lines, run concurrently, written in input order.

A fixed number of runner tasks (``concurrency``) pull lines from one shared
iterator, so memory stays bounded by the lines in flight plus those waiting for
an earlier line to finish. A failing line never stops the others.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator._inputs import to_jsonable
from orchestrator._stats import percentiles
from orchestrator.errors import GraphctlError
from orchestrator.graph import Graph
from orchestrator.running import Tracer
from runners.errors import RunnerError

RequestSpan = Callable[[str], AbstractContextManager[None]]  # graph name -> the request's span


@dataclass
class BatchSummary:
    """What a run over many lines did: counts, wall time and per-request latencies."""

    count: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of request latency in ms, 0 if none."""
        (found,) = percentiles(self.latencies_ms, (q,))
        return found or 0.0


class _OrderedWriter:
    """Writes results in line order, holding back those that finish early."""

    def __init__(self, sink: IO[str]) -> None:
        self._sink = sink
        self._pending: dict[int, str] = {}
        self._next = 0

    def put(self, index: int, text: str) -> None:
        self._pending[index] = text
        while self._next in self._pending:
            self._sink.write(self._pending.pop(self._next) + "\n")
            self._next += 1
        self._sink.flush()


async def run_lines(
    graph: Graph,
    lines: Iterator[tuple[int, str]],
    sink: IO[str],
    *,
    concurrency: int,
    timeout_ms: float | None = None,
    trace: Tracer | None = None,
    request_span: RequestSpan | None = None,
    progress: bool = False,
    total: int | None = None,
) -> BatchSummary:
    """Run every ``(line_number, json_text)`` through ``graph``; one output line each."""
    summary = BatchSummary()
    writer = _OrderedWriter(sink)
    numbered = enumerate(lines)  # shared by the runners: each line is taken once
    bar = _progress() if progress else None
    task_id = bar.add_task("requests", total=total) if bar is not None else None

    async def runner() -> None:
        for index, (line_number, text) in numbered:
            with request_span(graph.name) if request_span is not None else nullcontext():
                result = await _one_line(graph, line_number, text, summary, timeout_ms, trace)
            writer.put(index, result)
            if bar is not None and task_id is not None:
                bar.advance(task_id)

    start = time.perf_counter()
    if bar is not None:
        bar.start()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(runner())
    finally:
        if bar is not None:
            bar.stop()
    summary.elapsed_s = time.perf_counter() - start
    return summary


async def _one_line(
    graph: Graph,
    line_number: int,
    text: str,
    summary: BatchSummary,
    timeout_ms: float | None,
    trace: Tracer | None,
) -> str:
    """The output line of one input line: the outputs, or ``{"error", "line"}``."""
    summary.count += 1
    start = time.perf_counter()
    try:
        inputs = json.loads(text)
        if not isinstance(inputs, dict):
            raise GraphctlError("a line must be a JSON object of inputs")
        outputs = await graph.run(inputs, timeout_ms=timeout_ms, trace=trace)
        result = json.dumps(to_jsonable(outputs))
    except (GraphctlError, RunnerError, json.JSONDecodeError, ValueError, TypeError) as error:
        summary.errors += 1
        message = (
            f"not valid JSON: {error}" if isinstance(error, json.JSONDecodeError) else str(error)
        )
        print(f"line {line_number}: error: {message}", file=sys.stderr)
        return json.dumps({"error": message, "line": line_number})
    summary.latencies_ms.append((time.perf_counter() - start) * 1000)
    return result


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    )
