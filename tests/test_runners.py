"""Compiling a graph's ``runners:`` section (``orchestrator.compiling._runners``):
the RunnerConfig each entry becomes, and every problem with the Runnable it
names (import, base class, ``init`` against ``__init__``, ``methods`` against its
``@method``s), each at its place in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.compiling._context import CompileContext
from orchestrator.compiling._runners import compile_runners
from orchestrator.compiling._spec import parse_document
from runners.config import BatchingConfig, Resources, SupervisionConfig
from runners.runnable import MethodSpec

MODULE = "gc_runner_models"
MODELS = """
from runners import Runnable, method

class Scaler(Runnable):
    def __init__(self, factor: float, *, offset: float = 0.0) -> None:
        self.factor = factor

    @method(batchable=True)
    def scale(self, x):
        return x

    @method
    def describe(self):
        return "scaler"

class NotARunnable:
    pass
"""


def _compile(
    tmp_path: Path, runners: dict[str, Any]
) -> tuple[dict[str, Any], list[tuple[int, int, str]]]:
    (tmp_path / f"{MODULE}.py").write_text(MODELS)  # each folder's own: see _imports
    text = yaml.safe_dump({"spec": {"runners": runners}}, sort_keys=False).replace("MODULE", MODULE)
    context = CompileContext(parse_document(text, "g.yaml"), tmp_path)
    compiled = compile_runners(context, context.doc.data["spec"]["runners"])
    return compiled, [(d.line, d.column, d.message) for d in context.diagnostics]


def test_an_entry_becomes_its_runner_config(tmp_path: Path) -> None:
    compiled, problems = _compile(
        tmp_path,
        {
            "r": {
                "runnable": "MODULE:Scaler",
                "init": {"factor": 2.0},
                "workers": 2,
                "batching": {"max_batch_size": 8},
                "methods": {"scale": {"max_latency_ms": 5}},
                "max_queue": 10,
                "resources": {"cpu": 1.5, "devices": [0]},
                "env": {"A": "1"},
                "supervision": {"hang_timeout_s": 3},
            }
        },
    )
    assert problems == []
    runner = compiled["r"]
    config = runner.config
    assert config.runnable.endswith(":Scaler") and config.search_path == tmp_path
    assert dict(config.init) == {"factor": 2.0} and config.workers == 2
    assert config.batching == BatchingConfig(max_batch_size=8)
    assert config.methods["scale"] == BatchingConfig(max_latency_ms=5)
    assert config.max_queue == 10 and dict(config.env) == {"A": "1"}
    assert config.resources == Resources(cpu=1.5, gpu=1, devices=(0,))
    assert config.supervision == SupervisionConfig(hang_timeout_s=3)
    assert runner.methods == {
        "scale": MethodSpec("scale", batchable=True),
        "describe": MethodSpec("describe"),
    }


@pytest.mark.parametrize(
    ("entry", "messages"),
    [
        (
            {"runnable": "MODULE:Scaler"},
            ["runner 'r': `init` misses 'factor', required by MODULE:Scaler.__init__"],
        ),
        (
            {"runnable": "MODULE:Scaler", "init": {"factor": 1, "ofset": 2}},
            ["runner 'r': MODULE:Scaler.__init__ takes no 'ofset' (did you mean 'offset'?)"],
        ),
        (
            {"runnable": "MODULE:Scaler", "init": {"factor": 1}, "methods": {"scal": {}}},
            ["runner 'r': MODULE:Scaler has no @method 'scal' (did you mean 'scale'?)"],
        ),
        (
            {"runnable": "MODULE:NotARunnable"},
            ["runner 'r': 'MODULE:NotARunnable' is not a subclass of runners.Runnable"],
        ),
        (
            {"runnable": "MODULE:Scalar"},
            ["runner 'r': cannot import 'MODULE:Scalar': module 'MODULE' has no 'Scalar'"
             " (did you mean 'Scaler'?)"],
        ),
        (
            {"runnable": "MODULE:Scaler", "init": {"factor": 1}, "batching": {"max_batch_size": 0}},
            ["runner 'r': max_batch_size must be >= 1, got 0"],
        ),
    ],
)  # fmt: skip
def test_problems_with_the_runnable_are_reported(
    tmp_path: Path, entry: dict[str, Any], messages: list[str]
) -> None:
    _, problems = _compile(tmp_path, {"r": entry})
    assert [m for _, _, m in problems] == [m.replace("MODULE", MODULE) for m in messages]


def test_problems_point_at_the_key_at_fault(tmp_path: Path) -> None:
    entry = {"runnable": "MODULE:Scaler", "init": {"factor": 1, "ofset": 2}}
    _, problems = _compile(tmp_path, {"r": entry})
    text = yaml.safe_dump({"spec": {"runners": {"r": entry}}}, sort_keys=False)
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "ofset" in row)
    assert [(row, column) for row, column, _ in problems] == [
        (line, text.splitlines()[line - 1].index("ofset") + 1)
    ]


def test_a_runner_that_cannot_import_is_still_known_by_its_config(tmp_path: Path) -> None:
    compiled, problems = _compile(tmp_path, {"r": {"runnable": "gc_absent_module:X"}})
    assert compiled["r"].cls is None and compiled["r"].methods is None
    assert len(problems) == 1 and "cannot import 'gc_absent_module:X'" in problems[0][2]
