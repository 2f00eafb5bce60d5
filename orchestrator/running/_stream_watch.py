"""The executor's side of one streaming runner call, for the request's ``SpanSink``:
the sink hears the stream open, each chunk as it reaches the caller, and the end
once, with how it ended, before the node's span ends. One recorder for every
path a request takes (server-sent events, a JSON answer, ``Graph.run``), so
metrics and spans agree.

    with watch_stream(request.trace, node, deadline) as watch:
        async for chunk in stream:
            watch.chunk()
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from orchestrator.errors import DeadlineExceeded, NodeFailed
from orchestrator.plan import NodePlan
from orchestrator.running._trace import SpanSink, StreamSink, open_stream
from runners.errors import CallTimeout


class StreamWatch:
    """Tells one stream's sink (if any) of its chunks, then of its end on leaving."""

    __slots__ = ("_deadline", "_sink")

    def __init__(self, sink: StreamSink | None, deadline: float | None) -> None:
        self._sink = sink
        self._deadline = deadline

    def chunk(self) -> None:
        """A chunk reached the caller now."""
        if self._sink is not None:
            self._sink.chunk(time.monotonic())

    def __enter__(self) -> StreamWatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sink is not None:
            now = time.monotonic()
            self._sink.end(now, stream_status(exc, self._deadline, now))


def watch_stream(trace: SpanSink | None, node: NodePlan, deadline: float | None) -> StreamWatch:
    """The watch of a stream ``node`` opens now, under the attempt's ``deadline``."""
    if trace is None:
        return StreamWatch(None, deadline)
    sink = open_stream(trace, node.name, node.runner or "", node.method or "", time.monotonic())
    return StreamWatch(sink, deadline)


def stream_status(error: BaseException | None, deadline: float | None, now: float) -> str:
    """How a stream ended: ``ok``, or as a node that raised (``failure_status``)."""
    return "ok" if error is None else failure_status(error, deadline, now)


def failure_status(error: BaseException, deadline: float | None, now: float) -> str:
    """How a node or a stream that raised ended: ``failed``, ``cancelled`` (its
    client left, or a sibling node failed) or ``timed out`` (a deadline passed: the
    request's deadline cancels what still runs, so a cancellation at or past it
    timed out)."""
    if isinstance(error, asyncio.CancelledError):
        return "timed out" if deadline is not None and now >= deadline else "cancelled"
    cause = error.cause if isinstance(error, NodeFailed) else error
    return "timed out" if isinstance(cause, DeadlineExceeded | CallTimeout) else "failed"
