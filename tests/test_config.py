"""Runner settings as frozen values: what each refuses (and says), the backoff
and hang-limit arithmetic, and method overrides over a ``@method`` declaration."""

from __future__ import annotations

import random
from typing import Any

import pytest

from runners.config import (
    DEFAULT_MAX_BATCH_SIZE,
    SUPERVISION_SECONDS,
    BatchingConfig,
    RemoteConfig,
    Resources,
    RunnerConfig,
    SupervisionConfig,
)
from runners.runnable import MethodSpec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size must be >= 1, got 0"),
        ({"max_latency_ms": 0}, "max_latency_ms must be > 0, got 0"),
        ({"max_latency_ms": -5.0}, "max_latency_ms must be > 0, got -5.0"),
    ],
)
def test_batching_refuses_impossible_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        BatchingConfig(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("name", SUPERVISION_SECONDS)
@pytest.mark.parametrize("value", [0, -1.0])
def test_every_supervision_duration_must_be_positive(name: str, value: float) -> None:
    with pytest.raises(ValueError) as info:
        SupervisionConfig(**{name: value})
    assert str(info.value) == f"{name} must be > 0, got {value}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hang_factor": 0.5}, "hang_factor must be >= 1, got 0.5"),
        ({"hang_warmup_batches": 0}, "hang_warmup_batches and max_start_failures must be >= 1"),
        ({"max_start_failures": 0}, "hang_warmup_batches and max_start_failures must be >= 1"),
    ],
)
def test_supervision_counts_and_factor(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        SupervisionConfig(**kwargs)
    assert str(info.value) == message


def test_hang_timeout_may_be_left_unset() -> None:
    assert SupervisionConfig(hang_timeout_s=None).hang_timeout_s is None


@pytest.mark.parametrize(
    ("early_deaths", "delay"),
    [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (50, 1.0)],
)
def test_restart_delay_doubles_per_early_death_up_to_the_cap(
    early_deaths: int, delay: float
) -> None:
    config = SupervisionConfig(restart_backoff_s=0.1, restart_backoff_cap_s=1.0)
    assert config.restart_delay_s(early_deaths) == pytest.approx(delay)


@pytest.mark.parametrize(
    ("failures", "ceiling"), [(0, 0.1), (1, 0.2), (3, 0.8), (4, 1.0), (50, 1.0)]
)
def test_reconnect_delay_is_jittered_between_the_backoff_and_its_doubling_up_to_the_cap(
    failures: int, ceiling: float
) -> None:
    config = RemoteConfig(reconnect_backoff_s=0.1, reconnect_backoff_cap_s=1.0)
    rng = random.Random(7)
    delays = [config.reconnect_delay_s(failures, rng) for _ in range(200)]
    assert all(0.1 <= d <= ceiling for d in delays)
    assert max(delays) - min(delays) == pytest.approx(ceiling - 0.1, abs=0.1 * ceiling)


@pytest.mark.parametrize(
    ("kwargs", "measured", "p99", "limit"),
    [
        ({"hang_timeout_s": 2.0}, 1000, 50.0, 2.0),  # fixed limit wins
        ({}, 0, 0.001, 60.0),  # warming up: the warm-up limit
        ({"hang_warmup_s": 1.0}, 19, 0.001, 5.0),  # never under the floor
        ({}, 20, 0.001, 5.0),  # measured, fast: the floor
        ({}, 20, 2.0, 20.0),  # measured: factor x p99
        ({"hang_factor": 3.0, "hang_floor_s": 1.0}, 25, 0.5, 1.5),
        ({"hang_warmup_batches": 1}, 1, 0.7, 7.0),
    ],
)
def test_hang_limit(kwargs: dict[str, Any], measured: int, p99: float, limit: float) -> None:
    assert SupervisionConfig(**kwargs).hang_limit_s(measured, p99) == pytest.approx(limit)


def test_resources_with_devices_ask_for_a_gpu() -> None:
    assert Resources(devices=(1, 0)).gpu == 1
    assert Resources(gpu=2, devices=(0,)).gpu == 2
    assert Resources().gpu == 0 and Resources().devices is None


@pytest.mark.parametrize("devices", [(), (0, -1)])
def test_resources_refuse_bad_device_lists(devices: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="devices must list GPU indexes >= 0"):
        Resources(devices=devices)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runnable": "models.MLP"}, "runnable must be 'module:Class', got 'models.MLP'"),
        ({"workers": 0}, "workers must be a positive integer or 'auto', got 0"),
        ({"workers": "all"}, "workers must be a positive integer or 'auto', got 'all'"),
        ({"workers": 1.5}, "workers must be a positive integer or 'auto', got 1.5"),
        ({"max_queue": 0}, "max_queue must be >= 1, got 0"),
    ],
)
def test_runner_config_refusals(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        RunnerConfig(**{"name": "r", "runnable": "m:C", **kwargs})
    assert str(info.value) == message


def test_runner_config_mappings_are_read_only_copies() -> None:
    init = {"seed": 1}
    config = RunnerConfig(name="r", runnable="m:C", init=init, env={"A": "1"}, workers="auto")
    init["seed"] = 2
    assert config.init["seed"] == 1
    with pytest.raises(TypeError):
        config.init["seed"] = 3  # type: ignore[index]
    with pytest.raises(TypeError):
        config.env["B"] = "2"  # type: ignore[index]


def test_batching_for_takes_the_method_override_else_the_runner_default() -> None:
    fast = BatchingConfig(max_batch_size=4)
    config = RunnerConfig(name="r", runnable="m:C", methods={"embed": fast})
    assert config.batching_for("embed") is fast
    assert config.batching_for("predict").max_batch_size == DEFAULT_MAX_BATCH_SIZE


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (BatchingConfig(), MethodSpec("m", batchable=True, batch_dim=1, stack=False)),
        (BatchingConfig(batchable=False), MethodSpec("m", False, 1, False)),
        (BatchingConfig(batch_dim=0, stack=True), MethodSpec("m", True, 0, True)),
    ],
)
def test_method_spec_applies_only_the_overrides_that_are_set(
    override: BatchingConfig, expected: MethodSpec
) -> None:
    config = RunnerConfig(name="r", runnable="m:C", methods={"m": override})
    assert config.method_spec(MethodSpec("m", batchable=True, batch_dim=1)) == expected
