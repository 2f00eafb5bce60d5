"""Runner settings merged onto a ``RunnerConfig`` field by field: what each key
accepts, every problem collected (with its path and words) instead of the first,
per-method batching under the runner's default, and the effective-settings dict."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.compiling._runner_settings import (
    Problem,
    config_to_dict,
    merge_batching,
    merge_settings,
)
from runners.config import BatchingConfig, Resources, RunnerConfig, SupervisionConfig

BASE = RunnerConfig(name="r", runnable="m:C")


def _merge(raw: dict[str, Any], **kwargs: Any) -> tuple[RunnerConfig, list[Problem]]:
    return merge_settings(BASE, raw, **kwargs)


@pytest.mark.parametrize(
    ("raw", "field", "value"),
    [
        ({"workers": 3}, "workers", 3),
        ({"workers": "auto"}, "workers", "auto"),
        ({"max_queue": 1}, "max_queue", 1),
        ({"env": {"A": "x", "N": 2, "F": 0.5}}, "env", {"A": "x", "N": "2", "F": "0.5"}),
        ({"resources": {"cpu": 2}}, "resources", Resources(cpu=2)),
        ({"resources": {"cpu": None, "gpu": 1}}, "resources", Resources(gpu=1)),
        ({"resources": {"devices": [1, 0]}}, "resources", Resources(gpu=1, devices=(1, 0))),
        (
            {"supervision": {"hang_timeout_s": 30, "ping_interval_s": 1}},
            "supervision",
            SupervisionConfig(hang_timeout_s=30, ping_interval_s=1),
        ),
        ({"supervision": {"hang_timeout_s": None}}, "supervision", SupervisionConfig()),
        (
            {"batching": {"max_batch_size": 8, "adaptive_wait": False}},
            "batching",
            BatchingConfig(max_batch_size=8, adaptive_wait=False),
        ),
    ],
)
def test_valid_settings_change_only_their_field(
    raw: dict[str, Any], field: str, value: Any
) -> None:
    merged, problems = _merge(raw)
    assert problems == []
    assert getattr(merged, field) == value
    untouched = {
        f for f in ("workers", "max_queue", "env", "resources", "supervision") if f != field
    }
    assert all(getattr(merged, f) == getattr(BASE, f) for f in untouched)


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({"workrs": 2}, ("workrs",), "unknown key 'workrs'; expected one of: workers, batching,"),
        ({"workers": 0}, ("workers",), "must be an integer >= 1 or 'auto', got 0"),
        ({"workers": True}, ("workers",), "must be an integer >= 1 or 'auto', got True"),
        ({"workers": "all"}, ("workers",), "must be an integer >= 1 or 'auto', got 'all'"),
        ({"max_queue": 2.0}, ("max_queue",), "must be an integer >= 1, got 2.0"),
        ({"env": ["A=1"]}, ("env",), "must be a mapping, got list"),
        ({"env": {"A": True}}, ("env", "A"), "must be a string, got True"),
        ({"env": {"A": None}}, ("env", "A"), "must be a string, got None"),
        ({"resources": 2}, ("resources",), "must be a mapping, got int"),
        ({"resources": {"cpu": 0}}, ("resources", "cpu"), "must be a number > 0 or null, got 0"),
        ({"resources": {"gpu": -1}}, ("resources", "gpu"), "must be an integer >= 0, got -1"),
        ({"resources": {"gpu": 0.5}}, ("resources", "gpu"), "must be an integer >= 0, got 0.5"),
        ({"resources": {"devices": []}}, ("resources", "devices"), "distinct GPU indexes >= 0"),
        ({"resources": {"devices": [0, 0]}}, ("resources", "devices"), "distinct GPU indexes"),
        ({"resources": {"devices": [-1]}}, ("resources", "devices"), "distinct GPU indexes"),
        ({"resources": {"disk": 1}}, ("resources", "disk"), "unknown key 'disk'"),
        ({"batching": {"max_batch_size": 0}}, ("batching", "max_batch_size"), "an integer >= 1"),
        ({"batching": {"max_latency_ms": 0}}, ("batching", "max_latency_ms"), "a number > 0"),
        ({"batching": {"batchable": 1}}, ("batching", "batchable"), "must be true or false, got 1"),
        ({"batching": {"batch_dim": -1}}, ("batching", "batch_dim"), "an integer >= 0, got -1"),
        ({"batching": []}, ("batching",), "must be a mapping, got list"),
        (
            {"supervision": {"hang_factor": 0.5}},
            ("supervision", "hang_factor"),
            "must be a number >= 1, got 0.5",
        ),
        (
            {"supervision": {"hang_timeout_s": 0}},
            ("supervision", "hang_timeout_s"),
            "must be a number > 0 or null, got 0",
        ),
        (
            {"supervision": {"max_start_failures": 1.5}},
            ("supervision", "max_start_failures"),
            "must be an integer >= 1, got 1.5",
        ),
        ({"supervision": {"pings": 1}}, ("supervision", "pings"), "unknown key 'pings'"),
        ({"methods": []}, ("methods",), "must be a mapping, got list"),
    ],
)
def test_each_problem_has_its_path_and_words(
    raw: dict[str, Any], path: tuple[Any, ...], message: str
) -> None:
    _, problems = _merge(raw)
    assert [p.path for p in problems] == [path]
    assert message in problems[0].message


def test_unknown_keys_are_marked_as_the_keys_fault() -> None:
    _, problems = _merge({"nope": 1, "workers": 0})
    assert [(p.path, p.on_key) for p in problems] == [(("nope",), True), (("workers",), False)]


def test_every_problem_is_collected_and_valid_fields_still_apply() -> None:
    merged, problems = _merge(
        {"workers": 2, "max_queue": 0, "batching": {"max_batch_size": 4, "stack": "no"}}
    )
    assert [p.path for p in problems] == [("max_queue",), ("batching", "stack")]
    assert merged.workers == 2 and merged.batching.max_batch_size == 4


def test_runner_batching_applies_to_every_method_entry_and_methods_on_top() -> None:
    base = RunnerConfig(
        name="r",
        runnable="m:C",
        methods={"embed": BatchingConfig(max_batch_size=2, batch_dim=1)},
    )
    merged, problems = merge_settings(
        base,
        {"batching": {"max_latency_ms": 5}, "methods": {"predict": {"max_batch_size": 16}}},
    )
    assert problems == []
    assert merged.batching == BatchingConfig(max_latency_ms=5)
    assert merged.methods["embed"] == BatchingConfig(
        max_batch_size=2, batch_dim=1, max_latency_ms=5
    )
    assert merged.methods["predict"] == BatchingConfig(max_batch_size=16, max_latency_ms=5)


def test_methods_must_be_known_when_the_names_are_given() -> None:
    _, problems = _merge({"methods": {"predcit": {}}}, known_methods=["predict", "embed"])
    (problem,) = problems
    assert problem.path == ("methods", "predcit") and problem.on_key
    assert problem.message == "runner 'r' has no method 'predcit'; known: embed, predict"
    merged, problems = _merge({"methods": {"anything": {"max_batch_size": 3}}})
    assert problems == [] and merged.methods["anything"].max_batch_size == 3


def test_merge_batching_leaves_the_base_alone_on_a_bad_mapping() -> None:
    problems: list[Problem] = []
    base = BatchingConfig(max_batch_size=7)
    assert merge_batching(base, "fast", ("batching",), problems) is base
    assert problems == [Problem(("batching",), "must be a mapping, got str")]


def test_config_to_dict_is_the_effective_settings() -> None:
    config = RunnerConfig(
        name="r",
        runnable="m:C",
        init={"seed": 1},
        workers="auto",
        methods={"embed": BatchingConfig(stack=True)},
        resources=Resources(cpu=2.0, devices=(1,)),
        env={"A": "1"},
    )
    found = config_to_dict(config)
    assert found["runnable"] == "m:C" and found["init"] == {"seed": 1}
    assert found["workers"] == "auto" and found["max_queue"] == config.max_queue
    assert found["methods"]["embed"]["stack"] is True
    assert found["batching"]["max_batch_size"] == config.batching.max_batch_size
    assert found["resources"] == {"cpu": 2.0, "gpu": 1, "devices": [1]}
    assert found["env"] == {"A": "1"}
    assert found["supervision"]["hang_timeout_s"] is None
    assert config_to_dict(BASE)["resources"]["devices"] is None
