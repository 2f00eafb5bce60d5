"""A runner for the worker-host tests: answers each item doubled, with the process
id of the worker that ran it, after ``delay_ms`` per batch."""

from __future__ import annotations

import os
import time
from typing import Any

from runners import Runnable, method


class Doubler(Runnable):
    """``double`` takes ``delay_ms`` per batch, whatever its size."""

    def __init__(self, delay_ms: float = 5.0, offset: float = 0.0) -> None:
        self.delay_s = delay_ms / 1000.0
        self.offset = offset

    @method(batchable=True, stack=True)
    def double(self, x: list[Any]) -> list[dict[str, Any]]:
        """Each item doubled (plus ``offset``), and who ran it in a batch of how many."""
        time.sleep(self.delay_s)
        return [{"y": v * 2 + self.offset, "pid": os.getpid(), "batch": len(x)} for v in x]


class Fields(Runnable):
    """``read`` answers, per item, the log fields bound while its batch runs."""

    @method(batchable=True, stack=True)
    def read(self, x: list[Any]) -> list[dict[str, Any]]:
        from runners import log_context

        bound = dict(log_context.current())
        return [{"fields": bound} for _ in x]
