"""Streamed answers: the ``graphs/textgen.yaml`` language model served by ``graphctl
serve``, 64 concurrent server-sent-event streams against the same model taken one
stream at a time (the baseline, same server, same run).

    python -m bench.streaming

Every step of the model costs ``STEP_MS`` whatever the batch, as the forward pass
of a real model on an accelerator roughly does, so the figures show what sharing
one generation loop between streams buys: aggregate tokens per second, while each
stream keeps near one token per step. The model takes joins (continuous
batching): a stream that arrives while a batch runs joins it at its next step,
so time to first token is mostly about a step, not the rest of the running
batch. Its rare tail is a batch that took its 16 x max_batch_size items in all
(``runners.joining.JOIN_LIMIT``): later streams wait for it to drain.
Each client is a closed loop: its next stream starts when the last ends.
Each point has a server of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from bench._common import REPO_DIR, duration_s, ratio, rounded, warmup_s, write_result
from orchestrator.loadgen import HTTPTarget, NodeRoute, ServeProcess

TEXTGEN = REPO_DIR / "graphs" / "textgen.yaml"
STEP_MS = 10.0
CONCURRENCY = 64
TOKENS = (32, 48, 64)  # max_tokens of successive streams: items end at different steps
PROMPTS = ("The old keeper", "In the winter", "Every evening", "The children")
SSE = {"accept": "text/event-stream"}
DEFAULT_DURATION_S = 5.0  # a stream lasts up to 64 steps: a window holds about eight
DRAIN_S = 60.0  # streams still running at the end of a point finish within this


@dataclass(frozen=True)
class Stream:
    """One measured stream, times in seconds."""

    first_token_s: float  # from the request to its first chunk
    tokens: int
    tokens_per_s: float | None  # after the first chunk, as its client saw them


@dataclass
class Point:
    """What one concurrency level measured."""

    concurrency: int
    seconds: float
    streams: list[Stream] = field(default_factory=list)
    tokens_in_window: int = 0  # chunks that arrived inside the measured window
    errors: int = 0
    running: float | None = None  # streams in the generation loop, mean of the window's ends

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_in_window / self.seconds

    def first_token_ms(self, q: float) -> float | None:
        times = [s.first_token_s for s in self.streams]
        return float(np.percentile(times, q)) * 1000 if times else None

    @property
    def stream_tokens_per_s(self) -> float | None:
        rates = [s.tokens_per_s for s in self.streams if s.tokens_per_s is not None]
        return float(np.median(rates)) if rates else None


def request_body(number: int) -> dict[str, Any]:
    """The ``number``-th stream's inputs (a fixed sequence: every run asks the same)."""
    return {
        "prompt": PROMPTS[number % len(PROMPTS)],
        "max_tokens": TOKENS[number % len(TOKENS)],
        "seed": number,
        "step_ms": STEP_MS,
    }


async def one_stream(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], window: tuple[float, float]
) -> tuple[Stream | None, int]:
    """Read one SSE answer: the stream (``None`` when it failed) and how many of its
    chunks arrived inside ``window``."""
    sent = time.monotonic()
    arrivals: list[float] = []
    ended_well = False
    try:
        async with client.stream("POST", url, json=body, headers=SSE) as answer:
            async for line in answer.aiter_lines():
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                    if kind == "chunk":
                        arrivals.append(time.monotonic())
                    ended_well = kind == "result" and answer.status_code == 200
    except httpx.HTTPError:
        ended_well = False
    in_window = sum(window[0] <= t < window[1] for t in arrivals)
    if not ended_well or not arrivals:
        return None, in_window
    span = arrivals[-1] - arrivals[0]
    rate = (len(arrivals) - 1) / span if len(arrivals) > 1 and span > 0 else None
    return Stream(arrivals[0] - sent, len(arrivals), rate), in_window


