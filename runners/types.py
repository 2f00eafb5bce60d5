"""Shared types of the runners package: what a call returns, what a pool reports,
and the client protocol the orchestrator uses (a worker pool, or the in-process
debug runner: both give the same answers)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from runners.runnable import MethodSpec

Args = tuple[Any, ...]
Kwargs = Mapping[str, Any]

# Upper bounds (seconds) of the queue wait histogram; a last bucket holds the rest.
QUEUE_WAIT_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class CallResult:
    """One call's value and how it was served (for traces and metrics)."""

    value: Any
    queue_wait_s: float  # from enqueue to dispatch
    batch_id: int  # unique per pool; calls served together share it
    batch_size: int  # items in that batch
    worker_id: int


@dataclass(frozen=True)
class MethodStats:
    """Cumulative counters of one method's batcher, plus its current queue."""

    queue_length: int = 0
    in_flight: int = 0  # items dispatched to a worker and not yet answered
    calls: int = 0
    batches: int = 0
    rejected: int = 0  # refused at enqueue (Overloaded)
    timed_out: int = 0  # dropped from the queue at their deadline
    batch_sizes: Mapping[int, int] = field(default_factory=dict)  # size -> batches
    queue_wait_s_sum: float = 0.0
    # Calls by queue wait: one count per bound of QUEUE_WAIT_BUCKETS_S (waits up to
    # it and over the bound before), then the waits over the last bound.
    queue_waits: Sequence[int] = ()
    batch_time_s_sum: float = 0.0  # time workers spent running batches
    # The measured latency model: a batch of n items runs cost_a_ms + cost_b_ms * n.
    cost_a_ms: float = 0.0
    cost_b_ms: float = 0.0
    arrival_rate: float = 0.0  # items per second, recent
    waits: int = 0  # times a free worker held a short batch for more items
    wait_s_sum: float = 0.0  # total time held so


@dataclass(frozen=True)
class EndpointStats:
    """A snapshot of one remote endpoint of a runner (``runners.remote``)."""

    endpoint: str  # HOST:PORT as connected
    connected: bool  # authenticated and taking batches (not draining)
    in_flight: int = 0  # items sent to it and not yet answered
    batches: int = 0  # answered
    failures: int = 0  # connections lost or refused (a batch in flight is retried)
    reconnects: int = 0  # connections made after the first


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of one runner's pool."""

    runner: str
    workers: int  # configured
    ready_workers: int  # alive and not hung
    restarts: int
    healthy: bool  # False once start-up failures stopped the restarts
    hung_workers: int = 0  # holding a batch far past its method's usual time
    methods: Mapping[str, MethodStats] = field(default_factory=dict)
    # Worker id -> process id, for the workers that are processes of this host.
    worker_pids: Mapping[int, int] = field(default_factory=dict)
    endpoints: Sequence[EndpointStats] = ()  # remote workers only

    @property
    def load_items(self) -> int:
        """Items queued or in flight over every method: the autoscaling signal."""
        return sum(m.queue_length + m.in_flight for m in self.methods.values())


class RunnerClient(Protocol):
    """What the orchestrator needs of a runner. ``deadline`` is absolute
    ``time.monotonic()`` seconds; a call still queued at its deadline is dropped
    with ``CallTimeout``; cancelling the awaiting task removes a queued call."""

    @property
    def name(self) -> str: ...

    @property
    def ready(self) -> bool: ...

    @property
    def methods(self) -> Mapping[str, MethodSpec]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any: ...

    async def submit(
        self, method: str, args: Args, kwargs: Kwargs, *, deadline: float | None = None
    ) -> CallResult: ...

    async def submit_many(
        self, method: str, calls: Sequence[tuple[Args, Kwargs]], *, deadline: float | None = None
    ) -> list[CallResult]: ...

    def stream(
        self, method: str, args: Args, kwargs: Kwargs, *, deadline: float | None = None
    ) -> AsyncGenerator[Any, None]:
        """The chunks of one call of a streaming method (``runners.streaming``)."""
        ...

    def stats(self) -> PoolStats: ...
