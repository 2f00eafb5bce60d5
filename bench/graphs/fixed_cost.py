"""Bench models: a runner whose every batch costs a fixed time whatever its size
(like one GPU kernel launch), and trivial functions for scheduler overhead."""

from __future__ import annotations

import time
from typing import Any

from runners.runnable import Runnable, method


class FixedCost(Runnable):
    """``predict`` takes ``batch_ms`` per batch, so throughput is set by batching alone."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    def __init__(self, batch_ms: float = 20.0) -> None:
        self.batch_s = batch_ms / 1000.0

    @method(batchable=True, batch_dim=0, stack=True)
    def predict(self, x: Any) -> Any:
        """Sleep for one batch's cost, then echo the batch."""
        time.sleep(self.batch_s)
        return x


def inc(x: float) -> float:
    """One scheduler step: the cheapest possible sync node."""
    return x + 1


async def ainc(x: float) -> float:
    """One scheduler step as a coroutine (no thread hop)."""
    return x + 1


def total(values: list[float]) -> float:
    """The join of a fan-out."""
    return float(sum(values))


async def atotal(values: list[float]) -> float:
    """The join of a fan-out, as a coroutine."""
    return float(sum(values))
