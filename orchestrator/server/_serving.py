"""The graphs one server serves: their lifecycle, readiness and in-flight bounds.

Each graph's pools are started by a task the app's lifespan owns, so the server
listens (and ``/livez`` answers) while models load, and ``/readyz`` turns 200
only once every pool has a ready worker. On shutdown the lifespan runs after
uvicorn has drained accepted requests; the tasks then leave their graphs'
``async with`` blocks, which stops the pools.

Readiness is per runner: a runner is ready while it has a worker that is alive
and not hung; a graph while all its runners are. A started graph keeps taking
requests while a runner restarts a worker (they queue until it is back), so one
crash answers nothing with 503 by itself. A request past a graph's in-flight
bound is refused before its body is read, with two plain ASGI messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import GraphClosed, GraphctlError
from orchestrator.graph import Graph
from orchestrator.running import Tracer
from orchestrator.running._trace import Tee
from orchestrator.server._deadlines import shorter_timeout_ms
from orchestrator.server._errors import HttpError, classify, error_body
from orchestrator.server._metrics import Metrics
from runners.errors import Overloaded, RunnerError
from runners.lifecycle import Lifecycle
from runners.types import PoolStats

log = logging.getLogger("graphctl.serve")

DEFAULT_MAX_INFLIGHT = 256
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a request cancelled before its answer
RESERVED_NAMES = frozenset({"v2", "livez", "readyz", "metrics", "docs", "redoc", "openapi.json"})


@dataclass
class Slot:
    """One served graph and its request accounting (touched only on the event loop)."""

    graph: Graph
    max_inflight: int
    inflight: int = 0
    error: BaseException | None = None  # why its start failed

    @property
    def state(self) -> Lifecycle:
        """Where the graph is in its life (its ``async with`` block is held by ``_hold``)."""
        return self.graph.state

    def not_ready(self) -> dict[str, str]:
        """Runner name -> why it is not ready (empty when the graph is ready)."""
        if self.error is not None:
            return {"*": f"failed to start: {self.error}"}
        if not self.state.accepts_work:
            why = self.state.value
            return {runner: why for runner in self.graph.plan.runners} or {"*": why}
        return {
            runner: reason
            for runner, pool in self.graph.stats().items()
            if (reason := runner_not_ready(pool))
        }

    def busy_response(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ASGI messages refusing a request past ``max_inflight`` (no response
        object: a plain body with the request's id)."""
        message = (
            f"graph {self.graph.name!r} already has its limit of {self.max_inflight} "
            "requests in flight"
        )
        body = error_body(message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
        ]
        return (
            {"type": "http.response.start", "status": 503, "headers": headers},
            {"type": "http.response.body", "body": body},
        )


def runner_not_ready(pool: PoolStats) -> str:
    """Why a runner is not ready, or ``""`` while it has a live worker that is not hung."""
    if not pool.healthy:
        return "unhealthy: workers fail to start"
    if pool.ready_workers >= 1:
        return ""
    if pool.hung_workers:
        return f"hung: {pool.hung_workers} of {pool.workers} workers hold a batch far too long"
    if pool.endpoints:
        return "no reachable worker host: " + ", ".join(e.endpoint for e in pool.endpoints)
    return f"no ready worker: {pool.workers - pool.ready_workers} of {pool.workers} restarting"


