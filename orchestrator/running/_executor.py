"""Request execution: one task group per request; each node starts the moment its
own inputs are ready (no level-by-level barriers), started by the node that gave
the last of them. A node that never waits (a switch, a coalesce, an ``inline``
sync function) runs right there; any other gets a task of the request's group.

Runner nodes go to their runner's client (a worker pool: batched, in other
processes); function nodes run in-process, async ones on the loop and sync ones
in a bounded thread pool so the loop never blocks. Per node: ``when``,
``timeout_ms`` and ``retries`` (``_policy``; a stream that sent chunks is not
retried), and ``on_error``.
The first node that fails under ``fail`` cancels the rest; the request deadline
cancels everything still pending, including calls queued in batchers (the pools
drop a queued call whose awaiting task is cancelled). A streaming node's chunks
go on as they come (``_streams``): to its ``stream: true`` outputs, and to the
per-chunk nodes reading it, which start without waiting for the stream's end.

A request's ``SpanSink`` hears of each node's start (a sink with a live span gives
the ``traceparent`` its runner calls carry: ``runners.call_context``), retries
and end, with a status: ok, skipped, error handled, failed, cancelled, timed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor as ThreadExecutor
from typing import Any

from orchestrator.errors import DeadlineExceeded, GraphctlError, NodeFailed, SkippedOutput
from orchestrator.plan import INPUTS, ITEM, NodePlan, Plan
from orchestrator.running._conditions import evaluate
from orchestrator.running._policy import Call, Outcome, with_policy
from orchestrator.running._request import RequestState, begin, done, failed
from orchestrator.running._resolve import (
    SKIPPED,
    SkippedInput,
    Values,
    coalesce,
    lookup,
    render_kwargs,
    switch_case,
)
from orchestrator.running._stream_watch import watch_stream
from orchestrator.running._streams import OnChunk, StreamRoutes, waits_for
from orchestrator.running._trace import SpanSink
from runners.types import CallResult, RunnerClient


class Executor:
    """Runs requests through a compiled ``Plan`` with one started client per runner
    (their ``methods`` are known: which runner nodes stream is read once, here).

    ``threads`` runs sync functions (``None``: the loop's default executor).
    """

    def __init__(
        self,
        plan: Plan,
        clients: Mapping[str, RunnerClient],
        *,
        threads: ThreadExecutor | None = None,
    ) -> None:
        missing = sorted(set(plan.runners) - set(clients))
        if missing:
            raise GraphctlError(f"graph {plan.name!r}: no client for runner(s) {missing}")
        self.plan = plan
        self._clients = clients
        self._threads = threads
        self._jitter = random.Random()  # this executor's own: no shared random state
        self._streams = StreamRoutes.of(plan)
        self._streaming = _streaming_nodes(plan, clients)
        self._now = frozenset(node.name for node in plan.nodes.values() if _runs_now(node))
        self._chunk_args = {  # a per-chunk node's arguments besides its chunk
            node.name: {k: v for k, v in node.args.items() if k != node.each_chunk}
            for node in plan.nodes.values()
            if node.each_chunk is not None
        }
        waits = {node.name: waits_for(node) for node in plan.nodes.values()}
        self._wait_counts = {name: len(deps) for name, deps in waits.items() if deps}
        self._first = [node for node in plan.nodes.values() if not waits[node.name]]
        self._next: dict[str, list[NodePlan]] = {name: [] for name in plan.nodes}
        for node in plan.nodes.values():
            for dep in waits[node.name]:
                self._next[dep].append(node)

    async def run(
        self,
        inputs: Mapping[str, Any],
        *,
        timeout_ms: float | None = None,
        trace: SpanSink | None = None,
        on_chunk: OnChunk | None = None,
    ) -> dict[str, Any]:
        """Run one request over already validated ``inputs``; returns the outputs.
        ``on_chunk`` hears each chunk of a ``stream: true`` output as it comes (the
        output's value is still the list of its chunks)."""
        timeout_ms = self.plan.timeout_ms if timeout_ms is None else timeout_ms
        timeout_s = timeout_ms / 1000 if timeout_ms is not None else None
        request = RequestState(
            values={INPUTS: inputs},
            waiting=dict(self._wait_counts),
            deadline=time.monotonic() + timeout_s if timeout_s is not None else None,
            timeout_ms=timeout_ms,
            trace=trace,
            streams=self._streams.open(on_chunk),
        )
        try:
            async with asyncio.timeout(timeout_s), asyncio.TaskGroup() as group:
                request.group = group
                self._start(self._first, request)
        except TimeoutError:
            raise DeadlineExceeded(self._deadline_message(timeout_ms)) from None
        except BaseExceptionGroup as errors:
            raise _first_error(errors, request) from None
        return self._outputs(request.values)

    def _deadline_message(self, timeout_ms: float | None) -> str:
        return f"graph {self.plan.name!r}: request deadline of {timeout_ms:g} ms passed"

    def _start(self, nodes: Sequence[NodePlan], request: RequestState) -> None:
        """Start ``nodes`` (their inputs are ready): a node that never waits runs
        here, and the nodes it readies join the work list (a loop, so a chain of
        thousands of such nodes needs no deeper stack); any other gets a task."""
        work = list(reversed(nodes))
        while work:
            node = work.pop()
            if node.name in self._now:
                self._run_now(node, request)
                work.extend(reversed(self._readied(node, request)))
            else:
                assert request.group is not None
                request.group.create_task(self._node(node, request))

    def _readied(self, node: NodePlan, request: RequestState) -> list[NodePlan]:
        """``node`` has its value: the nodes that waited only for it, now ready."""
        ready = []
        for follower in self._next[node.name]:
            request.waiting[follower.name] -= 1
            if not request.waiting[follower.name]:
                ready.append(follower)
        return ready

    async def _node(self, node: NodePlan, request: RequestState) -> None:
        start, scope = begin(node, request)
        try:
            with scope:
                value, calls, status = await self._evaluate(node, request)
        except BaseException as error:
            failed(node, request, start, error)
            raise
        done(node, request, start, value, status, calls)
        self._start(self._readied(node, request), request)

    def _run_now(self, node: NodePlan, request: RequestState) -> None:
        """A node that never waits (``_runs_now``), run without a task of its own;
        ``_start`` starts the nodes it readies."""
        start, scope = begin(node, request)
        try:
            with scope:
                value, status = self._evaluate_now(node, request)
        except BaseException as error:
            failed(node, request, start, error)
            raise
        done(node, request, start, value, status, ())

    async def _evaluate(
        self, node: NodePlan, request: RequestState
    ) -> tuple[Any, Sequence[CallResult], str]:
        """The node's value (or ``SKIPPED``), its runner calls, and a status word."""
        try:
            if node.when is not None and not evaluate(node.when, request.values):
                return SKIPPED, (), "skipped"
            call = self._prepare(node, request)
        except SkippedInput:
            return SKIPPED, (), "skipped"
        except Exception as error:
            return self._on_error(node, error, request), (), "error handled"
        try:
            value, calls = await with_policy(
                node,
                call,
                deadline=request.deadline,
                deadline_message=lambda: self._deadline_message(request.timeout_ms),
                jitter=self._jitter,
                trace=request.trace,
                may_retry=lambda: not request.streams.sent(node.name),
            )
        except SkippedInput:  # a per-chunk node's stream was skipped
            return SKIPPED, (), "skipped"
        except Exception as error:
            return self._on_error(node, error, request), (), "error handled"
        return value, calls, "ok"

    def _evaluate_now(self, node: NodePlan, request: RequestState) -> tuple[Any, str]:
        """``_evaluate`` of a node that runs now: its value and a status word."""
        values = request.values
        try:
            if node.when is not None and not evaluate(node.when, values):
                return SKIPPED, "skipped"
            if node.kind == "switch":
                return switch_case(node, values), "ok"
            if node.kind == "coalesce":
                return coalesce(node, values), "ok"
            skipped_as_none = node.on_skipped_input == "null"
            kwargs = render_kwargs(node.args, values, skipped_as_none=skipped_as_none)
            return _function(node)(**kwargs), "ok"
        except SkippedInput:
            return SKIPPED, "skipped"
        except Exception as error:
            return self._on_error(node, error, request), "error handled"

    def _prepare(self, node: NodePlan, request: RequestState) -> Call:
        """Resolve the node's arguments now; the result runs one attempt by deadline."""
        skipped_as_none = node.on_skipped_input == "null"
        values = request.values
        if node.each_chunk is not None:
            args = self._chunk_args[node.name]
            kwargs = render_kwargs(args, values, skipped_as_none=skipped_as_none)
            return functools.partial(self._call_chunks, node, kwargs, request)
        if node.map is None:
            kwargs = render_kwargs(node.args, values, skipped_as_none=skipped_as_none)
            return functools.partial(self._call_one, node, kwargs, request)
        items = lookup(node.map, values)
        if items is SKIPPED:
            if not skipped_as_none:
                raise SkippedInput(node.map.text)
            items = []
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise GraphctlError(
                f"map over {node.map.text or node.map.source}: expected a list, "
                f"got {type(items).__name__}"
            )
        calls = [
            render_kwargs(node.args, {**values, ITEM: item}, skipped_as_none=skipped_as_none)
            for item in items
        ]
        return functools.partial(self._call_many, node, calls)

    def _on_error(self, node: NodePlan, error: Exception, request: RequestState) -> Any:
        """Apply ``on_error``: fail the request, or count as skipped, or a default value."""
        if isinstance(error, DeadlineExceeded):
            raise error
        mode = node.on_error.mode
        if mode == "skip":
            return SKIPPED
        if mode == "default":
            return node.on_error.default
        raise NodeFailed(node.name, error, runner=node.runner) from error

    async def _call_one(
        self, node: NodePlan, kwargs: dict[str, Any], request: RequestState, deadline: float | None
    ) -> Outcome:
        if node.kind == "runner":
            client = self._clients[node.runner or ""]
            if node.name in self._streaming:
                return await self._call_stream(node, client, kwargs, request, deadline), ()
            result = await client.submit(node.method or "", (), kwargs, deadline=deadline)
            return result.value, (result,)
        return await self._call_function(node, kwargs), ()

    async def _call_stream(
        self,
        node: NodePlan,
        client: RunnerClient,
        kwargs: dict[str, Any],
        request: RequestState,
        deadline: float | None,
    ) -> list[Any]:
        """A streaming node's chunks, each sent on as it comes (``RequestStreams``)."""
        chunks: list[Any] = []
        stream = client.stream(node.method or "", (), kwargs, deadline=deadline)
        with watch_stream(request.trace, node, deadline) as watch:  # metrics and spans
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    watch.chunk()
                    chunks.append(chunk)
                    request.streams.emit(node.name, chunk)
                    if not request.streams.wanted(node.name):
                        break  # no reader left: closing the stream stops the worker's item
        return chunks

    async def _call_chunks(
        self, node: NodePlan, kwargs: dict[str, Any], request: RequestState, deadline: float | None
    ) -> Outcome:
        """A per-chunk node: its function called on each chunk of its source."""
        arg, source = node.each_chunk or "", node.chunk_source or ""

        def call(chunk: Any) -> Awaitable[Any]:
            return self._call_function(node, {**kwargs, arg: chunk})

        results = await request.streams.map_chunks(node, call)
        if request.values.get(source) is SKIPPED and node.on_skipped_input == "skip":
            raise SkippedInput(source)
        return results, ()

    async def _call_many(
        self, node: NodePlan, calls: list[dict[str, Any]], deadline: float | None
    ) -> Outcome:
        if not calls:
            return [], ()
        if node.kind == "runner":
            client = self._clients[node.runner or ""]
            batch = [((), kwargs) for kwargs in calls]
            results = await client.submit_many(node.method or "", batch, deadline=deadline)
            return [result.value for result in results], results
        if node.is_async:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._call_function(node, kw)) for kw in calls]
            return [task.result() for task in tasks], ()
        func = _function(node)
        if node.inline:
            return [func(**kwargs) for kwargs in calls], ()
        return await self._in_thread(lambda: [func(**kwargs) for kwargs in calls]), ()

    async def _call_function(self, node: NodePlan, kwargs: dict[str, Any]) -> Any:
        func = _function(node)
        if node.is_async:
            return await func(**kwargs)
        if node.inline:  # declared cheap: a thread hop would cost more than the call
            return func(**kwargs)
        return await self._in_thread(functools.partial(func, **kwargs))

    async def _in_thread(self, func: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, func)

    def _outputs(self, values: Values) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        for name, output in self.plan.outputs.items():
            value = lookup(output.ref, values)
            if value is SKIPPED:
                if output.if_skipped == "error":
                    raise SkippedOutput(
                        f"output {name!r}: {output.ref.text or output.ref.source} was skipped"
                    )
                value = None
            outputs[name] = value
        return outputs


