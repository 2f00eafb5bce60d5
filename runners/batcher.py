"""Per (runner, method) queue and the batch-release policy, as plain data and
functions: no processes, no tasks, testable on their own.

A batch is the head of the queue plus the queued calls that can merge with it
(equal keys, see ``runners.merging``), taken in queue order but not only
consecutive ones, up to ``max_batch_size`` rows (a call of 5 rows uses 5). A
call larger than ``max_batch_size`` still runs, alone. ``submit_many`` (a
``map`` fan-out) enqueues many calls at once so they can share one batch.

Release policy (work-conserving): when a worker is free and the queue is not
empty, take a batch now; the one exception is the short wait that the method's
measured latency model asks for under high load
(``runners.latency_model.release``), ended early when the batch fills. A
streaming method is never held (``MethodQueue.release_at``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runners.call_context import CallContext
from runners.config import BatchingConfig
from runners.errors import MethodError, ProtocolError, RunnerError, UnsupportedValue
from runners.latency_model import (
    ArrivalRate,
    BatchCostModel,
    Outstanding,
    Situation,
    hold_rate,
    release,
    worth_holding,
)
from runners.merging import call_key, split_outputs
from runners.replies import PROTOCOL_FAULT
from runners.runnable import MethodSpec
from runners.streaming import ItemStream
from runners.types import QUEUE_WAIT_BUCKETS_S, CallResult, MethodStats

_EWMA = 0.2  # weight of the newest batch in the measured batch time
# Calls scanned past the head for merge partners: keeps a batch's cost bounded
# when a long queue mixes shapes that cannot merge.
_SCAN_LIMIT = 512
logger = logging.getLogger("runners.pool")


@dataclass(slots=True, eq=False)
class PendingCall:
    """One call between enqueue and its answer. ``future`` receives a CallResult."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    future: asyncio.Future[Any]
    enqueued_at: float
    key: Hashable = None  # merge key, computed when first compared (None: not yet)
    rows: int = 1  # rows toward max_batch_size (known once ``key`` is)
    solo: bool = False  # run alone: its batch raised, so items are retried singly
    crashes: int = 0  # dispatches lost to a dead worker
    timer: asyncio.TimerHandle | None = None  # fires at the deadline while queued
    queued: bool = True
    limit: float = math.inf  # dispatched by then, or dropped (deadline, max_latency_ms)
    context: CallContext | None = None  # request id and trace parent, sent with the batch
    stream: ItemStream | None = None  # a streaming call's chunks, on their way to its caller

    def leave_queue(self) -> None:
        """Off its queue (taken for a batch or a join, dropped, failed): its deadline
        timer stops."""
        self.queued = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def key_of(call: PendingCall, spec: MethodSpec) -> Hashable:
    """The call's merge key (and its rows), computed once and only when a batch
    compares it or counts its rows: a call dispatched alone at once never needs it."""
    if call.key is None:
        call.key, call.rows = call_key(call, spec)
    return call.key


def rows_of(call: PendingCall, spec: MethodSpec) -> int:
    """The rows the call counts toward ``max_batch_size``."""
    key_of(call, spec)
    return call.rows


def take_batch(queue: deque[PendingCall], max_rows: int, spec: MethodSpec) -> list[PendingCall]:
    """Pop the next batch: the head, then the queued calls that merge with it, oldest
    first, while the batch stays within ``max_rows`` rows (the head always goes)."""
    head = queue.popleft()
    head.leave_queue()
    if not spec.batchable or head.solo or not queue:
        return [head]
    key = key_of(head, spec)
    return [head, *take_matching(queue, key, max_rows - head.rows, spec)]


