"""One request's state in the executor, and how a node's start and end are
recorded in it: its value for the nodes that read it, its stream's readers told
it ended, its span, and the request's first error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.plan import NodePlan
from orchestrator.running._stream_watch import failure_status
from orchestrator.running._streams import RequestStreams
from orchestrator.running._trace import SpanSink
from runners import call_context, log_context
from runners.types import CallResult

_NO_SCOPE = contextlib.nullcontext()  # a runner node, untraced: the usual case


def _node_scope(node: NodePlan, parent: str | None) -> contextlib.AbstractContextManager[Any]:
    """What a node runs inside: its trace parent (carried with its calls), and for a
    function node its name in its log lines (a runner node's lines come from its
    worker, which binds its own fields)."""
    traced = call_context.traced(parent) if parent is not None else None
    if node.kind != "function":
        return traced or _NO_SCOPE
    named = log_context.bound(node=node.name)
    if traced is None:
        return named
    stack = contextlib.ExitStack()
    stack.enter_context(traced)
    stack.enter_context(named)
    return stack


@dataclass
class RequestState:
    """The state of one request: node values (by reference), and per node not yet
    started the number of nodes it still waits for."""

    values: dict[str, Any]
    waiting: dict[str, int]
    deadline: float | None  # absolute time.monotonic() seconds
    timeout_ms: float | None
    trace: SpanSink | None
    streams: RequestStreams  # where streaming nodes' chunks go as they come
    first_error: BaseException | None = field(default=None)
    group: asyncio.TaskGroup | None = None  # owns the tasks of the request's nodes


def begin(
    node: NodePlan, request: RequestState
) -> tuple[float, contextlib.AbstractContextManager[Any]]:
    """A node starts: its start time, and the scope it runs in (its span's parent)."""
    parent = request.trace.start(node.name, node.kind) if request.trace is not None else None
    return time.monotonic(), _node_scope(node, parent)


def done(
    node: NodePlan,
    request: RequestState,
    start: float,
    value: Any,
    status: str,
    calls: Sequence[CallResult],
) -> None:
    """A node has its value: its readers see it, then its stream readers end, and
    its span ends with its status."""
    request.values[node.name] = value
    request.streams.ended(node)
    if request.trace is not None:
        end = time.monotonic()
        request.trace.span(node.name, start, end, kind=node.kind, status=status, calls=calls)


def failed(node: NodePlan, request: RequestState, start: float, error: BaseException) -> None:
    """A node raised: keep the request's first error, end its stream readers and
    its span with how it failed."""
    if request.first_error is None and not isinstance(error, asyncio.CancelledError):
        request.first_error = error
    request.streams.ended(node)
    if request.trace is not None:
        end = time.monotonic()
        status = failure_status(error, request.deadline, end)
        request.trace.span(node.name, start, end, kind=node.kind, status=status, error=str(error))
