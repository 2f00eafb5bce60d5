"""WorkerPool: the dispatcher of one runner, whatever kind its workers are.

    async with WorkerPool(RunnerConfig(name="mlp", runnable="models:MLP")) as pool:
        y = await pool.call("predict", x)

Queues, admission (``runners.admission``), the release policy and delivery
(``runners.batcher``), crash retry and hang limits live here and only here; a
worker is known through ``runners.transport``: supervised processes by default
(``runners.supervisor``), this process itself for ``--local`` (``runners.local``).

The per-call path is callbacks only: ``submit`` enqueues and, if a worker is
idle, sends the batch at once; the worker's answer arrives in a callback
(``WorkerEvents.on_reply``), which resolves the callers' futures and sends the
next batch. No task is created per call or per batch.

Failure contract: if a batch of several items raises (or cannot be sent), its
items are retried one by one, so only the caller whose item fails gets the
``MethodError``. A batch lost with a dead or hung worker is retried once on
another worker (each item alone, so one bad item cannot sink the others); an
item lost with a second worker is a poison call: its caller gets ``PoisonCall``
and it is never sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

from runners import admission, call_context
from runners.batcher import (
    Flight,
    MethodQueue,
    PendingCall,
    ReleaseTimer,
    batch_error,
    deliver,
    fail_batch,
    fail_unsent,
    full_batch_waiting,
    next_release,
    oldest_queue,
    take_batch,
)
from runners.config import RunnerConfig
from runners.errors import (
    PoisonCall,
    PoolClosed,
    RunnerError,
    StreamInterrupted,
    UnsupportedValue,
)
from runners.health import HangWatch, WorkerState
from runners.joining import (
    board,
    can_join,
    end_joined_stream,
    offer_joins,
    retry_lost,
)
from runners.lifecycle import AsyncLifecycle, Lifecycle
from runners.merging import merge_inputs
from runners.resources import plan_environments
from runners.runnable import MethodSpec
from runners.streaming import ItemStream, deliver_progress, is_done, is_progress
from runners.supervisor import Supervisor
from runners.transport import Reply, Worker, WorkerEvents, Workers
from runners.types import Args, CallResult, Kwargs, PoolStats

WorkersFactory = Callable[[WorkerEvents], Workers]

logger = logging.getLogger("runners.pool")

WAKE_SLACK_S = 0.001  # uvloop's timers have millisecond resolution and may fire early


class WorkerPool(AsyncLifecycle):
    """Satisfies ``runners.types.RunnerClient`` and, towards its workers,
    ``runners.transport.WorkerEvents``. ``gpus`` overrides GPU detection (a count or
    ids); ``workers`` builds the workers (default: supervised processes).

    Supervision (pings, hang limits, restarts) follows ``config.supervision``: a
    worker holding one batch past its method's hang limit is killed and replaced."""

    def __init__(
        self,
        config: RunnerConfig,
        *,
        gpus: int | Sequence[str] | None = None,
        drain_timeout_s: float = 30.0,
        stop_timeout_s: float = 5.0,
        workers: WorkersFactory | None = None,
    ) -> None:
        self._config = config
        self._make_workers = workers or self._processes
        self._gpus = gpus
        self._drain_timeout_s = drain_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._hangs = HangWatch(config.supervision)
        self._state = Lifecycle.NEW
        self._queues: dict[str, MethodQueue] = {}
        self._states: dict[int, WorkerState] = {}  # live workers by id
        self._idle: list[WorkerState] = []
        self._workers: Workers | None = None
        self._supervision: asyncio.Task[None] | None = None
        self._next_batch = 0
        self._dispatch_pending = False  # a dispatch is scheduled for this loop iteration
        self._wake = ReleaseTimer(self._on_wake)  # ends a batch the latency model holds
        self._drained = asyncio.Event()

    # -- RunnerClient ---------------------------------------------------------

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def ready(self) -> bool:
        workers = self._workers
        return self._state.accepts_work and workers is not None and workers.live > 0

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        return {name: q.spec for name, q in self._queues.items()}

    async def start(self) -> None:
        """Start every worker, wait for their READY; RunnerStartupError if one fails."""
        if self._state is not Lifecycle.NEW:
            raise PoolClosed("a pool starts once", runner=self.name)
        self._state = Lifecycle.STARTING
        self._workers = workers = self._make_workers(self)
        try:
            await workers.start()
        except BaseException:
            self._state = Lifecycle.CLOSED
            raise
        self._supervision = asyncio.create_task(workers.run(), name=f"supervise-{self.name}")
        self._supervision.add_done_callback(self._supervision_ended)
        self._state = Lifecycle.READY

    def _processes(self, events: WorkerEvents) -> Workers:
        envs = plan_environments(self._config, gpus=self._gpus)
        return Supervisor(self._config, envs, events, stop_timeout_s=self._stop_timeout_s)

    def _supervision_ended(self, task: asyncio.Task[None]) -> None:
        """Report a supervision failure when it happens (``stop()`` raises it again)."""
        if not task.cancelled() and task.exception() is not None:
            logger.error("runner %r: supervision failed", self.name, exc_info=task.exception())

    async def stop(self) -> None:
        """Refuse new calls, finish queued and in-flight ones, stop every worker."""
        if self._state is Lifecycle.NEW:
            self._state = Lifecycle.CLOSED
        if self._state.stopping:
            return
        self._state = Lifecycle.DRAINING
        self._check_drained()
        try:
            async with asyncio.timeout(self._drain_timeout_s):
                await self._drained.wait()
        except TimeoutError:
            logger.warning("runner %r: calls still pending at shutdown", self.name)
        admission.fail_queued(
            self._queues, PoolClosed("the pool stopped before this call ran", runner=self.name)
        )
        self._wake.update(None)
        for state in self._states.values():
            self._hangs.forget(state)
        assert self._workers is not None and self._supervision is not None
        self._workers.close()
        try:
            await self._supervision
        finally:
            self._state = Lifecycle.CLOSED

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """``await pool.call("predict", x)``: the value of one call."""
        return (await self.submit(method, args, kwargs)).value

    async def submit(
        self, method: str, args: Args, kwargs: Kwargs, *, deadline: float | None = None
    ) -> CallResult:
        queue = self._queue(method)
        (call,) = self._enqueue(queue, [(args, kwargs)], deadline)
        try:
            result: CallResult = await call.future
        except asyncio.CancelledError:
            queue.discard(call)
            raise
        return result

    async def stream(
        self, method: str, args: Args, kwargs: Kwargs, *, deadline: float | None = None
    ) -> AsyncGenerator[Any, None]:
        """The chunks of one call of a streaming method, as they come (see
        ``runners.streaming``). Leaving the iterator early (``aclose``, or a
        cancelled consumer) stops its item in the worker; use it in
        ``contextlib.aclosing`` so that happens at once."""
        queue = self._queue(method)
        if not queue.spec.stream:
            raise RunnerError(
                f"{method} is not a streaming method", runner=self.name, method=method
            )
        (call,) = self._enqueue(queue, [(args, kwargs)], deadline, stream=True)
        sink = call.stream
        assert sink is not None
        try:
            while not is_done(chunk := await sink.next_chunk()):
                yield chunk
            await call.future  # raises the call's error, if it failed
        finally:
            if not call.future.done():
                call.future.cancel()
                queue.discard(call)
                self._stop_item(sink)
            elif not call.future.cancelled():
                call.future.exception()  # a caller that left wants no error, logged or not

    def _stop_item(self, sink: ItemStream) -> None:
        """Tell the worker running ``sink``'s batch to stop producing for it."""
        for state in self._states.values():
            flight = state.flight
            if flight is not None and flight.batch_id == sink.batch_id:
                state.worker.stop_item(flight.batch_id, sink.index)
                offer_joins([state], self.name)  # its place may go to a queued call

    async def submit_many(
        self, method: str, calls: Sequence[tuple[Args, Kwargs]], *, deadline: float | None = None
    ) -> list[CallResult]:
        if not calls:
            return []
        queue = self._queue(method)
        pending = self._enqueue(queue, calls, deadline)
        try:
            return list(await asyncio.gather(*(c.future for c in pending)))
        except BaseException:
            for call in pending:
                queue.discard(call)
                call.future.cancel()
            raise

    def stats(self) -> PoolStats:
        workers = self._workers
        now = time.monotonic()
        hung = sum(self._hangs.looks_hung(state, now) for state in self._states.values())
        return PoolStats(
            runner=self.name,
            workers=workers.slots if workers else 0,
            ready_workers=len(self._states) - hung,
            hung_workers=hung,
            restarts=workers.restarts if workers else 0,
            healthy=workers.healthy if workers else True,
            methods={name: q.snapshot() for name, q in self._queues.items()},
            worker_pids={
                id: pid for id, state in self._states.items() if (pid := state.worker.pid)
            },
            endpoints=workers.endpoints(self._in_flight_by_worker()) if workers else (),
        )

    def _in_flight_by_worker(self) -> dict[int, int]:
        return {
            worker_id: len(state.flight.calls) if state.flight else 0
            for worker_id, state in self._states.items()
        }

    # -- enqueue ----------------------------------------------------------------

    def _queue(self, method: str) -> MethodQueue:
        if not self._state.accepts_work:
            raise PoolClosed(f"the pool is {self._state.value}", runner=self.name, method=method)
        queue = self._queues.get(method)
        if queue is None:
            raise RunnerError(
                f"{self._config.runnable} has no method {method!r}", runner=self.name, method=method
            )
        return queue

    def _enqueue(
        self,
        queue: MethodQueue,
        calls: Sequence[tuple[Args, Kwargs]],
        deadline: float | None,
        *,
        stream: bool = False,
    ) -> list[PendingCall]:
        workers = self._workers
        assert workers is not None
        if not workers.healthy and not workers.live and not workers.starting:
            raise admission.no_worker_error(queue.spec.name, self.name)
        now = time.monotonic()
        limit = admission.queue_limit(queue, now, deadline, self.name)
        admission.admit(
            queue,
            len(calls),
            now,
            limit,
            runner=self.name,
            max_queue=self._config.max_queue,
            workers=workers.live,
            idle=bool(self._idle) or can_join(self._states.values(), queue),
        )
        pending = admission.enqueue(queue, calls, now, limit, call_context.capture())
        if stream:
            for call in pending:
                call.stream = ItemStream()
                call.stream.watch(call.future)
        if not self._dispatch_pending:
            self._dispatch()
        admission.arm_timers(queue, pending, limit - now, self.name)
        return pending

    # -- dispatch (callbacks only) -----------------------------------------------

    def _dispatch(self, slack: float = 0.0) -> None:
        """Send batches while workers are free, unless the latency model holds a short
        batch: then one timer (re-armed only to an earlier time) sends it when due.
        Calls still queued then join running streams that take them (``runners.joining``)."""
        wake: float | None = None
        workers = self._workers.live if self._workers else 0
        while self._idle:
            now = time.monotonic()
            queue, wake = next_release(self._queues.values(), now, len(self._idle), workers, slack)
            if queue is None:
                break
            queue.record_release(now)
            batch = take_batch(queue.queue, queue.max_items, queue.spec)
            self._send(self._pick_idle(), queue, batch)
        self._wake.update(wake)
        offer_joins(self._states.values(), self.name)

    def _pick_idle(self) -> WorkerState:
        """The idle worker with the least load its host reported (the most recently
        freed on a tie, as a stack: local workers all report 0)."""
        idle = self._idle
        best = len(idle) - 1
        for index in range(best - 1, -1, -1):
            if idle[index].worker.load < idle[best].worker.load:
                best = index
        return idle.pop(best)

    def _on_wake(self) -> None:
        self._dispatch(slack=WAKE_SLACK_S)

    def _send(self, state: WorkerState, queue: MethodQueue, batch: list[PendingCall]) -> None:
        method = queue.spec.name
        self._next_batch += 1
        try:
            args, kwargs = merge_inputs(batch, queue.spec)
            contexts = call_context.for_batch([call.context for call in batch])
            state.worker.send_batch(self._next_batch, method, args, kwargs, contexts)
        except (UnsupportedValue, ValueError) as exc:
            self._idle.append(state)
            fail_unsent(queue, batch, exc, self.name)
            return
        state.flight = flight = Flight(queue, [], self._next_batch, time.monotonic(), 0, [])
        board(flight, batch, flight.sent_at, sent=True)
        self._hangs.sent(state, method)

    def _take_flight(self, state: WorkerState) -> Flight | None:
        flight, state.flight = state.flight, None
        if flight is not None:
            flight.queue.in_flight -= len(flight.calls)
        return flight

    # -- WorkerEvents (called by the workers, on the loop) ---------------------------

    def on_reply(self, worker: Worker, reply: Reply) -> None:
        if is_progress(reply):
            self._on_progress(worker, reply)
            return
        state = self._states.get(worker.id)
        flight = None if state is None else self._take_flight(state)
        if (
            state is None
            or flight is None
            or not isinstance(reply, list)
            or reply[1] != flight.batch_id
        ):
            logger.error("[%s] answered a batch it was not given; stopping it", worker.label)
            worker.kill()
            return
        queue, calls, now = flight.queue, flight.calls, time.monotonic()
        queue.record_batch(flight.rows, now - flight.sent_at)
        method = queue.spec.name
        error = None if reply[0] == "ok" else batch_error(reply[2], reply[3], self.name, method)
        if queue.spec.stream:  # its time is the stream's, not one step's
            end_joined_stream(flight, error, worker.id, self.name)
        else:
            self._hangs.observe(method, now - flight.sent_at)
            queue.warn_if_over_budget(self.name)
            if error is None:
                deliver(flight, reply[2], self.name, worker.id)
            else:
                fail_batch(queue, calls, error)
        self._idle.append(state)
        if full_batch_waiting(self._queues.values()):
            self._dispatch()  # before the callers just answered run: the worker starts now
        elif len(calls) > 1 or oldest_queue(self._queues.values()) is not None:
            self._schedule_dispatch()  # the callers just answered may call again at once
        self._check_drained()

    def _on_progress(self, worker: Worker, reply: list[Any]) -> None:
        """A step of the streaming batch ``worker`` holds: chunks to their callers."""
        state = self._states.get(worker.id)
        flight = None if state is None else state.flight
        if flight is None or reply[1] != flight.batch_id or not flight.queue.spec.stream:
            logger.error("[%s] streamed for a batch it was not given; stopping it", worker.label)
            worker.kill()
            return
        flight.progress_at = time.monotonic()
        deliver_progress(flight, reply, worker.id)
        if state is not None and flight.queue.queue:  # an item that ended leaves room
            offer_joins([state], self.name)

    def _schedule_dispatch(self) -> None:
        """Dispatch after the callers just answered have run: a caller that calls again at
        once (a loop, a client at concurrency N) joins the next batch instead of
        leaving as a batch of one; the wait is one loop iteration, no timer. Only
        when there is something to join: a lone caller with nothing queued sends its
        next call at once, from ``_enqueue``."""
        if not self._dispatch_pending:
            self._dispatch_pending = True
            asyncio.get_running_loop().call_soon(self._deferred_dispatch)

    def _deferred_dispatch(self) -> None:
        self._dispatch_pending = False
        self._dispatch()

    def on_lost(self, worker: Worker) -> None:
        state = self._states.pop(worker.id, None)
        if state is None:
            return
        self._hangs.forget(state)
        if state in self._idle:
            self._idle.remove(state)
        flight = self._take_flight(state)
        if flight is not None:
            how = "hung and was stopped" if state.hung else "died"
            error = PoisonCall(
                f"this call crashed two workers (the last, worker {worker.id}, {how} while "
                "running it); it is not retried",
                runner=self.name,
                method=flight.queue.spec.name,
            )
            interrupted = StreamInterrupted(
                f"{worker.label} {how} after this stream's first chunks; a stream is not run again",
                runner=self.name,
                method=flight.queue.spec.name,
            )
            retry_lost(flight, error, interrupted, self.name)
        self._dispatch()
        self._check_drained()

    def on_refused(self, worker: Worker) -> None:
        state = self._states.get(worker.id)
        if state in self._idle:
            self._idle.remove(state)
        flight = None if state is None else self._take_flight(state)
        if flight is not None:  # never run: sent again as it was, not counted as a crash
            flight.queue.requeue(flight.calls, solo=False)
        self._dispatch()

    def on_ready(self, worker: Worker) -> None:
        if not self._queues:
            self._queues = admission.build_queues(worker.methods, self._config)
        state = self._states.get(worker.id)
        if state is None:
            state = self._states[worker.id] = WorkerState(worker)
        elif state in self._idle or state.flight is not None:
            return
        self._idle.append(state)
        if self._state is not Lifecycle.STARTING:
            self._dispatch()

    def on_gave_up(self) -> None:
        workers = self._workers
        if workers is not None and not workers.live and not workers.starting:
            admission.fail_queued(self._queues, admission.no_worker_error(None, self.name))

    def _check_drained(self) -> None:
        if self._state is Lifecycle.DRAINING and all(
            not q.queue and not q.in_flight for q in self._queues.values()
        ):
            self._drained.set()