def _running_streams(snapshots: list[Any]) -> float | None:
    """The streams in the running batch, from the active-streams gauge at the
    window's start and end (a batch taking joins never ends inside the window,
    so a per-batch mean has no batch to average)."""
    counts = [
        sum(s.value for s in snapshot if s.name == "graphctl_runner_active_streams")
        for snapshot in snapshots
    ]
    return sum(counts) / len(counts) if counts else None


async def closed_loop(url: str, concurrency: int, metrics: HTTPTarget) -> Point:
    """``concurrency`` clients streaming back to back; streams started inside the
    measured window count, their chunks count while the window lasts."""
    start = time.monotonic() + warmup_s()
    end = start + duration_s(DEFAULT_DURATION_S)
    point = Point(concurrency, end - start)
    numbers = itertools.count()
    snapshots: list[Any] = []

    async def client_loop(client: httpx.AsyncClient) -> None:
        while (sent := time.monotonic()) < end:
            stream, in_window = await one_stream(
                client, url, request_body(next(numbers)), (start, end)
            )
            point.tokens_in_window += in_window
            if sent >= start:
                if stream is None:
                    point.errors += 1
                else:
                    point.streams.append(stream)

    async def metric_marks() -> None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        snapshots.append(await metrics.snapshot())
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        snapshots.append(await metrics.snapshot())

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(timeout=DRAIN_S, limits=limits, trust_env=False) as client,
        asyncio.timeout(end - time.monotonic() + DRAIN_S),
        asyncio.TaskGroup() as group,
    ):
        group.create_task(metric_marks())
        for _ in range(concurrency):
            group.create_task(client_loop(client))
    point.running = _running_streams(snapshots)
    return point


def _row(name: str, point: Point, base: Point) -> list[Any]:
    return [
        name,
        len(point.streams),
        point.errors,
        rounded(point.first_token_ms(50), 1),
        rounded(point.first_token_ms(99), 1),
        round(point.tokens_per_s, 1),
        rounded(point.stream_tokens_per_s, 1),
        rounded(point.running, 1),
        rounded(ratio(point.tokens_per_s, base.tokens_per_s)),
    ]


async def measure(concurrency: int) -> Point:
    """One point on a fresh server: what the batcher learnt under one load (its
    batch cost model) never colours the other point."""
    async with (
        ServeProcess(TEXTGEN, extra_args=["--max-inflight", "4096"]) as server,
        HTTPTarget(
            server.url, "textgen", {}, {"generated": NodeRoute("lm", "generate")}
        ) as metrics,
    ):
        return await closed_loop(f"{server.url}/textgen", concurrency, metrics)


def main() -> None:
    alone = asyncio.run(measure(1))
    many = asyncio.run(measure(CONCURRENCY))
    headers: Sequence[str] = (
        "point",
        "streams",
        "errors",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "tokens/s",
        "tokens/s per stream",
        "running streams",
        "x one at a time",
    )
    write_result(
        "streaming",
        title="Streamed tokens: concurrent SSE streams sharing batches vs one stream at a time",
        baseline="the same graph and model served alike, one stream at a time (concurrency 1)",
        headers=headers,
        rows=[
            _row(f"textgen SSE c={CONCURRENCY}", many, alone),
            _row("textgen SSE c=1", alone, alone),
        ],
        notes=[
            f"model: graphs/textgen.yaml, {STEP_MS:g} ms per step whatever the batch, "
            f"max_tokens cycling {', '.join(map(str, TOKENS))}; one worker, max_batch_size 64",
            "tokens/s: chunks received by all clients inside the measured window; "
            "per stream: the median of each stream's rate after its first chunk",
            "a new stream joins the running batch at its next step (joins=True): "
            "TTFT is its queue wait plus about one step; its tail is a batch that took "
            "16 x max_batch_size items in all (the join limit) draining before the next starts",
            "clients: httpx async streams in one process, on the same cores as the server",
        ],
        extra={
            "duration_s": duration_s(DEFAULT_DURATION_S),
            "step_ms": STEP_MS,
            "concurrency": CONCURRENCY,
            "body": json.dumps(request_body(0)),
        },
    )


if __name__ == "__main__":
    main()
