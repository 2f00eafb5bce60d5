"""A batchable token stream for the server's streaming tests."""

from __future__ import annotations

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
