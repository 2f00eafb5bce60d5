"""A runner whose one worker is the calling process: ``graphctl run --local`` and
``orchestrator.load(..., local=True)``, so a breakpoint in a Runnable works.

    async with LocalClient(config) as client:
        result = await client.submit("predict", (x,), {})

``LocalClient`` is a ``WorkerPool`` (the same queues, admission, messages, batching,
retry of a failing batch item by item, dispatch order and stats) whose worker is
an ``InProcessWorker``: sync methods run in one dedicated thread (the event loop
stays free), async methods on the loop, and every batch and answer crosses the
data-only codec, so values look exactly as they would coming from a worker
process. Each batch binds its calls' request ids and trace ids as log fields
(also in the method thread) and, when this process traces (a global OpenTelemetry
provider, as ``graphctl`` sets), gets its batch span as a worker process does.
It cannot crash apart from this process, so it is never restarted, and a batch
past its hang limit is only reported (a thread cannot be stopped). The runner's
``env`` is not applied: this process's environment is shared.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runners import codec, log_context, otel
from runners.call_context import CallContext
from runners.config import RunnerConfig
from runners.errors import RunnerStartupError, UnsupportedValue
from runners.pool import WorkerPool
from runners.replies import (
    batch_log_fields,
    batch_span,
    error_reply,
    load_runnable,
    method_table,
    no_method_reply,
    runnable_settings,
    value_reply,
)
from runners.runnable import MethodSpec, runnable_methods
from runners.streaming import answer_stream, refuse_undeclared
from runners.transport import WorkerEvents
from runners.types import EndpointStats

logger = logging.getLogger("runners.local")

# batch id, method, args, kwargs, call contexts
Call = tuple[int, str, list[Any], dict[str, Any], list[CallContext]]


class LocalClient(WorkerPool):
    """A ``RunnerClient`` whose single worker is this process."""

    def __init__(self, config: RunnerConfig, *, stop_timeout_s: float = 5.0) -> None:
        super().__init__(
            config,
            stop_timeout_s=stop_timeout_s,
            workers=functools.partial(InProcessWorkers, config, stop_timeout_s=stop_timeout_s),
        )


class InProcessWorker:
    """A ``runners.transport.Worker`` that runs batches in this process, one at a time."""

    def __init__(
        self,
        runner: str,
        instance: Any,
        thread: ThreadPoolExecutor,
        events: WorkerEvents,
    ) -> None:
        self.id = 0
        self.load = 0  # only its pool uses it
        self.label = f"{runner}/local"
        self.pid: int | None = None  # this process: its figures are the server's own
        self.takes_joins = True  # it is never drained
        self.methods: Mapping[str, MethodSpec] = runnable_methods(type(instance))
        self._runner = runner
        self._table: dict[str, Callable[..., Any]] = method_table(instance)
        self._thread = thread
        self._events = events
        self._inbox: asyncio.Queue[Call | None] = asyncio.Queue()
        self._spans: otel.BatchSpans | None = None  # made at the first traced batch
        # streaming batch id -> the pool's stop and join frames not yet read, from
        # when the batch is sent until it is answered
        self._pool_frames: dict[int, list[list[Any]]] = {}

    def send_batch(
        self,
        batch_id: int,
        method: str,
        args: list[Any],
        kwargs: Any,
        contexts: Sequence[CallContext] = (),
    ) -> None:
        frame = codec.call_frame(batch_id, method, args, kwargs, contexts, runner=self._runner)
        _, batch_id, method, args, kwargs, contexts = codec.roundtrip(frame)
        spec = self.methods.get(method)
        if spec is not None and spec.stream:  # stops and joins sent before it runs are kept
            self._pool_frames[batch_id] = []
        self._inbox.put_nowait((batch_id, method, args, kwargs, list(contexts)))

    def stop_item(self, batch_id: int, index: int) -> None:
        frames = self._pool_frames.get(batch_id)
        if frames is not None:
            frames.append(["stop", batch_id, index])

    def join_items(self, batch_id: int, args: list[Any], kwargs: Any) -> None:
        """As a worker process would read it; left unread (so never acknowledged)
        when the batch is no longer running."""
        frame = codec.roundtrip(codec.encode(["join", batch_id, args, kwargs], runner=self._runner))
        frames = self._pool_frames.get(batch_id)
        if frames is not None:
            frames.append(frame)

    def kill(self) -> None:
        logger.error("[%s] a method running in this process cannot be stopped", self.label)

    def close(self) -> None:
        """Exit once the batch running now (if any) is answered."""
        self._inbox.put_nowait(None)

    async def serve(self) -> None:
        """Run batches in arrival order until ``close()``; then the worker is lost."""
        try:
            with log_context.bound(runner=self._runner, worker=self.id):
                while (call := await self._inbox.get()) is not None:
                    with batch_log_fields(call[4]):
                        reply = await self._answer(*call)
                    self._pool_frames.pop(call[0], None)  # its batch ended: joins left unread
                    self._events.on_reply(self, codec.roundtrip(reply))
        finally:
            self._thread.shutdown(wait=False, cancel_futures=True)
            self._events.on_lost(self)

    async def _answer(
        self,
        batch_id: int,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any],
        contexts: list[CallContext],
    ) -> list[Any]:
        func = self._table.get(method)
        if func is None:
            return no_method_reply(batch_id, method)
        try:
            with batch_span(self._batch_spans(contexts), batch_id, method, contexts):
                if inspect.iscoroutinefunction(func):
                    value = await func(*args, **kwargs)
                else:  # in the method thread, with this batch's log fields and span
                    value = await self._in_thread(functools.partial(func, *args, **kwargs))
                if inspect.isgenerator(value) or inspect.isasyncgen(value):
                    spec = self.methods[method]
                    if not spec.stream:
                        await refuse_undeclared(value, method, self._in_thread)
                    return await self._stream(value, spec, (batch_id, method, args, kwargs))
        except Exception as exc:  # logged once with its traceback, as a worker process does
            if not isinstance(exc, UnsupportedValue):
                logger.error("[%s] %s raised", self.label, method, exc_info=True)
            return error_reply(batch_id, exc)
        return value_reply(batch_id, value, self._runner, method)

    async def _in_thread(self, step: Callable[[], Any]) -> Any:
        """Run ``step`` in the method thread, in this task's context (log fields, span)."""
        run = functools.partial(contextvars.copy_context().run, step)
        return await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def _stream(
        self, gen: Any, spec: MethodSpec, call: tuple[int, str, list[Any], dict[str, Any]]
    ) -> list[Any]:
        """Run a streaming batch, its steps answered as a worker process answers them."""
        batch_id, method = call[0], call[1]
        received = self._pool_frames.setdefault(batch_id, [])

        def emit(frame: list[Any]) -> None:
            encoded = codec.encode(frame, runner=self._runner, method=method)
            self._events.on_reply(self, codec.roundtrip(encoded))

        def poll() -> list[list[Any]]:
            taken = list(received)
            received.clear()
            return taken

        error = await answer_stream(gen, spec, call, emit, poll, self._in_thread)
        return error if error is not None else codec.encode(["ok", batch_id, None])

    def _batch_spans(self, contexts: Sequence[CallContext]) -> otel.BatchSpans | None:
        """Spans through this process's global provider, looked up only once a call
        carries a trace parent (nothing is imported while the caller does not trace)."""
        if self._spans is None and any("traceparent" in c for c in contexts):
            self._spans = otel.global_batch_spans(self._runner)
        return self._spans


