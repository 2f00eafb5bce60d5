"""What a pool knows of its workers' health: recent batch times per method, from
which a stuck worker is told apart from a slow batch in seconds, not minutes, and
the one hang timer per busy worker that stops a worker holding a batch too long."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field

from runners.batcher import Flight
from runners.config import SupervisionConfig
from runners.transport import Worker

logger = logging.getLogger("runners.pool")

RECENT_BATCHES = 256  # the p99 is taken over this many recent batches
REFRESH_EVERY = 32  # batches between two recomputations of the p99


@dataclass(eq=False)
class RecentBatchTimes:
    """The run times of a method's recent batches and their p99, recomputed every
    ``REFRESH_EVERY`` batches (so recording one costs an append)."""

    times: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_BATCHES))
    count: int = 0
    p99_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.times.append(seconds)
        self.count += 1
        if self.count % REFRESH_EVERY == 1 or self.count <= REFRESH_EVERY:
            self.p99_s = p99(self.times)


def p99(values: deque[float]) -> float:
    """The 99th percentile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass(eq=False)
class WorkerState:
    """The pool's side of one worker: the batch it holds and the timer bounding it."""

    worker: Worker
    flight: Flight | None = None
    hang_timer: asyncio.TimerHandle | None = None
    hung: bool = False  # killed for holding a batch past its hang limit


class HangWatch:
    """Hang limits from each method's measured batch times (``SupervisionConfig``)."""

    def __init__(self, timings: SupervisionConfig) -> None:
        self._timings = timings
        self._batch_times: dict[str, RecentBatchTimes] = {}

    def observe(self, method: str, seconds: float) -> None:
        times = self._batch_times.get(method)
        if times is None:  # not setdefault: that would build a record per batch
            times = self._batch_times[method] = RecentBatchTimes()
        times.observe(seconds)

    def limit_s(self, method: str) -> float:
        """How long a batch of ``method`` may run before its worker is taken for hung."""
        times = self._batch_times.get(method)
        if times is None:
            return self._timings.hang_limit_s(0, 0.0)
        return self._timings.hang_limit_s(times.count, times.p99_s)

    def looks_hung(self, state: WorkerState, now: float) -> bool:
        """A worker whose batch has run past ``hang_factor`` x its method's p99 (or past
        its hang limit): not ready, though it is only killed at the hang limit."""
        flight = state.flight
        if flight is None:
            return False
        method = flight.queue.spec.name
        times = self._batch_times.get(method)
        suspect = self.limit_s(method)
        if times is not None and times.count >= self._timings.hang_warmup_batches:
            suspect = min(suspect, self._timings.hang_factor * times.p99_s)
        return now - max(flight.sent_at, flight.progress_at) > suspect

    def sent(self, state: WorkerState, method: str) -> None:
        """A batch was sent: one timer per busy worker, left armed across batches (no
        timer handle per batch), moved only to an earlier time."""
        limit = self.limit_s(method)
        timer = state.hang_timer
        if timer is None or timer.when() > asyncio.get_running_loop().time() + limit:
            if timer is not None:
                timer.cancel()
            self._arm(state, limit)

    def forget(self, state: WorkerState) -> None:
        if state.hang_timer is not None:
            state.hang_timer.cancel()
            state.hang_timer = None

    def _arm(self, state: WorkerState, delay_s: float) -> None:
        state.hang_timer = asyncio.get_running_loop().call_later(delay_s, self._on_hang, state)

    def _on_hang(self, state: WorkerState) -> None:
        """Kill a worker whose batch has run past its hang limit; re-arm for a batch sent
        later; drop the timer if the worker is idle (its next batch arms it again)."""
        state.hang_timer = None
        flight = state.flight
        if flight is None:
            return
        limit = self.limit_s(flight.queue.spec.name)
        left = max(flight.sent_at, flight.progress_at) + limit - time.monotonic()
        if left > 0.0:
            self._arm(state, left)
            return
        logger.error(
            "[%s] held a batch of %s longer than its hang limit of %.3g s; stopping it",
            state.worker.label,
            flight.queue.spec.name,
            limit,
        )
        state.hung = True
        state.worker.kill()
