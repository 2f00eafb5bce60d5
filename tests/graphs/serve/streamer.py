"""A batchable token stream for the server's streaming tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from runners import END, Runnable, method


class Streamer(Runnable):
    @method(batchable=True, stream=True)
    def tokens(self, n: list[int], step_ms: list[float]) -> Iterator[list[Any]]:
        """Item ``i`` yields ``n[i]`` tokens, one per step of ``max(step_ms)``; a
        negative ``n`` breaks the batch at step 2."""
        step = 0
        while any(step <= k or k < 0 for k in n):
            if step == 2 and any(k < 0 for k in n):
                raise RuntimeError("the model broke at step 2")
            time.sleep(max(step_ms) / 1000)
            yield [f"t{step}" if step < k or k < 0 else END for k in n]
            step += 1


def shout(token: str, fail_at: str = "") -> str:
    """Per chunk: the token in capitals; raises on the token ``fail_at``."""
    if token == fail_at:
        raise ValueError(f"cannot shout {token!r}")
    return token.upper() + "!"


def every_other(token: str) -> str | None:
    """Per chunk: keeps the even steps' tokens (``T0!``, ``T2!``, ...), drops the rest."""
    return token if int(token[1:-1]) % 2 == 0 else None


def count(items: list[str]) -> int:
    """A plain node reading a stream: it gets the whole list once the stream ended."""
    return len(items)


class Fragile(Runnable):
    """Streams that break: a worker that dies mid-stream, and a first batch slow to
    start (a worker's later batches start at once)."""

    def __init__(self) -> None:
        self.batches = 0

    @method(batchable=True, stream=True)
    def dies(self, n: list[int], die_at: list[int]) -> Iterator[list[Any]]:
        """Item ``i`` yields ``t0``, ``t1``, ...; the worker process dies at step
        ``min(die_at)``, after the chunks of the steps before."""
        for step in range(max(n)):
            if step == min(die_at):
                os._exit(3)
            time.sleep(0.01)
            yield [f"t{step}" if step < k else END for k in n]

    @method(batchable=True, stream=True)
    def slow_start(self, n: list[int], first_ms: list[float]) -> Iterator[list[Any]]:
        """Item ``i`` yields ``n[i]`` tokens; the worker's first batch sleeps
        ``max(first_ms)`` before its first step."""
        self.batches += 1
        if self.batches == 1:
            time.sleep(max(first_ms) / 1000)
        for step in range(max(n) + 1):
            yield [f"t{step}" if step < k else END for k in n]
