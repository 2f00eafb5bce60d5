"""How long a node waits before retrying: exponential backoff with equal jitter, never
sooner than the ``retry_after_s`` an overloaded pool asked for.

Without jitter, every request that failed on the same overload retries at the same
instant and overloads the pool again; with full jitter a retry may come back at
once. Equal jitter keeps half the exponential step as a floor and spreads the other
half at random. The random source is a parameter, so the delays are reproducible
in tests with a seeded ``random.Random``.
"""

from __future__ import annotations

import random

from orchestrator.plan import RetryPolicy

_MAX_EXPONENT = 62  # 2**62 ms is past any max_backoff_ms; keeps the float finite


def retry_delay_s(
    policy: RetryPolicy, attempt: int, rng: random.Random, *, retry_after_s: float = 0.0
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (0 for the first).

    The step is ``backoff_ms * 2**attempt`` capped at ``max_backoff_ms``; the wait is
    uniform between half the step and the step, and at least ``retry_after_s``.
    """
    step_ms = min(policy.backoff_ms * 2.0 ** min(attempt, _MAX_EXPONENT), policy.max_backoff_ms)
    half_s = step_ms / 2000
    return max(half_s + rng.uniform(0.0, half_s), retry_after_s)
