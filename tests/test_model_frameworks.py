"""The registry of framework runners: each framework's runner, methods and
default signatures, the check of stored signatures, and unknown names refused."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

from runners.errors import ModelError
from runners.models.frameworks import FRAMEWORKS, framework_for
from runners.models.refs import Signature
from runners.runnable import runnable_methods

AVAILABLE = [
    name
    for name in FRAMEWORKS
    if importlib.util.find_spec(
        {"sklearn": "sklearn", "onnx": "onnxruntime", "torch": "torch"}[name]
    )
]


@pytest.mark.parametrize("name", AVAILABLE)
def test_each_framework_names_a_runner_that_declares_its_methods(name: str) -> None:
    framework = framework_for(name)
    module_name, _, class_name = framework.runnable.partition(":")
    assert module_name == FRAMEWORKS[name]
    runner = getattr(importlib.import_module(module_name), class_name)
    assert framework.methods == set(runnable_methods(runner))  # a stored method can be served
    assert set(framework.default_signatures) <= framework.methods
    assert framework.multithreaded is bool(runner.SUPPORTS_CPU_MULTI_THREADING)
    framework.check_methods(framework.default_signatures)  # the defaults pass


def test_sklearn_is_single_threaded_and_predicts_in_batches() -> None:
    sklearn = framework_for("sklearn")
    assert sklearn.name == "sklearn" and not sklearn.multithreaded
    assert sklearn.default_signatures == {"predict": Signature(batchable=True, batch_dim=0)}
    assert sklearn.filename_for(sklearn.detect_format(Path("m"))) == "model.joblib"


def test_a_signature_for_a_method_the_framework_lacks_is_refused() -> None:
    sklearn = framework_for("sklearn")
    with pytest.raises(ModelError) as info:
        sklearn.check_methods(
            {"predict": Signature(), "forward": Signature(), "embed": Signature()}
        )
    message = str(info.value)
    assert message.startswith("sklearn models have no method 'embed', 'forward'; available: ")
    assert "predict" in message.split("available: ")[1]


@pytest.mark.parametrize("name", ["tensorflow", "", "SKLEARN"])
def test_unknown_frameworks_list_the_known_ones(name: str) -> None:
    with pytest.raises(ModelError) as info:
        framework_for(name)
    assert str(info.value) == (
        f"unknown model framework {name!r}; choose one of {', '.join(sorted(FRAMEWORKS))}"
    )
