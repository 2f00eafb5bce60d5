"""A closed-loop load generator: N clients, each sending its next request the
moment the previous one returns, for a warm-up and then a measured window.

Closed loop (like ``wrk``) measures what a service sustains at a given number of
callers in flight; an open loop would measure a chosen arrival rate instead.
A client refused with a retry hint (HTTP 503 with ``Retry-After``, which the
HTTP target raises as an error carrying ``wait_before_retry_s``) waits that
long before it sends again, as a well-behaved caller does; refusals are
counted apart from errors.
Only requests that complete inside the measured window count (as ``wrk``
does), so the figures never include warm-up or drain time. Targets sit behind one small protocol
(:class:`Target`): a graph in-process, or a server over HTTP
(:mod:`orchestrator.loadgen._http`). The figures and their maths are
:mod:`orchestrator.loadgen._summary`; the names a caller needs are re-exported.

    async with load("graphs/diamond.yaml") as graph:
        summary = await run_load(GraphTarget(graph, inputs), concurrency=16, duration_s=10)
    print(summary.throughput_rps, summary.p99_ms)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.loadgen._summary import (
    BenchSummary,
    NodeSample,
    NodeSummary,
    error_kind,
    summarize,
    summarize_nodes,
)
from orchestrator.running import Trace

__all__ = [
    "DEFAULT_DRAIN_S",
    "PROGRESS_INTERVAL_S",
    "BenchSummary",
    "GraphTarget",
    "NodeSample",
    "NodeSummary",
    "Progress",
    "RunsGraph",
    "Target",
    "run_load",
    "samples_from_trace",
]

DEFAULT_DRAIN_S = 5.0  # how long a finished run waits for the in-flight requests
PROGRESS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Progress:
    """A running count, reported every ``PROGRESS_INTERVAL_S`` (for a live line)."""

    elapsed_s: float
    total_s: float
    warming_up: bool
    requests: int
    errors: int


class Target(Protocol):
    """Something to send requests to. ``send`` returns the per-node samples it
    knows of (an HTTP target knows none) or raises; ``snapshot`` is called at the
    start and end of the measured window and ``node_stats`` turns both snapshots
    into per-node figures when the samples cannot (``None``: no snapshot)."""

    @property
    def description(self) -> str:
        """What the summary calls the target (``in-process``, a URL)."""

    async def send(self) -> Sequence[NodeSample]:
        """Send one request; the node samples it knows of, or raise."""

    async def snapshot(self) -> Any:
        """State to diff at the window's edges (``None``: nothing)."""

    def node_stats(self, before: Any, after: Any) -> dict[str, NodeSummary] | None:
        """Per-node figures from two snapshots, or ``None``."""


# ---------------------------------------------------------------- the generator


@dataclass
class _Recorder:
    """What the clients of one run record; only ``record`` decides what counts."""

    window_start: float
    window_end: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[NodeSample] = field(default_factory=list)
    refused: int = 0  # answered with a retry hint, in the window
    sent: int = 0
    done: int = 0  # completed in any phase, for the progress line
    failed: int = 0

    def record(
        self, started: float, ended: float, outcome: BaseException | Sequence[NodeSample]
    ) -> None:
        self.done += 1
        if isinstance(outcome, BaseException):
            self.failed += 1
        # A request counts when it completes inside the window, whenever it was
        # sent: requiring it to start there too would drop the slowest requests
        # (those longer than the window's remainder) and understate throughput.
        if not self.window_start <= ended <= self.window_end:
            return
        if isinstance(outcome, BaseException) and retry_after_s(outcome) is not None:
            self.refused += 1
        elif isinstance(outcome, BaseException):
            kind = error_kind(outcome)
            self.errors[kind] = self.errors.get(kind, 0) + 1
        else:
            self.latencies_ms.append((ended - started) * 1000.0)
            self.samples.extend(outcome)


async def _client(target: Target, recorder: _Recorder, max_requests: int | None) -> None:
    """One closed-loop caller: send, wait for the answer, send again."""
    while time.monotonic() < recorder.window_end:
        if max_requests is not None and recorder.sent >= max_requests:
            return
        recorder.sent += 1
        started = time.monotonic()
        outcome: BaseException | Sequence[NodeSample]
        try:
            outcome = await target.send()
        except Exception as error:  # every failure is a figure of the run, by kind
            outcome = error
        ended = time.monotonic()
        recorder.record(started, ended, outcome)
        wait = retry_after_s(outcome) if isinstance(outcome, BaseException) else None
        if wait:  # honour the server's hint, but never past the window
            await asyncio.sleep(min(wait, max(0.0, recorder.window_end - ended)))


def retry_after_s(error: BaseException) -> float | None:
    """The wait a refusal asks for (a server's ``Retry-After``), or ``None``."""
    hint = getattr(error, "wait_before_retry_s", None)
    return float(hint) if isinstance(hint, int | float) else None