def take_matching(
    queue: deque[PendingCall], key: Hashable, room: int, spec: MethodSpec
) -> list[PendingCall]:
    """Pop the queued calls that merge under ``key``, oldest first, within ``room``
    rows: the partners of a batch's head, or the calls joining a running stream."""
    taken: list[PendingCall] = []
    rows = 0
    for scanned, call in enumerate(queue):
        if rows >= room or scanned >= _SCAN_LIMIT:
            break
        if not call.solo and key_of(call, spec) == key and rows + call.rows <= room:
            taken.append(call)
            rows += call.rows
    _remove_taken(queue, taken)
    for call in taken:
        call.leave_queue()
    return taken


def _remove_taken(queue: deque[PendingCall], taken: list[PendingCall]) -> None:
    """Remove ``taken`` (in queue order) from ``queue``; the rest keep their order."""
    if not taken:
        return
    if queue[0] is taken[0] and queue[len(taken) - 1] is taken[-1]:
        for _ in taken:  # the usual case: a run at the head
            queue.popleft()
        return
    chosen = {id(call) for call in taken}
    rest = [call for call in queue if id(call) not in chosen]
    queue.clear()
    queue.extend(rest)


def split_rows(calls: Sequence[PendingCall], spec: MethodSpec) -> list[int]:
    """The rows of the batch's output each call takes back (one output, whole, for a
    method that does not batch)."""
    return [rows_of(call, spec) for call in calls] if spec.batchable else [1]


def predicted_wait_s(queued: int, max_batch_size: int, workers: int, batch_time_s: float) -> float:
    """How long a call joining the back of the queue waits, if every batch is full."""
    if batch_time_s <= 0.0 or workers <= 0:
        return 0.0
    return math.ceil((queued + 1) / max_batch_size) * batch_time_s / workers


