"""What a pool knows of its workers' health: recent batch times per method, from
which a stuck worker is told apart from a slow batch in seconds, not minutes."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

RECENT_BATCHES = 256  # the p99 is taken over this many recent batches
REFRESH_EVERY = 32  # batches between two recomputations of the p99


@dataclass(eq=False)
class RecentBatchTimes:
    """The run times of a method's recent batches and their p99, recomputed every
    ``REFRESH_EVERY`` batches (so recording one costs an append)."""

    times: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_BATCHES))
    count: int = 0
    p99_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.times.append(seconds)
        self.count += 1
        if self.count % REFRESH_EVERY == 1 or self.count <= REFRESH_EVERY:
            self.p99_s = p99(self.times)


def p99(values: deque[float]) -> float:
    """The 99th percentile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
