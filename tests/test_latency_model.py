"""The latency model's fit, the arrival rate and the release policy, as pure functions."""

from __future__ import annotations

import random

import pytest

from runners.latency_model import (
    ArrivalRate,
    BatchCostModel,
    Outstanding,
    Situation,
    gain,
    hold_rate,
    release,
)


def test_the_fit_recovers_fixed_and_per_item_cost_through_noise() -> None:
    rng = random.Random(7)
    model = BatchCostModel()
    for _ in range(400):
        n = rng.randint(1, 32)
        model.observe(n, 0.020 + 0.0005 * n + rng.gauss(0.0, 0.0005))
    a, b = model.coefficients()
    assert model.identified
    assert a == pytest.approx(0.020, abs=0.002)
    assert b == pytest.approx(0.0005, abs=0.0001)


def test_an_outlier_moves_the_fit_little() -> None:
    model = BatchCostModel()
    for i in range(60):
        n = 1 + i % 32
        model.observe(n, 0.010 + 0.001 * n)
    model.observe(16, 5.0)  # a pause of the whole machine
    a, b = model.coefficients()
    assert a == pytest.approx(0.010, abs=0.003)
    assert b == pytest.approx(0.001, abs=0.0003)


def test_the_fit_follows_a_change_of_cost() -> None:
    model = BatchCostModel()
    for i in range(100):
        model.observe(1 + i % 8, 0.002)
    for i in range(200):
        model.observe(1 + i % 8, 0.020)
    assert model.predict(4) == pytest.approx(0.020, rel=0.05)


def test_one_batch_size_only_is_not_identified() -> None:
    model = BatchCostModel()
    for _ in range(50):
        model.observe(1, 0.001)
    assert not model.identified
    assert model.coefficients() == pytest.approx((0.001, 0.0))


def test_costs_are_never_negative() -> None:
    model = BatchCostModel()
    for n in (1, 10, 1, 10, 1, 10):
        model.observe(n, 0.010 if n == 1 else 0.005)  # bigger batches ran faster
    a, b = model.coefficients()
    assert a >= 0.0 and b >= 0.0


def test_the_arrival_rate_is_the_mean_rate_of_bursts() -> None:
    rate = ArrivalRate()
    now = 0.0
    for _ in range(200):  # bursts of 32 calls 10 us apart, every 20 ms: 1600 items/s
        for _ in range(32):
            rate.observe(now)
            now += 1e-5
        now += 0.020 - 32e-5
    assert rate.rate(now) == pytest.approx(1600, rel=0.35)


def test_a_long_silence_lowers_the_rate_at_once() -> None:
    rate = ArrivalRate()
    for i in range(100):
        rate.observe(i * 0.001)
    assert rate.rate(0.1) == pytest.approx(1000, rel=0.1)
    assert rate.rate(10.0) < 1.0


def test_a_batch_of_items_counts_each_item() -> None:
    rate = ArrivalRate()
    for i in range(300):
        rate.observe(i * 0.01, count=10)
    assert rate.rate(3.0) == pytest.approx(1000, rel=0.1)


def test_hold_rate() -> None:
    assert hold_rate(10, 0.001) == pytest.approx(10_000)
    assert hold_rate(0, 0.001) == 0.0
    assert hold_rate(3, 0.0) == 0.0


def test_gain_grows_with_the_wait_exactly_when_a_fixed_cost_outweighs_the_queue() -> None:
    assert gain(1, 0.01, 2000, 0.020, 0.0) > 1.0  # rate * a = 40 > 1
    assert gain(8, 0.01, 200, 0.020, 0.0) < 1.0  # rate * a = 4 < 8
    assert gain(4, 0.01, 1000, 0.0, 0.001) < 1.0  # no fixed cost: waiting never pays


def test_the_reachable_batch_is_each_workers_share_of_the_peak_of_outstanding_calls() -> None:
    calls = Outstanding()
    assert calls.reachable(32, 2) == 32  # nothing seen yet: a full batch
    for outstanding in (1, 30, 64, 40):
        calls.observe(outstanding)
    assert calls.reachable(128, 2) == 32  # 64 clients can fill two batches of 32
    assert calls.reachable(16, 2) == 16  # never more than max_batch_size
    assert calls.reachable(128, 0) == 128
    for _ in range(64):  # a cycle of a closed loop later, the peak still holds
        calls.observe(40)
    assert calls.reachable(128, 2) == 32
    for _ in range(50_000):  # the load fell: the peak fades to it
        calls.observe(10)
    assert calls.reachable(128, 2) == 5


def _situation(**changes: float) -> Situation:
    """A loaded 20 ms model: 2 workers, one just freed, 1 item queued, 3000 items/s."""
    base: dict[str, float] = {
        "queued": 1,
        "max_batch_size": 32,
        "a": 0.020,
        "b": 0.0,
        "rate": 3000.0,
        "held_since": 100.0,
        "limit": 160.0,
        "idle_workers": 1,
        "workers": 2,
        "now": 100.0,
    }
    base.update(changes)
    values = {k: int(v) if k in ("queued", "max_batch_size", "idle_workers", "workers") else v
              for k, v in base.items()}  # fmt: skip
    return Situation(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "changes", "expected"),
    [
        ("loaded, short queue: wait to fill", {"rate": 4000.0}, 100.0 + 31 / 4000),
        ("a lone call at concurrency 1", {"rate": 50.0, "idle_workers": 2}, None),
        ("a lone call, one worker", {"rate": 50.0, "workers": 1}, None),
        ("full queue", {"queued": 32}, None),
        ("another worker is idle", {"idle_workers": 2}, None),
        ("low arrival rate", {"rate": 200.0}, None),
        ("load under a quarter of capacity", {"rate": 700.0}, None),
        ("slower arrivals: capped at a/2", {"rate": 1000.0}, 100.010),
        ("cap counts from the start of the hold", {"rate": 1000.0, "held_since": 99.995}, 100.005),
        ("hold over", {"held_since": 99.98}, None),
        ("deadline caps the wait", {"rate": 1000.0, "limit": 100.025}, 100.005),
        ("deadline too close to wait", {"limit": 100.0201}, None),
        ("no fixed cost", {"a": 0.0, "b": 0.001}, None),
        ("per-item cost dominates", {"a": 0.001, "b": 0.001, "queued": 8}, None),
        ("nearly full: the last items are not worth it", {"queued": 31}, None),
    ],
)
def test_release_policy(case: str, changes: dict[str, float], expected: float | None) -> None:
    until = release(_situation(**changes))
    if expected is None:
        assert until is None, case
    else:
        assert until == pytest.approx(expected, abs=1e-6), case


def test_an_unmeasured_model_never_waits() -> None:
    assert release(_situation(), identified=False) is None


def test_a_wait_never_passes_half_the_fixed_cost_nor_the_limit() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        s = _situation(
            queued=rng.randint(1, 40),
            a=rng.uniform(0.0, 0.05),
            b=rng.uniform(0.0, 0.002),
            rate=rng.uniform(0.0, 20000.0),
            held_since=100.0 - rng.uniform(0.0, 0.03),
            limit=100.0 + rng.uniform(0.0, 0.1),
            idle_workers=rng.randint(1, 3),
            workers=rng.randint(1, 4),
        )
        until = release(s)
        if until is not None:
            assert s.queued < s.max_batch_size and s.idle_workers == 1
            assert s.now < until <= s.held_since + s.a / 2 + 1e-12
            assert until + s.a + s.b * s.max_batch_size <= s.limit + 1e-12