class InProcessWorkers:
    """The ``runners.transport.Workers`` of a local runner: one ``InProcessWorker``."""

    slots = 1
    restarts = 0
    healthy = True
    starting = 0

    def __init__(
        self, config: RunnerConfig, events: WorkerEvents, *, stop_timeout_s: float = 5.0
    ) -> None:
        self._config = config
        self._events = events
        self._stop_timeout_s = stop_timeout_s
        self._worker: InProcessWorker | None = None
        self._closing = asyncio.Event()

    @property
    def live(self) -> int:
        return 0 if self._worker is None else 1

    async def start(self) -> None:
        """Import and construct the Runnable in the method thread, as a worker would."""
        config = self._config
        thread = ThreadPoolExecutor(1, thread_name_prefix=f"graphctl-{config.name}")
        try:
            instance = await asyncio.get_running_loop().run_in_executor(
                thread, load_runnable, runnable_settings(config)
            )
        except Exception as exc:
            thread.shutdown(wait=False)
            raise RunnerStartupError(
                f"worker 0 could not start {config.runnable}: {type(exc).__name__}: {exc}",
                runner=config.name,
            ) from exc
        self._worker = InProcessWorker(config.name, instance, thread, self._events)
        self._events.on_ready(self._worker)

    async def run(self) -> None:
        """Serve until ``close()``; a batch still running ``stop_timeout_s`` later is
        abandoned (its caller is cancelled)."""
        worker = self._worker
        assert worker is not None
        async with asyncio.TaskGroup() as group:
            serving = group.create_task(worker.serve(), name=worker.label)
            await self._closing.wait()
            worker.close()
            done, _ = await asyncio.wait([serving], timeout=self._stop_timeout_s)
            if not done:
                logger.warning("[%s] a batch still running at shutdown is abandoned", worker.label)
                serving.cancel()
        self._worker = None

    def close(self) -> None:
        self._closing.set()

    def endpoints(self, in_flight: Mapping[int, int]) -> list[EndpointStats]:
        return []