@dataclass(eq=False)
class MethodQueue:
    """The bounded queue of one method plus its counters (read by ``stats()``)."""

    spec: MethodSpec
    batching: BatchingConfig
    max_queue: int
    queue: deque[PendingCall] = field(default_factory=deque)
    in_flight: int = 0
    calls: int = 0
    batches: int = 0
    rejected: int = 0
    timed_out: int = 0
    batch_sizes: Counter[int] = field(default_factory=Counter)
    queue_wait_s_sum: float = 0.0
    queue_waits: list[int] = field(default_factory=lambda: [0] * (len(QUEUE_WAIT_BUCKETS_S) + 1))
    batch_time_s_sum: float = 0.0
    batch_time_s: float = 0.0  # moving average of one batch's run time
    budget_warned: bool = False  # max_latency_ms below the batch time was reported once
    cost: BatchCostModel = field(default_factory=BatchCostModel)
    arrivals: ArrivalRate = field(default_factory=ArrivalRate)
    outstanding: Outstanding = field(default_factory=Outstanding)
    waits: int = 0
    wait_s_sum: float = 0.0
    waiting_since: float | None = None  # a free worker is holding this queue
    held_queued: int = 0  # items queued when that hold began

    @property
    def max_items(self) -> int:
        """Rows in a full batch."""
        return self.batching.max_batch_size if self.spec.batchable else 1

    def release_at(self, now: float, idle_workers: int, workers: int) -> float | None:
        """``None``: send a batch now; else the time to send it at unless it fills.
        A stream is never held: its batch time is a whole stream, so a hold would
        delay its first chunk by that much (a later call joins it at its next step
        when the method takes joins, or waits for the next batch)."""
        queued = len(self.queue)
        if queued >= self.max_items or idle_workers > 1 or not self.batching.adaptive_wait:
            return None
        if self.spec.stream:
            return None
        if not self.cost.identified:
            return None
        fill = self.outstanding.reachable(self.max_items, workers)
        if queued >= fill:
            return None
        a, b = self.cost.coefficients()
        since = now if self.waiting_since is None else self.waiting_since
        rate = max(self.arrivals.rate(now), hold_rate(queued - self.held_queued, now - since))
        if not worth_holding(queued, fill, a, b, rate, workers):
            return None
        limit = min(call.limit for _, call in zip(range(fill), self.queue, strict=False))
        situation = Situation(queued, fill, a, b, rate, since, limit, idle_workers, workers, now)
        until = release(situation)
        if until is not None and self.waiting_since is None:
            self.waiting_since, self.held_queued = now, queued
            self.waits += 1
        return until

    def record_release(self, now: float) -> None:
        """A batch leaves the queue: close the wait it ends, if any."""
        if self.waiting_since is not None:
            self.wait_s_sum += now - self.waiting_since
            self.waiting_since = None

    def record_wait(self, seconds: float) -> None:
        """A call leaves the queue for a worker after ``seconds``."""
        self.queue_wait_s_sum += seconds
        self.queue_waits[bisect_left(QUEUE_WAIT_BUCKETS_S, seconds)] += 1

    def record_batch(self, size: int, seconds: float) -> None:
        self.cost.observe(size, seconds)
        self.batches += 1
        self.batch_sizes[size] += 1
        self.batch_time_s_sum += seconds
        if self.batch_time_s == 0.0:
            self.batch_time_s = seconds
        else:
            self.batch_time_s += _EWMA * (seconds - self.batch_time_s)

    def warn_if_over_budget(self, runner: str) -> None:
        """Log once when the measured batch time first exceeds ``max_latency_ms``."""
        if self.budget_warned or self.batch_time_s * 1000 <= self.batching.max_latency_ms:
            return
        self.budget_warned = True
        logger.warning(
            "runner %r: max_latency_ms of %s (%g ms) is below its batch time "
            "(%.0f ms): queued calls will time out under load",
            runner,
            self.spec.name,
            self.batching.max_latency_ms,
            self.batch_time_s * 1e3,
        )

    def requeue(self, calls: list[PendingCall], *, solo: bool) -> None:
        """Put calls back at the head, in order (``solo``: each runs alone next time)."""
        for call in reversed(calls):
            call.solo = call.solo or solo
            call.queued = True
            self.queue.appendleft(call)

    def discard(self, call: PendingCall) -> None:
        """Remove a call that is still queued (cancelled or past its deadline)."""
        if call.queued:
            self.queue.remove(call)
        call.leave_queue()

    def snapshot(self) -> MethodStats:
        a, b = self.cost.coefficients()
        return MethodStats(
            cost_a_ms=a * 1e3,
            cost_b_ms=b * 1e3,
            arrival_rate=self.arrivals.rate(time.monotonic()),
            waits=self.waits,
            wait_s_sum=self.wait_s_sum,
            queue_length=len(self.queue),
            in_flight=self.in_flight,
            calls=self.calls,
            batches=self.batches,
            rejected=self.rejected,
            timed_out=self.timed_out,
            batch_sizes=dict(self.batch_sizes),
            queue_wait_s_sum=self.queue_wait_s_sum,
            queue_waits=tuple(self.queue_waits),
            batch_time_s_sum=self.batch_time_s_sum,
        )


def resolve(flight: Flight, values: Sequence[Any], worker: int) -> None:
    """Give each caller still waiting its part of a batch's answer."""
    size, sent_at, batch_id = flight.rows, flight.sent_at, flight.batch_id
    for call, item in zip(flight.calls, values, strict=True):
        if not call.future.done():
            wait = sent_at - call.enqueued_at
            call.future.set_result(CallResult(item, wait, batch_id, size, worker))


def survivors_of_crash(calls: Sequence[PendingCall], error: RunnerError) -> list[PendingCall]:
    """Calls lost with a dead worker: those on their first loss get another try; those
    lost twice fail with ``error``."""
    retry = []
    for call in calls:
        if call.future.done():
            continue
        call.crashes += 1
        if call.crashes < 2:
            retry.append(call)
        else:
            call.future.set_exception(error)
    return retry


def batch_error(error_type: str, text: str, runner: str, method: str) -> RunnerError:
    """The error of a batch that raised in the worker, or could not be sent (a
    ``ProtocolError``: the worker found a frame from the pool malformed)."""
    if error_type == "UnsupportedValue":
        return UnsupportedValue(text, runner=runner, method=method)
    if error_type == PROTOCOL_FAULT:
        return ProtocolError(text, runner=runner, method=method)
    return MethodError(text, error_type=error_type, runner=runner, method=method)


