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
