"""What the dispatcher (``runners.pool``) knows of a worker, whatever runs it.

The pool owns queues, admission, the release policy, delivery and crash retry;
a worker only runs batches. Three kinds plug in behind these protocols: a
process over a socketpair (``runners.process``, supervised by
``runners.supervisor``), this process itself (``runners.local``, for
``--local``), and a worker on another host over TCP (``runners.remote``), one
``Worker`` per connected endpoint:

    pool ── Worker.send_batch(batch id, method, args, kwargs, call contexts) ──> worker
    pool <── WorkerEvents.on_reply(worker, ["ok", batch id, value])
                                 | ["error", batch id, error type, message]
    pool <── on_reply(worker, ["chunk", ...] | ["end", ...])   steps of a streaming batch
    pool ── Worker.stop_item(batch id, item index) ──> worker   its caller went away
    pool ── Worker.join_items(batch id, args, kwargs) ──> worker   calls join its stream
    pool <── on_refused(worker)   the batch was not run (busy, draining): sent again
    pool <── on_ready(worker) / on_lost(worker) / on_gave_up()   (from Workers)

The call contexts (``runners.call_context``) name each call's request and trace
parent, one map per call in batch order (``[]`` when none has any); a worker binds
them as log fields and links its batch span to them.

Values cross the data-only codec (``runners.codec``) in every kind, so a caller
sees the same values from each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from runners.call_context import CallContext
from runners.runnable import MethodSpec
from runners.types import EndpointStats

Reply = Any  # a decoded reply frame, checked by the pool against the batch it sent


class Worker(Protocol):
    """One worker that runs one batch at a time."""

    @property
    def id(self) -> int:
        """Unique within its runner (a restarted worker gets a new one)."""
        ...

    @property
    def label(self) -> str:
        """``runner/worker-N``: how logs name it."""
        ...

    @property
    def pid(self) -> int | None:
        """Its process id when it is a process of its own on this host (for its CPU
        and memory figures), else ``None``."""
        ...

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        """The methods its Runnable declares (before the runner's overrides)."""
        ...

    @property
    def load(self) -> int:
        """Batches it holds for all its callers, as it last said (0 if only this pool
        uses it): of two idle workers, the pool sends a batch to the less loaded."""
        ...

    @property
    def takes_joins(self) -> bool:
        """Calls may still join the streaming batch it holds: not once it is going
        away (a draining worker host is sent nothing more) or its connection closed."""
        ...

    def send_batch(
        self,
        batch_id: int,
        method: str,
        args: list[Any],
        kwargs: Any,
        contexts: Sequence[CallContext] = (),
    ) -> None:
        """Start running one batch; raises ``UnsupportedValue`` if a value cannot cross."""
        ...

    def stop_item(self, batch_id: int, index: int) -> None:
        """Stop producing chunks for item ``index`` of the streaming batch it holds
        (``runners.streaming``); ignored when the batch is no longer held."""
        ...

    def join_items(self, batch_id: int, args: list[Any], kwargs: Any) -> None:
        """Append calls (stacked as a batch) to the joinable streaming batch it holds
        (``runners.joining``); a worker that no longer holds it never acknowledges
        them. Raises ``UnsupportedValue`` if a value cannot cross."""
        ...

    def kill(self) -> None:
        """Stop a hung or misbehaving worker now (``on_lost`` follows, if it can be lost)."""
        ...


class WorkerEvents(Protocol):
    """What a worker (or its supervisor) tells the pool, synchronously on the loop."""

    def on_ready(self, worker: Worker) -> None:
        """``worker`` started and can take a batch."""
        ...

    def on_reply(self, worker: Worker, reply: Reply) -> None:
        """``worker`` answered the batch it holds."""
        ...

    def on_refused(self, worker: Worker) -> None:
        """``worker`` refused the batch it was given without running it (at capacity,
        or draining); it takes no batch until its next ``on_ready``."""
        ...

    def on_lost(self, worker: Worker) -> None:
        """``worker`` is gone (died, killed, or closed); a batch it held is lost."""
        ...

    def on_gave_up(self) -> None:
        """A slot stopped restarting its worker: start-ups kept failing."""
        ...


class Workers(Protocol):
    """The workers of one runner: starts them, keeps them alive, stops them."""

    @property
    def slots(self) -> int:
        """How many workers are configured."""
        ...

    @property
    def live(self) -> int:
        """Workers started and not yet reaped."""
        ...

    @property
    def starting(self) -> int:
        """Slots between a worker's death and its replacement's READY."""
        ...

    @property
    def restarts(self) -> int: ...

    @property
    def healthy(self) -> bool:
        """False once start-up failures stopped the restarts."""
        ...

    async def start(self) -> None:
        """Start every worker (``on_ready`` for each); raise ``RunnerStartupError``,
        leaving none running, if one cannot start."""
        ...

    async def run(self) -> None:
        """Supervise until ``close()``; returns once every worker is stopped."""
        ...

    def endpoints(self, in_flight: Mapping[int, int]) -> list[EndpointStats]:
        """Per remote endpoint figures (none for local workers); ``in_flight`` gives
        the items each worker id holds now."""
        ...

    def close(self) -> None:
        """Stop restarting and tell every worker to exit once its batch is done."""
        ...


async def until_closed_or(
    closing: asyncio.Event, event: asyncio.Event | None, delay_s: float = 0.0
) -> bool:
    """Wait for ``closing`` or ``event`` (or ``delay_s`` seconds); True if closing.

    The waits a supervising ``Workers`` makes between pings, restarts and
    reconnections, so ``close()`` cuts each of them short."""
    waits = [asyncio.ensure_future(closing.wait())]
    if event is not None:
        waits.append(asyncio.ensure_future(event.wait()))
    try:
        await asyncio.wait(waits, timeout=delay_s or None, return_when="FIRST_COMPLETED")
    finally:
        for waiter in waits:
            waiter.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    return closing.is_set()