@dataclass(eq=False)
class Flight:
    """A batch sent to a worker and not yet answered."""

    queue: MethodQueue
    calls: list[PendingCall]
    batch_id: int
    sent_at: float
    rows: int  # the batch's size in rows: sum(split), for max_batch_size, stats, the cost model
    split: list[int]  # each call's rows of the answer (``split_rows``)
    progress_at: float = 0.0  # a streaming batch's last step, for the hang limit
    taken: int = 0  # calls the worker runs: all it was sent, and the joins it took


@dataclass(eq=False)
class ReleaseTimer:
    """The one timer that sends a batch the latency model holds. Re-armed only to an
    earlier time: when it fires the dispatcher decides again (and may re-arm it)."""

    callback: Callable[[], None]
    when: float = math.inf
    handle: asyncio.TimerHandle | None = None

    def update(self, when: float | None) -> None:
        """Fire at monotonic ``when`` (or earlier, if already armed so); ``None`` cancels."""
        if when is not None and self.handle is not None and when >= self.when:
            return
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        if when is not None:
            self.when = when
            delay = max(0.0, when - time.monotonic())
            self.handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self.handle = None
        self.callback()


def next_release(
    queues: Iterable[MethodQueue], now: float, idle_workers: int, workers: int, slack: float
) -> tuple[MethodQueue | None, float | None]:
    """The queue to send a batch from now (oldest head first), else the earliest time
    one of the held queues is due (``None``: nothing queued). A queue due within
    ``slack`` of ``now`` counts as due (timers may fire a little early)."""
    wake: float | None = None
    live = [q for q in queues if q.queue]
    if len(live) > 1:
        live.sort(key=lambda q: q.queue[0].enqueued_at)
    for queue in live:
        until = queue.release_at(now, idle_workers, workers)
        if until is None or until <= now + slack:
            return queue, None
        wake = until if wake is None else min(wake, until)
    return None, wake


def deliver(flight: Flight, value: Any, runner: str, worker: int) -> None:
    """Split a batch's answer back to its callers (a malformed answer fails the batch)."""
    spec = flight.queue.spec
    try:
        values = split_outputs(value, flight.split, spec, runner)
    except MethodError as exc:
        fail_batch(flight.queue, flight.calls, exc)
        return
    resolve(flight, values, worker)


def fail_batch(queue: MethodQueue, calls: list[PendingCall], error: RunnerError) -> None:
    """A batch of several items is retried item by item; a single item fails."""
    live = [c for c in calls if not c.future.done()]
    if len(calls) > 1:
        queue.requeue(live, solo=True)
        return
    for call in live:
        call.future.set_exception(error)


def fail_unsent(
    queue: MethodQueue, calls: list[PendingCall], exc: UnsupportedValue | ValueError, runner: str
) -> None:
    """Calls whose values could not be sent to a worker fail as a batch that raised."""
    text = exc.message if isinstance(exc, UnsupportedValue) else str(exc)
    fail_batch(queue, calls, batch_error(type(exc).__name__, text, runner, queue.spec.name))


def full_batch_waiting(queues: Iterable[MethodQueue]) -> bool:
    """A queue holds at least a full batch of calls: nothing that arrives could make
    its next batch bigger, so it should go to a free worker at once."""
    return any(len(queue.queue) >= queue.max_items for queue in queues if queue.queue)


def oldest_queue(queues: Iterable[MethodQueue]) -> MethodQueue | None:
    """The non-empty queue whose head has waited longest."""
    best: MethodQueue | None = None
    oldest = 0.0
    for queue in queues:
        if queue.queue and (best is None or queue.queue[0].enqueued_at < oldest):
            best, oldest = queue, queue.queue[0].enqueued_at
    return best
