"""Streaming Runnables for the streaming tests: generators, alone and batched."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from runners import END, Runnable, method


class Counter(Runnable):
    """Token streams: ``n`` chunks per item, ``step_s`` per step; records its batches."""

    def __init__(self, step_s: float = 0.0) -> None:
        self.step_s = step_s
        self.sizes: list[int] = []
        self.stopped: list[int] = []  # items the pool stopped, seen through ``yield``
        self.closed_at: list[int] = []  # the step at which each ``tokens`` batch ended

    @method(stream=True)
    def count(self, n: int, step_s: float = 0.0) -> Iterator[int]:
        """Unbatched: yields 0..n-1."""
        for i in range(n):
            time.sleep(step_s)
            yield i

    @method(batchable=True, stream=True)
    def tokens(self, n: list[int]) -> Iterator[list[Any]]:
        """Item ``i`` yields ``"t0".."t{n-1}"`` then ends; a negative ``n`` raises at
        step 2."""
        self.sizes.append(len(n))
        step = 0
        try:
            while True:
                if any(k < 0 for k in n) and step == 2:
                    raise RuntimeError("the model broke at step 2")
                time.sleep(self.step_s)
                unwanted = yield [f"t{step}" if step < k or k < 0 else END for k in n]
                for index in unwanted:
                    if index not in self.stopped and step < n[index]:
                        self.stopped.append(index)
                step += 1
                if all(step > k >= 0 for k in n):
                    return
        finally:
            self.closed_at.append(step)

    @method(batchable=True, stream=True)
    async def atokens(self, n: list[int]) -> AsyncIterator[list[Any]]:
        """``tokens`` as an async generator, all items ending with the longest."""
        self.sizes.append(len(n))
        for step in range(max(n)):
            await asyncio.sleep(self.step_s)
            yield [f"a{step}" if step < k else None for k in n]

    @method
    def seen(self) -> dict[str, list[int]]:
        return {"sizes": self.sizes, "stopped": self.stopped, "closed_at": self.closed_at}
