"""Continuous batching: queued calls join a streaming batch already running.

A batchable streaming method declared ``@method(batchable=True, stream=True,
joins=True)`` takes new calls between its steps. While a worker holds such a
batch with fewer than ``max_batch_size`` items still running, calls queued for
the method (that merge with the batch, see ``runners.merging``) are sent to it
as a ``join`` frame instead of waiting for the next batch:

    pool -> worker   ["join", batch id, [args], {kwargs}]   (stacked, as a batch)
    worker -> pool   ["joined", batch id, items]             (before its next step)

They become items ``size, size + 1, ...`` of the batch: the worker appends them
to the argument lists the generator holds (``runners.streaming``), and the next
step must yield a list of the new length. The batch with the most room takes
calls first; a batch never runs more than ``max_batch_size`` items at once, nor
takes more than ``JOIN_LIMIT`` x ``max_batch_size`` items in all (its lists, and
each step's chunk frame, only grow while it runs).

The race: a join may reach a worker whose batch has just finished. The worker
acknowledges every join it takes with ``joined``, so the batch's final reply
tells the pool which calls it never took; those go back to the head of their
queue untouched (``end_joined_stream``). A worker lost mid-batch never ran the
joins it did not acknowledge either: they go back the same way, no crash
counted (``retry_lost``).

Every call boards its flight here (``board``), whether it leaves the queue with
its batch or joins one already running.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from runners.admission import rearm_timers
from runners.batcher import (
    Flight,
    MethodQueue,
    PendingCall,
    fail_unsent,
    key_of,
    split_rows,
    survivors_of_crash,
    take_matching,
)
from runners.errors import RunnerError, UnsupportedValue
from runners.health import WorkerState
from runners.merging import merge_inputs
from runners.streaming import end_stream, take, unstarted

JOIN_LIMIT = 16  # a batch takes joins while its items in all stay below this x max_batch_size


def board(flight: Flight, calls: list[PendingCall], now: float, *, sent: bool = False) -> None:
    """``calls`` leave their queue for ``flight``: as its batch when it is ``sent``,
    or as items joining a running stream (``offer_joins``), taken once the worker
    acknowledges them (``runners.streaming.take``). A streaming call learns its
    batch and its index in it."""
    queue = flight.queue
    first = len(flight.calls)
    split = split_rows(calls, queue.spec)  # each call's rows, counted once per batch
    flight.calls.extend(calls)
    flight.split.extend(split)
    flight.rows += sum(split)
    for index, call in enumerate(calls, start=first):
        if call.stream is not None:
            call.stream.board(flight.batch_id, index, now)
    queue.in_flight += len(calls)
    if sent:
        take(flight, len(flight.calls))


def room(state: WorkerState) -> int:
    """Calls the batch ``state``'s worker holds may take now: 0 unless it is a
    joinable stream (and not a call retried alone) on a worker that takes joins
    (not a draining host), else ``max_batch_size`` minus its items still running."""
    flight = state.flight
    if flight is None or not flight.queue.spec.joins or flight.calls[0].solo:
        return 0
    if not state.worker.takes_joins:
        return 0
    calls = flight.calls
    limit = flight.queue.max_items
    running = sum(not call.future.done() for call in calls)
    return max(0, min(limit - running, JOIN_LIMIT * limit - len(calls)))


def can_join(states: Iterable[WorkerState], queue: MethodQueue) -> bool:
    """A running batch of ``queue``'s method has room: a new call starts at its next
    step (admission predicts no wait for it, as for an idle worker)."""
    return any(s.flight is not None and s.flight.queue is queue and room(s) for s in states)


def offer_joins(states: Iterable[WorkerState], runner: str) -> None:
    """Send queued calls to the running joinable batches, the most room first."""
    held = [
        (free, state)
        for state in states
        if state.flight is not None and state.flight.queue.queue and (free := room(state)) > 0
    ]
    held.sort(key=lambda pair: -pair[0])
    for free, state in held:
        flight = state.flight
        assert flight is not None
        spec = flight.queue.spec
        calls = take_matching(flight.queue.queue, key_of(flight.calls[0], spec), free, spec)
        if calls:
            send_join(state, flight, calls, runner)


def send_join(state: WorkerState, flight: Flight, calls: list[PendingCall], runner: str) -> None:
    """Send ``calls`` to join ``flight``; calls whose values cannot cross fail as a
    batch that cannot be sent does."""
    queue = flight.queue
    try:
        args, kwargs = merge_inputs(calls, queue.spec)
        state.worker.join_items(flight.batch_id, args, kwargs)
    except (UnsupportedValue, ValueError) as exc:
        fail_unsent(queue, calls, exc, runner)
        return
    board(flight, calls, time.monotonic())


def return_untaken(flight: Flight, runner: str) -> None:
    """Calls sent to join ``flight`` that its worker never acknowledged go back to
    the head of their queue as they were: they never ran, so their deadline
    (or ``max_latency_ms``) bounds their wait again."""
    untaken = [call for call in flight.calls[flight.taken :] if not call.future.done()]
    flight.queue.requeue(untaken, solo=False)
    rearm_timers(flight.queue, untaken, time.monotonic(), runner)


def end_joined_stream(flight: Flight, error: RunnerError | None, worker: int, runner: str) -> None:
    """A streaming batch's final reply: the joins it never took (the batch ended
    first) go back to their queue; its other items end (``end_stream``)."""
    return_untaken(flight, runner)
    end_stream(flight, error, worker)


def retry_lost(flight: Flight, poison: RunnerError, interrupted: RunnerError, runner: str) -> None:
    """A batch lost with its worker: joins it never took go back to their queue
    untouched (no crash counted); of the calls it took, a stream that sent chunks
    fails with ``interrupted``, the others run again (alone, if it held several),
    and a call lost with a second worker fails with ``poison``."""
    return_untaken(flight, runner)
    taken = flight.calls[: flight.taken]
    retry = survivors_of_crash(unstarted(taken, interrupted), poison)
    flight.queue.requeue(retry, solo=len(taken) > 1)
