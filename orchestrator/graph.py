"""The Python API: a compiled graph with its runner pools, as an async context manager.

    async with orchestrator.load("graphs/diamond.yaml") as graph:
        out = await graph.run({"x": [...]})

Entering starts one worker pool per runner (all concurrently) and waits until
each is ready; leaving stops them. ``run_sync`` does all of it for one request.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from orchestrator._inputs import validate_inputs
from orchestrator.errors import GraphClosed, GraphctlError
from orchestrator.plan import Plan
from orchestrator.running import Executor, Tracer
from runners.config import RunnerConfig
from runners.lifecycle import AsyncLifecycle, Lifecycle
from runners.resources import spread_gpus
from runners.types import PoolStats, RunnerClient

ClientFactory = Callable[[RunnerConfig], RunnerClient]

# Sync functions run in this many threads per graph: enough to overlap a few
# CPU-light functions of concurrent requests, few enough not to oversubscribe.
DEFAULT_FUNCTION_THREADS = min(32, (os.cpu_count() or 1) + 4)


# A graph's lifecycle is the runners' (NEW, STARTING, READY, DRAINING, CLOSED),
# under the name the orchestrator's API has always given it.
GraphState = Lifecycle


class Graph(AsyncLifecycle):
    """A compiled graph and one runner client per runner; use it with ``async with``."""

    def __init__(
        self,
        plan: Plan,
        *,
        client_factory: ClientFactory | None = None,
        function_threads: int = DEFAULT_FUNCTION_THREADS,
    ) -> None:
        factory = client_factory or _worker_pool
        self.plan = plan
        self.state = GraphState.NEW
        configs = spread_gpus(list(plan.runners.values()))  # runners start on different GPUs
        self._clients: dict[str, RunnerClient] = {
            name: factory(config) for name, config in zip(plan.runners, configs, strict=True)
        }
        self._function_threads = function_threads
        self._threads: ThreadPoolExecutor | None = None
        self._executor: Executor | None = None

    @property
    def name(self) -> str:
        """The graph's name (``metadata.name``)."""
        return self.plan.name

    @property
    def ready(self) -> bool:
        """True while the graph accepts requests and every runner has a ready worker."""
        return self.state.accepts_work and all(c.ready for c in self._clients.values())

    @property
    def clients(self) -> Mapping[str, RunnerClient]:
        """The runner clients by runner name (for stats and direct calls)."""
        return self._clients

    def stats(self) -> dict[str, PoolStats]:
        """A snapshot of every runner's pool, by runner name."""
        return {name: client.stats() for name, client in self._clients.items()}

    async def start(self) -> None:
        """Start every runner's pool (concurrently); ``async with`` calls it."""
        if self.state is not GraphState.NEW:
            raise GraphClosed(f"graph {self.name!r} was already started; load it again")
        self.state = GraphState.STARTING
        self._threads = ThreadPoolExecutor(
            max_workers=self._function_threads, thread_name_prefix=f"graphctl-{self.name}"
        )
        try:
            await self._start_clients()
        except BaseException:
            await self.stop()
            raise
        self._executor = Executor(self.plan, self._clients, threads=self._threads)
        self.state = GraphState.READY

    async def _start_clients(self) -> None:
        # Every start runs to its end, even when another fails: a pool cancelled
        # half-way through spawning workers is harder to stop cleanly than a
        # started one. The first failure is raised once all have settled.
        results = await asyncio.gather(
            *(client.start() for client in self._clients.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def stop(self) -> None:
        """Stop every runner's pool; the graph is closed for good."""
        self.state = GraphState.DRAINING  # the pools finish the calls they accepted
        try:
            async with asyncio.TaskGroup() as group:
                for client in self._clients.values():
                    group.create_task(client.stop())
        except BaseExceptionGroup as errors:
            raise _unwrap(errors) from None
        finally:
            self.state = GraphState.CLOSED
            if self._threads is not None:
                self._threads.shutdown(wait=False, cancel_futures=True)

    async def run(
        self,
        inputs: Mapping[str, Any],
        *,
        timeout_ms: float | None = None,
        trace: Tracer | None = None,
        on_chunk: Callable[[str, Any], None] | None = None,
    ) -> dict[str, Any]:
        """Run one request; returns the graph's outputs by name.

        ``timeout_ms`` overrides the graph's deadline; ``trace`` records one span
        per node; ``on_chunk(output, chunk)`` hears each chunk of a ``stream: true``
        output as it comes (its value in the outputs is the list of its chunks).
        Raises ``RequestError`` for bad inputs, ``NodeFailed``,
        ``DeadlineExceeded`` or ``SkippedOutput``.
        """
        if not self.state.accepts_work or self._executor is None:
            raise GraphClosed(
                f"graph {self.name!r} is {self.state.value}: run it inside 'async with'"
            )
        values = validate_inputs(self.plan, inputs)
        request_trace = trace.request(self.name) if trace is not None else None
        return await self._executor.run(
            values, timeout_ms=timeout_ms, trace=request_trace, on_chunk=on_chunk
        )

    def __repr__(self) -> str:
        return f"<Graph {self.name!r} {self.state.value}>"


def load(
    path: str | os.PathLike[str],
    *,
    local: bool = False,
    client_factory: ClientFactory | None = None,
    config: str | os.PathLike[str] | None = None,
    sets: Sequence[str] = (),
) -> Graph:
    """Compile a graph file into a ``Graph`` (not started: use ``async with``).

    ``local=True`` runs every runner in this process (no worker processes), so a
    breakpoint in a Runnable works; ``client_factory`` plugs in any runner client.
    ``config`` (a deploy-time YAML file) and ``sets`` (``runners.NAME.KEY=VALUE``)
    override runner settings, validated like the graph itself.
    """
    from orchestrator.compiling import apply_overrides, compile_file

    plan = apply_overrides(compile_file(Path(path)), config, sets)
    if local and client_factory is None:
        client_factory = _local_client
    return Graph(plan, client_factory=client_factory)


def run_sync(
    path: str | os.PathLike[str],
    inputs: Mapping[str, Any],
    *,
    timeout_ms: float | None = None,
    local: bool = False,
) -> dict[str, Any]:
    """Start the graph, run one request, stop it: for scripts and notebooks."""

    async def once() -> dict[str, Any]:
        async with load(path, local=local) as graph:
            return await graph.run(inputs, timeout_ms=timeout_ms)

    return asyncio.run(once())


def _worker_pool(config: RunnerConfig) -> RunnerClient:
    """Local worker processes, or, for a runner with ``endpoints``, connections to its
    worker hosts, proven with the token in ``GRAPHCTL_WORKER_TOKEN``."""
    from runners.pool import WorkerPool

    if not config.endpoints:
        return WorkerPool(config)
    from runners.remote import TOKEN_ENV, RemoteWorkers

    token = os.environ.get(TOKEN_ENV, "")
    remote: RunnerClient = WorkerPool(
        config, workers=functools.partial(RemoteWorkers, config, token=token)
    )
    return remote


def _local_client(config: RunnerConfig) -> RunnerClient:
    try:
        from runners.local import LocalClient
    except ImportError as error:
        raise GraphctlError(f"local mode is not available: {error}") from None
    client: RunnerClient = LocalClient(config)
    return client


def _unwrap(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error of a task group (start-up and shutdown report one)."""
    for error in errors.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _unwrap(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return errors
