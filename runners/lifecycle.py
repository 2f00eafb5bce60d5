"""``async with`` for anything with ``start()`` and ``stop()``.

Runner clients, compiled graphs, the benchmark's server process and its HTTP
target all own resources (processes, threads, sockets) that must be released
however the block ends; each says how to start and stop, this says when.

    class Pool(AsyncLifecycle):
        async def start(self) -> None: ...
        async def stop(self) -> None: ...

    async with Pool() as pool:
        ...
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


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
