"""Admission of calls to a method's queue, as plain functions over a MethodQueue.

A call is refused at enqueue, never accepted only to be dropped later: a deadline
already past (``CallTimeout``), a full queue or a predicted wait past the call's
deadline (``Overloaded``, with a retry hint), or no worker left (``WorkerCrashed``).
An admitted call that is still queued at its deadline (or ``max_latency_ms``) is
dropped by its timer with ``CallTimeout`` and never reaches a worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from runners.batcher import MethodQueue, PendingCall, predicted_wait_s
from runners.call_context import CallContext
from runners.config import RunnerConfig
from runners.errors import CallTimeout, Overloaded, RunnerError, WorkerCrashed
from runners.runnable import MethodSpec
from runners.types import Args, Kwargs


def queue_limit(queue: MethodQueue, now: float, deadline: float | None, runner: str) -> float:
    """The monotonic time past which a call must not be waiting in ``queue``."""
    limit = now + queue.batching.max_latency_ms / 1000.0
    if deadline is None:
        return limit
    if deadline <= now:
        raise CallTimeout(
            "the deadline passed before the call was queued", runner=runner, method=queue.spec.name
        )
    return min(limit, deadline)


def admit(
    queue: MethodQueue,
    count: int,
    now: float,
    limit: float,
    *,
    runner: str,
    max_queue: int,
    workers: int,
    idle: bool,
) -> None:
    """Refuse ``count`` new calls that would be dropped later: a full queue or a hopeless
    wait (a call that would be dispatched at once is never refused for its wait)."""
    waiting = len(queue.queue)
    wait = predicted_wait_s(
        waiting + count - 1, queue.batching.max_batch_size, max(1, workers), queue.batch_time_s
    )
    if waiting + count > max_queue:
        reason = f"the queue is full ({max_queue} calls)"
    elif (waiting or not idle) and now + wait > limit:
        reason = f"the predicted queue wait ({wait * 1000:.0f} ms) passes the call's deadline"
    else:
        return
    queue.rejected += count
    raise Overloaded(reason, runner=runner, method=queue.spec.name, retry_after_s=max(wait, 0.001))


def no_worker_error(method: str | None, runner: str) -> WorkerCrashed:
    return WorkerCrashed(
        "no worker is running: they kept failing to start", runner=runner, method=method
    )


def enqueue(
    queue: MethodQueue,
    calls: Sequence[tuple[Args, Kwargs]],
    now: float,
    limit: float,
    context: CallContext | None = None,
) -> list[PendingCall]:
    """Append admitted calls to the queue; each gets its future, the time it must
    leave the queue by (its batch signature is computed if a batch compares it) and
    the caller's ``context``. Their arrival feeds the arrival rate."""
    loop = asyncio.get_running_loop()
    pending = [
        PendingCall(tuple(a), k, loop.create_future(), now, limit=limit, context=context)
        for a, k in calls
    ]
    queue.queue.extend(pending)
    queue.calls += len(pending)
    queue.arrivals.observe(now, len(pending))
    queue.outstanding.observe(len(queue.queue) + queue.in_flight, len(pending))
    return pending


def arm_timers(queue: MethodQueue, pending: list[PendingCall], delay_s: float, runner: str) -> None:
    """Drop each call still queued after ``delay_s`` (dispatched calls need no timer)."""
    for call in pending:
        if call.queued:
            loop = asyncio.get_running_loop()
            call.timer = loop.call_later(delay_s, expire, queue, call, runner)


def rearm_timers(queue: MethodQueue, calls: list[PendingCall], now: float, runner: str) -> None:
    """Calls back in the queue after leaving it (sent to join a batch that never took
    them): each is dropped at its own limit again, at once if already past."""
    for call in calls:
        if call.limit <= now:
            expire(queue, call, runner)
        else:
            arm_timers(queue, [call], call.limit - now, runner)


def expire(queue: MethodQueue, call: PendingCall, runner: str) -> None:
    call.timer = None
    if call.queued and not call.future.done():
        queue.discard(call)
        queue.timed_out += 1
        call.future.set_exception(
            CallTimeout(
                "the call waited in the queue past its deadline (or max_latency_ms)",
                runner=runner,
                method=queue.spec.name,
            )
        )


def fail_queued(queues: Mapping[str, MethodQueue], error: RunnerError) -> None:
    """Fail every call still queued (shutdown, or no worker left)."""
    for queue in queues.values():
        while queue.queue:
            call = queue.queue.popleft()
            call.leave_queue()
            if not call.future.done():
                call.future.set_exception(error)


def build_queues(
    declared: Mapping[str, MethodSpec], config: RunnerConfig
) -> dict[str, MethodQueue]:
    """One queue per method the worker declared, with the runner's batching overrides."""
    return {
        name: MethodQueue(config.method_spec(spec), config.batching_for(name), config.max_queue)
        for name, spec in declared.items()
    }
