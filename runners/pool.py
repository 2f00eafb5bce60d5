"""WorkerPool: the batched, supervised pool of worker processes of one runner.

    async with WorkerPool(RunnerConfig(name="mlp", runnable="models:MLP")) as pool:
        y = await pool.call("predict", x)

The per-call path is callbacks only: ``submit`` enqueues and, if a worker is
idle, sends the batch at once; the worker's answer arrives in the socket
protocol's callback, which resolves the callers' futures and sends the next
batch. No task is created per call or per batch.

Failure contract: if a batch of several items raises (or cannot be sent), its
items are retried one by one, so only the caller whose item fails gets the
``MethodError``. A batch lost with a dead or hung worker is retried once on
another worker (each item alone, so one bad item cannot sink the others); an
item lost with a second worker is a poison call: its caller gets ``PoisonCall``
and it is never sent again.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from runners import admission, codec
from runners.batcher import (
    Flight,
    MethodQueue,
    PendingCall,
    ReleaseTimer,
    batch_error,
    batch_rows,
    deliver,
    fail_batch,
    next_release,
    oldest_queue,
    survivors_of_crash,
    take_batch,
)
from runners.config import RunnerConfig
from runners.errors import PoisonCall, PoolClosed, RunnerError, UnsupportedValue
from runners.health import RecentBatchTimes
from runners.merging import merge_inputs
from runners.resources import plan_environments
from runners.runnable import MethodSpec
from runners.supervisor import Supervisor, Worker
from runners.types import Args, CallResult, Kwargs, PoolStats

logger = logging.getLogger("runners.pool")

WAKE_SLACK_S = 0.001  # uvloop's timers have millisecond resolution and may fire early


class PoolState(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    CLOSED = "closed"


class WorkerPool:
    """Satisfies ``runners.types.RunnerClient``. ``gpus`` overrides GPU detection (a count or ids).

    Supervision (pings, hang limits, restarts) follows ``config.supervision``: a
    worker holding one batch past its method's hang limit is killed and replaced."""

    def __init__(
        self,
        config: RunnerConfig,
        *,
        gpus: int | Sequence[str] | None = None,
        drain_timeout_s: float = 30.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self._config = config
        self._supervision = config.supervision
        self._gpus = gpus
        self._drain_timeout_s = drain_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._batch_times: dict[str, RecentBatchTimes] = {}
        self._state = PoolState.NEW
        self._queues: dict[str, MethodQueue] = {}
        self._idle: list[Worker] = []
        self._supervisor: Supervisor | None = None
        self._slots: list[asyncio.Task[None]] = []
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
        sup = self._supervisor
        return self._state is PoolState.READY and sup is not None and bool(sup.workers)

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        return {name: q.spec for name, q in self._queues.items()}

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start every worker, wait for their READY; RunnerStartupError if one fails."""
        if self._state is not PoolState.NEW:
            raise PoolClosed("a pool starts once", runner=self.name)
        self._state = PoolState.STARTING
        envs = plan_environments(self._config, gpus=self._gpus)
        self._supervisor = sup = Supervisor(
            self._config,
            envs,
            on_message=self._on_reply,
            on_lost=self._on_lost,
            on_ready=self._on_ready,
            on_gave_up=self._on_gave_up,
            stop_timeout_s=self._stop_timeout_s,
        )
        started = await asyncio.gather(
            *(sup.start_worker(slot) for slot in range(len(envs))), return_exceptions=True
        )
        failure = next((r for r in started if isinstance(r, BaseException)), None)
        if failure is not None:
            sup.close()
            await asyncio.gather(
                *(w.reap(self._stop_timeout_s) for w in started if isinstance(w, Worker))
            )
            self._state = PoolState.CLOSED
            raise failure
        workers = [w for w in started if isinstance(w, Worker)]
        self._slots = [asyncio.create_task(sup.run_slot(i, w)) for i, w in enumerate(workers)]
        self._state = PoolState.READY

    async def stop(self) -> None:
        """Refuse new calls, finish queued and in-flight ones, stop every worker."""
        if self._state in (PoolState.NEW, PoolState.CLOSED, PoolState.DRAINING):
            self._state = PoolState.CLOSED if self._state is PoolState.NEW else self._state
            return
        self._state = PoolState.DRAINING
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
        assert self._supervisor is not None
        for worker in self._supervisor.workers.values():
            self._cancel_hang_timer(worker)
        self._supervisor.close()
        await asyncio.gather(*self._slots)
        self._state = PoolState.CLOSED

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
        sup = self._supervisor
        live = [w for w in sup.workers.values() if not w.closed.is_set()] if sup else []
        now = time.monotonic()
        hung = sum(self._looks_hung(w, now) for w in live)
        return PoolStats(
            runner=self.name,
            workers=len(sup.envs) if sup else 0,
            ready_workers=len(live) - hung,
            hung_workers=hung,
            restarts=sup.restarts if sup else 0,
            healthy=sup.healthy if sup else True,
            methods={name: q.snapshot() for name, q in self._queues.items()},
        )

    # -- enqueue ----------------------------------------------------------------

    def _queue(self, method: str) -> MethodQueue:
        if self._state is not PoolState.READY:
            raise PoolClosed(f"the pool is {self._state.value}", runner=self.name, method=method)
        queue = self._queues.get(method)
        if queue is None:
            raise RunnerError(
                f"{self._config.runnable} has no method {method!r}", runner=self.name, method=method
            )
        return queue

    def _enqueue(
        self, queue: MethodQueue, calls: Sequence[tuple[Args, Kwargs]], deadline: float | None
    ) -> list[PendingCall]:
        sup = self._supervisor
        assert sup is not None
        if not sup.healthy and not sup.workers and not sup.starting:
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
            workers=len(sup.workers),
            idle=bool(self._idle),
        )
        pending = admission.enqueue(queue, calls, now, limit)
        if not self._dispatch_pending:
            self._dispatch()
        admission.arm_timers(queue, pending, limit - now, self.name)
        return pending

    # -- dispatch (callbacks only) -----------------------------------------------

    def _next_queue(self) -> MethodQueue | None:
        return oldest_queue(self._queues.values())

    def _dispatch(self, slack: float = 0.0) -> None:
        """Send batches while workers are free, unless the latency model holds a short
        batch: then one timer (re-armed only to an earlier time) sends it when due."""
        wake: float | None = None
        workers = len(self._supervisor.workers) if self._supervisor else 0
        while self._idle:
            now = time.monotonic()
            queue, wake = next_release(self._queues.values(), now, len(self._idle), workers, slack)
            if queue is None:
                break
            queue.record_release(now)
            batch = take_batch(queue.queue, queue.max_items, queue.spec)
            for call in batch:
                call.queued = False
                if call.timer is not None:
                    call.timer.cancel()
                    call.timer = None
            self._send(self._idle.pop(), queue, batch)
        self._wake.update(wake)

    def _on_wake(self) -> None:
        self._dispatch(slack=WAKE_SLACK_S)

    def _send(self, worker: Worker, queue: MethodQueue, batch: list[PendingCall]) -> None:
        method = queue.spec.name
        self._next_batch += 1
        try:
            args, kwargs = merge_inputs(batch, queue.spec)
            chunks = codec.encode(
                ["call", self._next_batch, method, args, kwargs], runner=self.name, method=method
            )
        except (UnsupportedValue, ValueError) as exc:
            self._idle.append(worker)
            text = exc.message if isinstance(exc, UnsupportedValue) else str(exc)
            fail_batch(queue, batch, batch_error(type(exc).__name__, text, self.name, method))
            return
        now = time.monotonic()
        worker.batch = Flight(queue, batch, self._next_batch, now, batch_rows(batch, queue.spec))
        queue.in_flight += len(batch)
        for call in batch:
            queue.queue_wait_s_sum += now - call.enqueued_at
        worker.send(chunks)
        limit = self._hang_limit_s(method)
        timer = worker.hang_timer
        if timer is None or timer.when() > asyncio.get_running_loop().time() + limit:
            if timer is not None:
                timer.cancel()
            self._arm_hang_timer(worker, limit)

    def _hang_limit_s(self, method: str) -> float:
        """How long a batch of ``method`` may run before its worker is taken for hung."""
        times = self._batch_times.get(method)
        if times is None:
            return self._supervision.hang_limit_s(0, 0.0)
        return self._supervision.hang_limit_s(times.count, times.p99_s)

    def _looks_hung(self, worker: Worker, now: float) -> bool:
        """A worker whose batch has run past ``hang_factor`` x its method's p99 (or past
        its hang limit): not ready, though it is only killed at the hang limit."""
        flight: Flight | None = worker.batch
        if flight is None:
            return False
        method = flight.queue.spec.name
        times = self._batch_times.get(method)
        suspect = self._hang_limit_s(method)
        if times is not None and times.count >= self._supervision.hang_warmup_batches:
            suspect = min(suspect, self._supervision.hang_factor * times.p99_s)
        return now - flight.sent_at > suspect

    def _arm_hang_timer(self, worker: Worker, delay_s: float) -> None:
        """One timer per busy worker, left armed across batches (no timer handle per
        batch): when it fires it checks the batch held then, see ``_on_hang``."""
        loop = asyncio.get_running_loop()
        worker.hang_timer = loop.call_later(delay_s, self._on_hang, worker)

    @staticmethod
    def _cancel_hang_timer(worker: Worker) -> None:
        if worker.hang_timer is not None:
            worker.hang_timer.cancel()
            worker.hang_timer = None

    def _take_flight(self, worker: Worker) -> Flight | None:
        flight: Flight | None = worker.batch
        worker.batch = None
        if flight is not None:
            flight.queue.in_flight -= len(flight.calls)
        return flight

    def _on_reply(self, worker: Worker, message: Any) -> None:
        flight = self._take_flight(worker)
        if flight is None or not isinstance(message, list) or message[1] != flight.batch_id:
            logger.error("[%s] answered a batch it was not given; stopping it", worker.label)
            worker.kill()
            return
        queue, calls, now = flight.queue, flight.calls, time.monotonic()
        queue.record_batch(flight.rows, now - flight.sent_at)
        self._batch_times.setdefault(queue.spec.name, RecentBatchTimes()).observe(
            now - flight.sent_at
        )
        queue.warn_if_over_budget(self.name)
        if message[0] == "ok":
            deliver(flight, message[2], self.name, worker.id)
        else:
            fail_batch(
                queue, calls, batch_error(message[2], message[3], self.name, queue.spec.name)
            )
        self._idle.append(worker)
        if len(calls) > 1 or self._next_queue() is not None:
            self._schedule_dispatch()
        self._check_drained()

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

    def _on_hang(self, worker: Worker) -> None:
        """Kill a worker whose batch has run past its hang limit; re-arm for a batch sent
        later; drop the timer if the worker is idle (its next batch arms it again)."""
        worker.hang_timer = None
        flight: Flight | None = worker.batch
        if flight is None:
            return
        limit = self._hang_limit_s(flight.queue.spec.name)
        left = flight.sent_at + limit - time.monotonic()
        if left > 0.0:
            self._arm_hang_timer(worker, left)
            return
        logger.error(
            "[%s] held a batch of %s longer than its hang limit of %.3g s; stopping it",
            worker.label,
            flight.queue.spec.name,
            limit,
        )
        worker.hung = True
        worker.kill()

    def _on_lost(self, worker: Worker) -> None:
        self._cancel_hang_timer(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        flight = self._take_flight(worker)
        if flight is not None:
            worker.died_holding_call = True
            how = "hung and was stopped" if worker.hung else "died"
            error = PoisonCall(
                f"this call crashed two workers (the last, worker {worker.id}, {how} while "
                "running it); it is not retried",
                runner=self.name,
                method=flight.queue.spec.name,
            )
            retry = survivors_of_crash(flight.calls, error)
            flight.queue.requeue(retry, solo=len(flight.calls) > 1)
        self._dispatch()
        self._check_drained()

    def _on_ready(self, worker: Worker) -> None:
        if not self._queues:
            self._queues = admission.build_queues(worker.ready.result()[2], self._config)
        self._idle.append(worker)
        if self._state is not PoolState.STARTING:
            self._dispatch()

    def _on_gave_up(self) -> None:
        sup = self._supervisor
        if sup is not None and not sup.workers and not sup.starting:
            admission.fail_queued(self._queues, admission.no_worker_error(None, self.name))

    def _check_drained(self) -> None:
        if self._state is PoolState.DRAINING and all(
            not q.queue and not q.in_flight for q in self._queues.values()
        ):
            self._drained.set()
