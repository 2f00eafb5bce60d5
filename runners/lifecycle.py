"""``async with`` for anything with ``start()`` and ``stop()``, and the one
vocabulary for where such an object is in its life.

Runner clients, compiled graphs, the benchmark's server process and its HTTP
target all own resources (processes, threads, sockets) that must be released
however the block ends; each says how to start and stop, this says when.
Worker pools, graphs and the server's per-graph slots record their state as a
``Lifecycle``, so "is it ready?" and "why not?" read the same everywhere.

    class Pool(AsyncLifecycle):
        async def start(self) -> None: ...
        async def stop(self) -> None: ...

    async with Pool() as pool:
        ...
"""

from __future__ import annotations

import enum
from types import TracebackType
from typing import Self


class Lifecycle(enum.Enum):
    """NEW -> STARTING -> READY -> DRAINING -> CLOSED; a failed start goes to CLOSED.

    Only READY accepts work; DRAINING finishes what was accepted. The value is
    the word used in messages ("the pool is draining")."""

    NEW = "new"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    CLOSED = "closed"

    @property
    def accepts_work(self) -> bool:
        """True only in READY: new calls or requests may be admitted."""
        return self is Lifecycle.READY

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` began (DRAINING or CLOSED): the object never serves again."""
        return self in (Lifecycle.DRAINING, Lifecycle.CLOSED)


class AsyncLifecycle:
    """Entering ``async with`` awaits ``start()`` and gives the object; leaving
    awaits ``stop()``, whether the block returned or raised (the error propagates)."""

    async def start(self) -> None:
        """Acquire what the object needs; nothing by default."""

    async def stop(self) -> None:
        """Release what ``start`` acquired; nothing by default."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
