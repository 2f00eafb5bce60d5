"""A node's call policy: each attempt bounded by its ``timeout_ms``, retryable
errors retried with backoff and jitter (never sooner than an overloaded pool's
``retry_after_s``), and no retry that could only start past the request deadline,
nor one of a stream whose chunks already went out (``may_retry``): its client
has a part of it, and a second run would send it again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from orchestrator.errors import DeadlineExceeded
from orchestrator.plan import NodePlan
from orchestrator.running._backoff import retry_delay_s
from orchestrator.running._trace import SpanSink
from runners.errors import CallTimeout, Overloaded, PoolClosed, StreamInterrupted, Unavailable
from runners.types import CallResult

Outcome = tuple[Any, Sequence[CallResult]]  # a node's value and the runner calls behind it
Call = Callable[[float | None], Awaitable[Outcome]]  # one attempt, given its deadline


async def with_policy(
    node: NodePlan,
    call: Call,
    *,
    deadline: float | None,
    deadline_message: Callable[[], str],
    jitter: random.Random,
    trace: SpanSink | None,
    may_retry: Callable[[], bool] = lambda: True,
) -> Outcome:
    """Run attempts of ``call`` under ``timeout_ms``, retrying retryable errors while
    ``may_retry()`` holds after the failed attempt."""
    policy = node.retries
    for attempt in range(policy.count + 1):
        try:
            return await _attempt(node, call, deadline)
        except Exception as error:
            if deadline is not None and time.monotonic() >= deadline:
                message = f"{deadline_message()} while node {node.name!r} was running"
                raise DeadlineExceeded(message) from error
            if attempt == policy.count or not _retryable(error) or not may_retry():
                raise
            retry_after_s = error.retry_after_s if isinstance(error, Overloaded) else 0.0
            delay = retry_delay_s(policy, attempt, jitter, retry_after_s=retry_after_s)
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise  # the retry could only start past the deadline: fail now
            if trace is not None:
                trace.event(
                    node.name,
                    "retry",
                    attempt=attempt + 2,
                    delay_ms=round(delay * 1e3, 3),
                    error=str(error),
                )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _attempt(node: NodePlan, call: Call, deadline: float | None) -> Outcome:
    """One attempt, bounded by the node's ``timeout_ms``; a timeout is ``CallTimeout``."""
    if node.timeout_ms is None:
        return await call(deadline)
    limit = node.timeout_ms / 1000
    attempt_deadline = time.monotonic() + limit
    if deadline is not None:
        attempt_deadline = min(attempt_deadline, deadline)
    scope = asyncio.timeout(limit)
    try:
        async with scope:
            return await call(attempt_deadline)
    except TimeoutError:
        if not scope.expired():
            raise
        raise CallTimeout(
            f"node {node.name!r} took longer than timeout_ms={node.timeout_ms:g}",
            runner=node.runner,
            method=node.method,
        ) from None


def _retryable(error: Exception) -> bool:
    """Unavailable, unless the graph is stopping or a stream already sent chunks."""
    return isinstance(error, Unavailable) and not isinstance(error, PoolClosed | StreamInterrupted)
