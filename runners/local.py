"""Run a runner inside the calling process: ``graphctl run --local`` and
``orchestrator.load(..., local=True)``, so a breakpoint in a Runnable works.

    async with LocalClient(config) as client:
        result = await client.submit("predict", (x,), {})

Same semantics as a worker pool with one worker: a bounded queue per method,
work-conserving batches of up to ``max_batch_size`` rows merged as
``runners.merging`` says (the pure functions of ``runners.batcher``), deadlines and
``max_latency_ms`` drop queued calls, a failing batch is retried item by item,
and arguments and results cross the same data-only codec, so values look
exactly as they would coming back from a worker. Sync methods run in one
dedicated thread (the event loop stays free); async methods run on the loop.
The runner's ``env`` is not applied: this process's environment is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runners import codec
from runners.batcher import (
    MethodQueue,
    PendingCall,
    batch_rows,
    predicted_wait_s,
    take_batch,
)
from runners.config import RunnerConfig
from runners.errors import (
    CallTimeout,
    MethodError,
    Overloaded,
    PoolClosed,
    RunnerError,
    RunnerStartupError,
)
from runners.lifecycle import AsyncLifecycle
from runners.merging import merge_inputs, split_outputs
from runners.runnable import MethodSpec, runnable_methods
from runners.types import Args, CallResult, Kwargs, PoolStats

logger = logging.getLogger("runners.local")


def _through_codec(value: Any, runner: str, method: str) -> Any:
    """``value`` as a worker would see it (or send it back): data only, tuples as lists."""
    chunks = codec.encode(value, runner=runner, method=method)
    data = memoryview(b"".join(bytes(memoryview(c)) for c in chunks))
    assembler, frames = codec.FrameAssembler(), []
    while data:
        target = assembler.get_buffer()
        n = min(len(target), len(data))
        target[:n] = data[:n]
        data = data[n:]
        frames += assembler.advance(n)
    header, buffers = frames[0]
    return codec.decode(header, buffers)


def effective_methods(cls: type, config: RunnerConfig) -> dict[str, MethodSpec]:
    """The class's ``@method``s with the config's batching overrides."""
    return {name: config.method_spec(spec) for name, spec in runnable_methods(cls).items()}


class LocalClient(AsyncLifecycle):
    """A ``RunnerClient`` whose single worker is this process."""

    def __init__(self, config: RunnerConfig) -> None:
        self._config = config
        self._queues: dict[str, MethodQueue] = {}
        self._instance: Any = None
        self._thread: ThreadPoolExecutor | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._closed = False
        self._next_batch = 0

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def ready(self) -> bool:
        return self._dispatcher is not None and not self._closed

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        return {name: q.spec for name, q in self._queues.items()}

    async def start(self) -> None:
        """Import and construct the Runnable (in the method thread), then serve."""
        if self._dispatcher is not None or self._closed:
            raise PoolClosed("a local runner starts once", runner=self.name)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"graphctl-{self.name}")
        loop = asyncio.get_running_loop()
        cls = self._import_class()
        try:
            self._instance = await loop.run_in_executor(
                self._thread, lambda: cls(**dict(self._config.init))
            )
        except Exception as error:
            self._thread.shutdown(wait=False)
            raise RunnerStartupError(
                f"{self._config.runnable}({', '.join(self._config.init)}) raised"
                f" {type(error).__name__}: {error}",
                runner=self.name,
            ) from error
        self._queues = {
            name: MethodQueue(spec, self._config.batching_for(name), self._config.max_queue)
            for name, spec in effective_methods(cls, self._config).items()
        }
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"local-{self.name}")

    def _import_class(self) -> type:
        module_name, _, class_name = self._config.runnable.partition(":")
        search = str(self._config.search_path) if self._config.search_path else None
        if search and search not in sys.path:
            sys.path.insert(0, search)
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise RunnerStartupError(
                f"cannot import {self._config.runnable}: {error}", runner=self.name
            ) from None
        if not isinstance(cls, type):
            raise RunnerStartupError(f"{self._config.runnable} is not a class", runner=self.name)
        return cls

    async def stop(self) -> None:
        """Refuse new calls, fail the queued ones, finish the running batch."""
        self._closed = True
        for name, queue in self._queues.items():
            while queue.queue:
                call = queue.queue[0]
                queue.discard(call)
                if not call.future.done():
                    call.future.set_exception(
                        PoolClosed("the runner stopped", runner=self.name, method=name)
                    )
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.shutdown)

    def stats(self) -> PoolStats:
        return PoolStats(
            runner=self.name,
            workers=1,
            ready_workers=1 if self.ready else 0,
            restarts=0,
            healthy=not self._closed,
            methods={name: q.snapshot() for name, q in self._queues.items()},
        )

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        return (await self.submit(method, args, kwargs)).value

    async def submit(
        self, method: str, args: Args, kwargs: Kwargs, *, deadline: float | None = None
    ) -> CallResult:
        return (await self.submit_many(method, [(args, kwargs)], deadline=deadline))[0]

    async def submit_many(
        self, method: str, calls: Sequence[tuple[Args, Kwargs]], *, deadline: float | None = None
    ) -> list[CallResult]:
        """Enqueue every call at once (a ``map`` fan-out shares batches), await all."""
        queue = self._queue(method)
        items = [  # converted first: an unsupported value fails the call before enqueueing
            (
                tuple(_through_codec(list(a), self.name, method)),
                _through_codec(dict(k), self.name, method),
            )
            for a, k in calls
        ]
        self._admit(queue, len(items), deadline)
        pending = [self._enqueue(queue, args, kwargs, deadline) for args, kwargs in items]
        self._wakeup.set()
        try:
            return list(await asyncio.gather(*(p.future for p in pending)))
        except BaseException:
            for call in pending:  # cancelled, or a sibling failed: drop what is still queued
                queue.discard(call)
                call.future.cancel()
            raise

    def _queue(self, method: str) -> MethodQueue:
        if self._closed or self._dispatcher is None:
            raise PoolClosed("the runner is not running", runner=self.name, method=method)
        queue = self._queues.get(method)
        if queue is None:
            raise MethodError(
                f"no method {method!r}; methods: {', '.join(sorted(self._queues))}",
                error_type="AttributeError",
                runner=self.name,
                method=method,
            )
        return queue

    def _admit(self, queue: MethodQueue, count: int, deadline: float | None) -> None:
        name = queue.spec.name
        if len(queue.queue) + count > queue.max_queue:
            queue.rejected += count
            raise Overloaded(f"queue full ({queue.max_queue} calls)", runner=self.name, method=name)
        wait = predicted_wait_s(
            len(queue.queue) + count - 1, queue.max_items, 1, queue.batch_time_s
        )
        if deadline is not None and time.monotonic() + wait > deadline:
            queue.rejected += count
            raise Overloaded(
                f"predicted wait {wait:.3f}s is past the deadline",
                runner=self.name,
                method=name,
                retry_after_s=max(wait, 0.001),
            )

    def _enqueue(
        self, queue: MethodQueue, args: Args, kwargs: Kwargs, deadline: float | None
    ) -> PendingCall:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        call = PendingCall(args, kwargs, loop.create_future(), now)
        limit = now + queue.batching.max_latency_ms / 1000.0
        call.timer = loop.call_at(
            loop.time() + (min(limit, deadline or limit) - now), self._expire, queue, call
        )
        queue.queue.append(call)
        queue.calls += 1
        return call

    def _expire(self, queue: MethodQueue, call: PendingCall) -> None:
        call.timer = None
        if call.queued:
            queue.discard(call)
            queue.timed_out += 1
            if not call.future.done():
                call.future.set_exception(
                    CallTimeout(
                        "the call waited past its deadline and never ran",
                        runner=self.name,
                        method=queue.spec.name,
                    )
                )

    async def _dispatch(self) -> None:
        """The one worker: whenever a queue holds calls, run the next batch now."""
        while True:
            queue = next((q for q in self._queues.values() if q.queue), None)
            if queue is None:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = take_batch(queue.queue, queue.max_items, queue.spec)
            for call in batch:  # popped by take_batch: only their deadline timers remain
                call.queued = False
                queue.discard(call)
            await self._run_batch(queue, batch)
            # Round robin: the queue just served goes last among the methods.
            self._queues[queue.spec.name] = self._queues.pop(queue.spec.name)

    async def _run_batch(self, queue: MethodQueue, batch: list[PendingCall]) -> None:
        spec, started = queue.spec, time.monotonic()
        self._next_batch += 1
        batch_id = self._next_batch
        queue.in_flight += len(batch)
        try:
            values = await self._invoke(spec, batch)
        except RunnerError as error:
            self._fail_or_retry(queue, batch, error)
            return
        finally:
            queue.in_flight -= len(batch)
        rows = batch_rows(batch, spec)
        queue.record_batch(rows, time.monotonic() - started)
        for call, value in zip(batch, values, strict=True):
            wait = started - call.enqueued_at
            queue.queue_wait_s_sum += wait
            if not call.future.done():
                call.future.set_result(CallResult(value, wait, batch_id, rows, 0))

    async def _invoke(self, spec: MethodSpec, batch: list[PendingCall]) -> list[Any]:
        args, kwargs = merge_inputs(batch, spec)
        bound = getattr(self._instance, spec.name)
        try:
            if inspect.iscoroutinefunction(bound):
                value = await bound(*args, **kwargs)
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(self._thread, lambda: bound(*args, **kwargs))
        except Exception as error:  # logged once with its traceback, as a worker does
            logger.error("[%s/local] %s raised", self.name, spec.name, exc_info=True)
            raise MethodError(
                str(error), error_type=type(error).__name__, runner=self.name, method=spec.name
            ) from error
        value = _through_codec(value, self.name, spec.name)
        rows = [call.rows for call in batch] if spec.batchable else [1]
        return split_outputs(value, rows, spec, self.name)

    def _fail_or_retry(
        self, queue: MethodQueue, batch: list[PendingCall], error: Exception
    ) -> None:
        if len(batch) > 1:  # one bad item must not fail its neighbours: retry each alone
            for call in reversed(batch):
                call.solo, call.queued = True, True
                queue.queue.appendleft(call)
            return
        if not batch[0].future.done():
            batch[0].future.set_exception(error)