class Served:
    """Every graph of one app, by name, with the app's metrics."""

    def __init__(
        self, graphs: Sequence[Graph], *, max_inflight: int, expose_errors: bool = False
    ) -> None:
        if max_inflight < 1:
            raise GraphctlError(f"max_inflight must be >= 1, got {max_inflight}")
        self.slots: dict[str, Slot] = {}
        for graph in graphs:
            if graph.name in self.slots:
                raise GraphctlError(f"two graphs are named {graph.name!r}; names must be unique")
            if graph.name in RESERVED_NAMES:
                raise GraphctlError(f"graph name {graph.name!r} is reserved by the server")
            self.slots[graph.name] = Slot(graph, max_inflight)
        # Each graph's ``POST`` route, by path: the one place that says it is ``/{name}``.
        self.paths: dict[str, str] = {f"/{name}": name for name in self.slots}
        self.metrics = Metrics(self.pool_stats)
        self.expose_errors = expose_errors
        self._tracers: dict[str, Tracer] = {
            name: self.metrics.node_timer(name) for name in self.slots
        }

    def trace_with(self, tracer: Tracer) -> None:
        """Send every request's node spans to ``tracer`` too (OpenTelemetry)."""
        self._tracers = {name: Tee(self.metrics.node_timer(name), tracer) for name in self.slots}

    def pool_stats(self) -> dict[str, Mapping[str, PoolStats]]:
        """Every started graph's pool stats, for the metrics collector."""
        return {name: s.graph.stats() for name, s in self.slots.items() if s.state.accepts_work}

    def not_ready(self) -> dict[str, dict[str, str]]:
        """Graph -> runner -> reason, for every graph not ready."""
        report = {name: slot.not_ready() for name, slot in self.slots.items()}
        return {name: reasons for name, reasons in report.items() if reasons}

    def refusal(self, name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The 503 when graph ``name`` is at its in-flight bound, else ``None``:
        cheap enough that refusing does not starve the requests being served."""
        slot = self.slots[name]
        if slot.inflight < slot.max_inflight:
            return None
        return slot.busy_response()  # counted by RequestLog, as every answer

    async def call(
        self,
        name: str,
        route: str,
        inputs: Mapping[str, Any],
        *,
        bad_request_status: int = 422,
        timeout_ms: float | None = None,
        on_chunk: Callable[[str, Any], None] | None = None,
    ) -> dict[str, Any] | HttpError:
        """Run one request through graph ``name``: its outputs, or the HTTP error to answer.

        ``timeout_ms`` is the caller's deadline: it can only shorten the graph's.
        ``RequestLog`` counts the request as it is answered (499 when its client
        disconnected while it ran).
        """
        slot = self.slots[name]
        start = time.perf_counter()
        try:
            return await self._run(slot, inputs, self._tracers[name], timeout_ms, on_chunk)
        except Exception as error:  # every failure becomes an HTTP answer, never a traceback
            failure = classify(
                error, bad_request_status=bad_request_status, expose=self.expose_errors
            )
            if failure.status >= 500 and failure.status != 503:
                _log_failure(name, route, error, failure)
            return failure
        except asyncio.CancelledError:
            log.info(
                "graph %r: request cancelled after %.0f ms, before its answer "
                "(its client disconnected)",
                name,
                (time.perf_counter() - start) * 1000,
            )
            raise

    async def _run(
        self,
        slot: Slot,
        inputs: Mapping[str, Any],
        trace: Tracer,
        timeout_ms: float | None,
        on_chunk: Callable[[str, Any], None] | None = None,
    ) -> dict[str, Any]:
        if not slot.state.accepts_work:  # a restarting runner queues calls until it is back
            raise GraphClosed(f"graph {slot.graph.name!r} is not ready yet")
        if slot.inflight >= slot.max_inflight:
            raise Overloaded(
                f"graph {slot.graph.name!r} already has {slot.inflight} requests in flight"
            )
        slot.inflight += 1
        try:
            deadline_ms = shorter_timeout_ms(slot.graph.plan.timeout_ms, timeout_ms)
            return await slot.graph.run(
                inputs, trace=trace, timeout_ms=deadline_ms, on_chunk=on_chunk
            )
        finally:
            slot.inflight -= 1

    @asynccontextmanager
    async def running(self, on_ready: Callable[[], None] | None = None) -> AsyncIterator[None]:
        """Start every graph in the background; stop them all when the block ends."""
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            holders = [group.create_task(_hold(slot, stop)) for slot in self.slots.values()]
            announcer = group.create_task(_announce(self, holders, on_ready))
            try:
                yield
            finally:
                stop.set()
                announcer.cancel()
                for slot, task in zip(self.slots.values(), holders, strict=True):
                    if not slot.state.accepts_work:
                        task.cancel()  # still starting: cancelling stops what started


def _log_failure(graph: str, route: str, error: Exception, failure: HttpError) -> None:
    """One log line with the full text of a failed request; a traceback only for
    an error of graphctl's own code (a user's error is logged by its message)."""
    unexpected = not isinstance(error, GraphctlError | RunnerError)
    log.warning(
        "graph %r (%s request) answered %d: %s",
        graph,
        route,
        failure.status,
        failure.log_text or failure.message,
        exc_info=error if unexpected else None,
    )


async def _hold(slot: Slot, stop: asyncio.Event) -> None:
    """Own one graph's ``async with`` block from start until ``stop``."""
    try:
        async with slot.graph:
            await stop.wait()
    except Exception as error:  # reported by /readyz; the other graphs keep serving
        slot.error = error
        log.error("graph %r failed to start: %s", slot.graph.name, error)


async def _announce(
    served: Served, holders: list[asyncio.Task[None]], on_ready: Callable[[], None] | None
) -> None:
    """Call ``on_ready`` once every graph is ready (polled: pools have no ready event)."""
    while served.not_ready():
        if all(task.done() for task in holders):
            return
        await asyncio.sleep(0.05)
    if on_ready is not None:
        on_ready()
