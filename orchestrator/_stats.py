"""Percentiles of latencies, computed one way for every figure graphctl prints
(``graphctl run --inputs`` and ``graphctl bench``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles(values_ms: Sequence[float], qs: Sequence[float]) -> list[float | None]:
    """Percentiles ``qs`` (0 to 100) of ``values_ms``, interpolated linearly between
    samples as numpy does; ``None`` for each when there are no values."""
    if not values_ms:
        return [None] * len(qs)
    found = np.percentile(np.asarray(values_ms, dtype=np.float64), list(qs))
    return [float(v) for v in found]
