"""The retry delay as a pure function, over seeded random sources."""

from __future__ import annotations

import random

import pytest

from orchestrator.plan import RetryPolicy
from orchestrator.running._backoff import retry_delay_s

POLICY = RetryPolicy(count=8, backoff_ms=100, max_backoff_ms=1000)


@pytest.mark.parametrize(("attempt", "step_s"), [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0)])
def test_the_delay_lies_between_half_the_exponential_step_and_the_step(
    attempt: int, step_s: float
) -> None:
    rng = random.Random(7)
    delays = [retry_delay_s(POLICY, attempt, rng) for _ in range(500)]
    assert all(step_s / 2 <= delay <= step_s for delay in delays)
    # Spread over that range, not one value for every caller.
    assert max(delays) - min(delays) > 0.8 * step_s / 2


def test_the_same_seed_gives_the_same_delays_and_another_seed_others() -> None:
    def delays(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [retry_delay_s(POLICY, attempt, rng) for attempt in range(6)]

    assert delays(1) == delays(1)
    assert delays(1) != delays(2)


def test_an_overloaded_pools_retry_after_is_a_floor() -> None:
    rng = random.Random(3)
    assert all(retry_delay_s(POLICY, 0, rng, retry_after_s=0.75) == 0.75 for _ in range(50))
    # Past the hint, the backoff's own wait stands.
    assert 0.5 <= retry_delay_s(POLICY, 5, rng, retry_after_s=0.01) <= 1.0


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    assert 0.5 <= retry_delay_s(POLICY, 5000, random.Random(0)) <= 1.0
