"""Runners written with ``model:``: resolved once to an exact version in a real
store, the stored signatures become methods, the runner's settings apply on top,
and the framework runner's ``init`` follows the resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from orchestrator.compiling._modelref import _framework_init, model_methods, resolve_model_runner
from orchestrator.errors import GraphctlError
from runners import models
from runners.errors import ModelError, ModelNotFound
from runners.models.refs import Signature
from runners.models.store import ModelInfo
from runners.runnable import MethodSpec

SIGS = {"predict": {"batchable": True, "batch_dim": 0}, "predict_proba": None}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRAPHCTL_HOME", str(tmp_path))
    return tmp_path


def _save(name: str = "clf") -> str:
    x = np.random.default_rng(0).normal(size=(20, 3))
    estimator = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    return str(models.save(name, estimator, framework="sklearn", signatures=SIGS))


def test_model_methods_are_the_stored_signatures(store: Path) -> None:
    _save()
    assert model_methods("clf") == {
        "predict": MethodSpec("predict", batchable=True, batch_dim=0),
        "predict_proba": MethodSpec("predict_proba"),
    }


def test_latest_is_resolved_once_to_the_exact_version(store: Path) -> None:
    first = _save()
    config = resolve_model_runner("digits", "clf:latest", {}, store)
    assert config.init["model"] == first
    assert config.init["store"] == str(store)
    assert config.runnable == "runners.models.sklearn:SklearnRunnable"
    assert config.name == "digits" and config.search_path == store
    second = _save()
    assert resolve_model_runner("digits", "clf").init["model"] == second != first


def test_the_runner_entry_as_written_can_carry_the_reference(store: Path) -> None:
    ref = _save()
    config = resolve_model_runner(
        "r", {"model": "clf", "workers": 2, "batching": {"max_batch_size": 8}}
    )
    assert config.init["model"] == ref
    assert config.workers == 2
    assert config.batching_for("predict").max_batch_size == 8
    assert config.batching_for("predict").batchable
    assert not config.batching_for("predict_proba").batchable


def test_methods_settings_only_name_stored_methods(store: Path) -> None:
    _save()
    with pytest.raises(GraphctlError) as info:
        resolve_model_runner("r", {"model": "clf", "methods": {"transform": {"max_batch_size": 4}}})
    assert str(info.value).startswith("runner 'r': methods.transform:")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nothing", "nothing"),
        ("clf:20990101T000000-000000", "20990101T000000-000000"),
        ("bad name", "invalid model name 'bad name'"),
    ],
)
def test_store_problems_become_graph_errors_naming_the_model(
    store: Path, ref: str, message: str
) -> None:
    _save()
    with pytest.raises(GraphctlError) as info:
        resolve_model_runner("r", ref)
    assert message in str(info.value)
    assert not isinstance(info.value, ModelError)


def test_model_methods_raises_the_stores_error(store: Path) -> None:
    with pytest.raises(ModelNotFound):
        model_methods("absent")


def _info(framework: str) -> ModelInfo:
    return ModelInfo(
        name="m",
        version="v1",
        framework=framework,
        format="x",
        model_file="model.bin",
        signatures={"predict": Signature()},
        created="2025-01-01T00:00:00+00:00",
        files={},
        path=Path("/store/models/m/v1"),
    )


@pytest.mark.parametrize(
    ("framework", "spec", "extra"),
    [
        ("sklearn", {"resources": {"cpu": 4}}, {}),
        ("onnx", {"resources": {"cpu": 4}}, {"threads": 4}),
        ("onnx", {"resources": {"cpu": 2.5}}, {"threads": 2}),
        ("onnx", {"resources": {"cpu": 0.5}}, {}),
        ("torch", {"resources": {"cpu": 3}}, {"threads": 3}),
        ("torch", {"resources": {"gpu": 1}}, {"device": "cuda"}),
        ("torch", {"resources": {"gpu": 0}}, {}),
        ("torch", {"resources": {"devices": ["0"]}}, {"device": "cuda"}),
        ("onnx", {"resources": {"gpu": 1}}, {}),
        ("torch", {"resources": {"gpu": 1}, "init": {"device": "cpu"}}, {"device": "cpu"}),
        ("sklearn", {"init": {"n_jobs": 2}}, {"n_jobs": 2}),
        ("sklearn", {"resources": "not a mapping"}, {}),
    ],
)
def test_framework_init_follows_resources_and_init_wins(
    store: Path, framework: str, spec: dict[str, Any], extra: dict[str, Any]
) -> None:
    init = _framework_init(_info(framework), spec)
    assert init == {"model": "m:v1", "store": str(store), **extra}


def test_framework_init_refuses_an_init_that_is_not_a_mapping(store: Path) -> None:
    with pytest.raises(ModelError, match="runner init must be a mapping, got list"):
        _framework_init(_info("sklearn"), {"init": [1, 2]})