async def _report_progress(
    recorder: _Recorder, started: float, on_progress: Callable[[Progress], None]
) -> None:
    total = recorder.window_end - started
    while True:
        now = time.monotonic()
        on_progress(
            Progress(
                elapsed_s=min(now - started, total),
                total_s=total,
                warming_up=now < recorder.window_start,
                requests=recorder.done,
                errors=recorder.failed,
            )
        )
        await asyncio.sleep(PROGRESS_INTERVAL_S)


async def run_load(
    target: Target,
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.0,
    max_requests: int | None = None,
    drain_s: float = DEFAULT_DRAIN_S,
    on_progress: Callable[[Progress], None] | None = None,
) -> BenchSummary:
    """Run ``concurrency`` closed-loop clients against ``target`` and summarize.

    Bounded in time (warm-up + duration + ``drain_s``, then in-flight requests
    are cancelled) and, when given, in the number of requests sent.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if duration_s <= 0 or warmup_s < 0:
        raise ValueError("duration must be > 0 and warm-up >= 0 seconds")
    started = time.monotonic()
    recorder = _Recorder(
        window_start=started + warmup_s, window_end=started + warmup_s + duration_s
    )
    before: Any = None
    async with asyncio.TaskGroup() as group:
        clients = [
            group.create_task(_client(target, recorder, max_requests)) for _ in range(concurrency)
        ]
        reporter = (
            group.create_task(_report_progress(recorder, started, on_progress))
            if on_progress is not None
            else None
        )
        await asyncio.sleep(max(0.0, recorder.window_start - time.monotonic()))
        before = await target.snapshot()
        await _wait_until(recorder.window_end, clients)
        after = await target.snapshot()
        ended = min(time.monotonic(), recorder.window_end)
        await _drain(clients, drain_s)
        if reporter is not None:
            reporter.cancel()
    window = max(1e-9, ended - recorder.window_start)
    nodes = target.node_stats(before, after)
    return summarize(
        target=target.description,
        concurrency=concurrency,
        duration_s=window,
        latencies_ms=recorder.latencies_ms,
        errors=recorder.errors,
        refused=recorder.refused,
        nodes=nodes if nodes is not None else summarize_nodes(recorder.samples),
    )


async def _wait_until(deadline: float, clients: Sequence[asyncio.Task[None]]) -> None:
    """Sleep until ``deadline``, or until every client stopped (request limit)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(_loop_time(deadline)):
            await asyncio.wait(clients)


async def _drain(clients: Sequence[asyncio.Task[None]], drain_s: float) -> None:
    """Let in-flight requests finish (they no longer count), then cancel the rest."""
    pending = [task for task in clients if not task.done()]
    if pending:
        _, still = await asyncio.wait(pending, timeout=drain_s)
        for task in still:
            task.cancel()


def _loop_time(monotonic_deadline: float) -> float:
    """``asyncio`` deadlines are in loop time; ours are ``time.monotonic()``."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


# ---------------------------------------------------------------- in-process target


class RunsGraph(Protocol):
    """The part of a loaded ``Graph`` the in-process target uses."""

    async def run(
        self,
        inputs: Mapping[str, Any],
        *,
        timeout_ms: float | None = ...,
        trace: Trace | None = ...,
    ) -> Any:
        """Run one request through the graph."""


class GraphTarget:
    """Requests straight to a loaded graph, each with its own trace, so every node's
    latency, queue wait and batch come from the spans of counted requests."""

    def __init__(
        self, graph: RunsGraph, inputs: Mapping[str, Any], *, timeout_ms: float | None = None
    ) -> None:
        self._graph = graph
        self._inputs = inputs
        self._timeout_ms = timeout_ms

    @property
    def description(self) -> str:
        return "in-process"

    async def send(self) -> Sequence[NodeSample]:
        trace = Trace()
        await self._graph.run(self._inputs, timeout_ms=self._timeout_ms, trace=trace)
        return samples_from_trace(trace.events)

    async def snapshot(self) -> None:
        return None

    def node_stats(self, before: Any, after: Any) -> dict[str, NodeSummary] | None:
        return None


def samples_from_trace(events: Sequence[Mapping[str, Any]]) -> list[NodeSample]:
    """One sample per node span that ran (skipped nodes made no call)."""
    samples = []
    for event in events:
        args = event.get("args") or {}
        if event.get("ph") != "X" or args.get("status") == "skipped":
            continue
        batch_id, batch_size = _batch_of(args.get("batch_id"), args.get("batch_size"))
        wait = args.get("queue_wait_ms")
        samples.append(
            NodeSample(
                node=str(event["name"]),
                latency_ms=float(event.get("dur", 0.0)) / 1000.0,
                queue_wait_ms=float(wait) if wait is not None else None,
                batch_id=batch_id,
                batch_size=batch_size,
            )
        )
    return samples


def _batch_of(batch_id: Any, batch_size: Any) -> tuple[int | None, int | None]:
    """A span's batch: scalars for one call; for a ``map`` node (lists) its first
    batch and the largest size, since its items were submitted together."""
    if isinstance(batch_id, list):
        batch_id = batch_id[0] if batch_id else None
    if isinstance(batch_size, list):
        batch_size = max(batch_size) if batch_size else None
    if batch_id is None or batch_size is None:
        return None, None
    return int(batch_id), int(batch_size)
