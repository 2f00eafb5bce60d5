"""Supervision of a runner's worker processes: ping idle workers, notice a worker
gone, reap it, restart it after an exponential backoff. Consecutive start-up
failures stop the restarts and mark the runner unhealthy.

    supervisor = Supervisor(config, envs, events)   # events: the pool
    await supervisor.start()                        # every worker READY, or an error
    run = asyncio.create_task(supervisor.run())     # one task per slot, in a TaskGroup
    supervisor.close(); await run                   # workers exit at EOF, are reaped

A worker that died while running a call is restarted without growing the
backoff: the call is to blame (the pool fails it for good after a second
crash), not the runner, and the runner's other calls should not wait for it.
What a worker holds and how long it may hold it is the pool's business; the
supervisor tells it what happens through ``runners.transport.WorkerEvents``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from runners.config import RunnerConfig, SupervisionConfig
from runners.errors import RunnerStartupError
from runners.process import ProcessWorker, spawn
from runners.transport import WorkerEvents, until_closed_or
from runners.types import EndpointStats

logger = logging.getLogger("runners.worker")

SHORT_LIFE_S = 2.0  # a worker dying sooner than this counts toward a crash loop


class Supervisor:
    """Keeps ``len(envs)`` worker processes alive (``runners.transport.Workers``)."""

    def __init__(
        self,
        config: RunnerConfig,
        envs: list[dict[str, str]],
        events: WorkerEvents,
        *,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self.config = config
        self.envs = envs
        self.restarts = 0
        self.healthy = True
        self.starting = 0  # slots between a death and their next READY
        self.workers: dict[int, ProcessWorker] = {}  # live workers by id
        self._events = events
        self._timings: SupervisionConfig = config.supervision
        self._stop_timeout_s = stop_timeout_s
        self._next_id = 0
        self._first: list[ProcessWorker] = []  # the workers ``start`` began with, by slot
        self._closing = asyncio.Event()

    @property
    def slots(self) -> int:
        return len(self.envs)

    @property
    def live(self) -> int:
        return len(self.workers)

    async def start(self) -> None:
        """Start a worker in every slot at once; if one fails, stop the others."""
        started = await asyncio.gather(
            *(self._start_worker(slot) for slot in range(len(self.envs))), return_exceptions=True
        )
        failure = next((r for r in started if isinstance(r, BaseException)), None)
        if failure is not None:
            self.close()
            await asyncio.gather(
                *(w.reap(self._stop_timeout_s) for w in started if isinstance(w, ProcessWorker))
            )
            raise failure
        self._first = [w for w in started if isinstance(w, ProcessWorker)]

    async def run(self) -> None:
        """Supervise every slot until ``close()``; an unexpected error in one slot
        stops the others and propagates at once."""
        async with asyncio.TaskGroup() as slots:
            for slot, worker in enumerate(self._first):
                slots.create_task(self._run_slot(slot, worker), name=worker.label)

    def close(self) -> None:
        """Stop restarting; close every worker's socket so it exits at EOF."""
        self._closing.set()
        for worker in list(self.workers.values()):
            if worker.link is not None and worker.link.transport is not None:
                worker.link.transport.close()

    def endpoints(self, in_flight: Mapping[int, int]) -> list[EndpointStats]:
        return []

    async def _start_worker(self, slot: int) -> ProcessWorker:
        worker_id, self._next_id = self._next_id, self._next_id + 1
        worker = await spawn(self.config, worker_id, self.envs[slot], self._events)
        self.workers[worker.id] = worker
        self._events.on_ready(worker)
        return worker

    async def _run_slot(self, slot: int, worker: ProcessWorker) -> None:
        """The supervision loop of one slot, until ``close()``."""
        crash_streak = 0
        while True:
            died_holding_call = await self._watch(worker)
            await worker.reap(self._stop_timeout_s)
            self.workers.pop(worker.id, None)
            if self._closing.is_set():
                return
            lived = time.monotonic() - worker.started_at
            early = lived < SHORT_LIFE_S and not died_holding_call
            crash_streak = crash_streak + 1 if early else 0
            logger.warning(
                "[%s] exited (code %s); restarting",
                worker.label,
                worker.process.returncode if worker.process else None,
            )
            replacement = await self._restart(slot, crash_streak)
            if replacement is None:
                return
            worker = replacement

    async def _watch(self, worker: ProcessWorker) -> bool:
        """Until the worker is gone or the pool closes: ping it whenever it holds no
        batch (a batch is bounded by the pool's hang limit instead). True if it was
        lost holding a batch."""
        timings = self._timings
        while not await until_closed_or(self._closing, worker.closed, timings.ping_interval_s):
            if worker.closed.is_set():
                break
            if worker.batch_id is None:
                worker.ping(timings.ping_timeout_s)
        return worker.batch_id is not None

    async def _restart(self, slot: int, crash_streak: int) -> ProcessWorker | None:
        self.starting += 1
        try:
            for failures in range(self._timings.max_start_failures):
                delay = self._timings.restart_delay_s(crash_streak + failures)
                if await until_closed_or(self._closing, None, delay):
                    return None
                try:
                    worker = await self._start_worker(slot)
                except RunnerStartupError as exc:
                    logger.error("%s", exc)
                    continue
                self.restarts += 1
                return worker
        finally:
            self.starting -= 1
        self.healthy = False
        logger.error("runner %r: workers keep failing to start; giving up", self.config.name)
        self._events.on_gave_up()
        return None
