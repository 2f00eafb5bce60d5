"""Streaming Runnables for the streaming tests: generators, alone and batched."""

from __future__ import annotations

import asyncio
import os
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

    @method
    def undeclared(self, n: int) -> Iterator[int]:
        """A generator from a method not declared ``stream=True``: refused."""
        yield from range(n)


class Joining(Runnable):
    """Token streams that calls may join between steps (``joins=True``), and the same
    stream without joins; records each batch's items and its most items running."""

    def __init__(self, step_s: float = 0.0) -> None:
        self.step_s = step_s
        self.sizes: list[int] = []  # each batch's items in all, when it ended
        self.peak = 0  # the most items running at one step
        self.stopped: list[int] = []

    def _steps(self, n: list[int]) -> Iterator[list[Any]]:
        """Item ``i`` yields ``"t0".."t{n-1}"`` from the step it joined at, then ends;
        new items are read off ``len(n)`` at each step."""
        sent: list[int] = []
        done: set[int] = set()
        try:
            while len(done) < len(n):
                sent.extend([0] * (len(n) - len(sent)))  # joined since the last step
                self.peak = max(self.peak, len(n) - len(done))
                time.sleep(self.step_s)
                step: list[Any] = []
                for index, limit in enumerate(n):
                    if index in done:
                        step.append(None)
                    elif sent[index] < limit:
                        step.append(f"t{sent[index]}")
                        sent[index] += 1
                    else:
                        step.append(END)
                        done.add(index)
                unwanted = yield step
                for index in unwanted - done:
                    self.stopped.append(index)
                done |= unwanted
        finally:
            self.sizes.append(len(n))

    @method(batchable=True, stream=True, joins=True)
    def joining(self, n: list[int]) -> Iterator[list[Any]]:
        yield from self._steps(n)

    @method(batchable=True, stream=True)
    def waiting(self, n: list[int]) -> Iterator[list[Any]]:
        yield from self._steps(n)

    @method(batchable=True, stream=True, joins=True)
    def gated(self, marker: list[str]) -> Iterator[list[Any]]:
        """Each item yields ``"g0"``; the next step waits for the file ``marker`` to
        exist, then the batch returns without reading the pool again."""
        try:
            yield ["g0"] * len(marker)
            deadline = time.monotonic() + 20.0
            while not os.path.exists(marker[0]) and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            self.sizes.append(len(marker))

    @method(batchable=True, stream=True, joins=True)
    def roles(self, role: list[str]) -> Iterator[list[Any]]:
        """``lead`` and ``talk`` items chunk every step; a ``quiet`` item yields nothing
        while a ``lead`` shares its batch, whose worker then dies at the next step;
        alone, it yields ``"q"`` and ends."""
        step = 0
        while True:
            if "lead" in role and "quiet" in role:
                os._exit(3)
            time.sleep(self.step_s)
            yield [_role_chunk(kind, step, "lead" in role) for kind in role]
            step += 1

    @method(batchable=True, stream=True, joins=True)
    def tagged(self, tag: list[str], n: list[int]) -> Iterator[list[Any]]:
        """Item ``i`` yields ``"{tag}:0"``.. ``"{tag}:{n-1}"``: each chunk names its item."""
        made: list[int] = []
        while True:
            made.extend([0] * (len(tag) - len(made)))
            if all(k >= limit for k, limit in zip(made, n, strict=True)):
                return
            time.sleep(self.step_s)
            step: list[Any] = [None] * len(tag)
            for index, limit in enumerate(n):
                if made[index] < limit:
                    step[index] = f"{tag[index]}:{made[index]}"
                    made[index] += 1
            yield step

    @method
    def seen(self) -> dict[str, Any]:
        return {"sizes": self.sizes, "peak": self.peak, "stopped": self.stopped}


def _role_chunk(kind: str, step: int, led: bool) -> Any:
    if kind != "quiet":
        return f"{kind[0]}{step}"
    if led:
        return None
    return "q" if step == 0 else END