def _runs_now(node: NodePlan) -> bool:
    """A node that never waits: a switch, a coalesce, or an ``inline`` sync function
    called once with no timeout or retries. A task of its own would cost more than
    the node."""
    if node.kind in ("switch", "coalesce"):
        return True
    return (
        node.kind == "function"
        and node.inline
        and not node.is_async
        and node.map is None
        and node.each_chunk is None
        and node.timeout_ms is None
        and node.retries.count == 0
    )


def _streaming_nodes(plan: Plan, clients: Mapping[str, RunnerClient]) -> frozenset[str]:
    """The runner nodes whose method streams, as their started clients declare it
    (``methods`` builds a mapping on each read: not a lookup for every call)."""
    methods = {name: client.methods for name, client in clients.items()}
    return frozenset(
        node.name
        for node in plan.nodes.values()
        if node.kind == "runner"
        and (spec := methods[node.runner or ""].get(node.method or "")) is not None
        and spec.stream
    )


def _function(node: NodePlan) -> Callable[..., Any]:
    if node.func is None:
        raise GraphctlError(f"node {node.name!r}: function {node.function!r} was not imported")
    return node.func


def _first_error(errors: BaseExceptionGroup[BaseException], request: RequestState) -> BaseException:
    """The error that failed the request: the first recorded, else the group's first."""
    if request.first_error is not None:
        return request.first_error
    leaves = [error for error in _leaves(errors) if not isinstance(error, asyncio.CancelledError)]
    return leaves[0] if leaves else errors


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        found.extend(_leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    return found
