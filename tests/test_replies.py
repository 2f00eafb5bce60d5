"""A worker's answers as frames: loading the Runnable, its method table, and the
value / error / unknown-method replies exactly as the pool decodes them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runners.codec import roundtrip
from runners.errors import UnsupportedValue
from runners.replies import (
    error_reply,
    load_runnable,
    method_table,
    no_method_reply,
    value_reply,
)
from runners.runnable import Runnable, method

RUNNABLES = Path(__file__).parent / "runnables"


class _Doubler(Runnable):
    def __init__(self, factor: int = 2) -> None:
        self.factor = factor

    @method(batchable=True)
    def double(self, x: list[int]) -> list[int]:
        return [v * self.factor for v in x]

    @method
    def name(self) -> str:
        return "doubler"

    def helper(self) -> None:  # not marked: not callable by a graph
        """Not exposed."""


def test_method_table_lists_only_marked_methods_bound_to_the_instance() -> None:
    table = method_table(_Doubler(factor=3))
    assert sorted(table) == ["double", "name"]
    assert table["double"]([1, 2]) == [3, 6]


def test_load_runnable_imports_from_the_search_path_with_init(monkeypatch: Any) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(RUNNABLES)])
    config = {
        "runnable": "runner_models:Sleepy",
        "search_path": str(RUNNABLES),
        "init": {"delay_s": 0.0, "offset": 1.5},
    }
    instance = load_runnable(config)
    assert type(instance).__name__ == "Sleepy"
    assert sys.path[0] == str(RUNNABLES)
    assert instance.echo("hi") == "hi"


def test_load_runnable_reports_a_missing_class() -> None:
    with pytest.raises(AttributeError, match="NoSuchClass"):
        load_runnable({"runnable": "tests.runnables.runner_models:NoSuchClass"})


def test_value_reply_carries_the_batch_id_and_value() -> None:
    value = {"y": np.arange(3, dtype=np.int16)}
    kind, batch_id, decoded = roundtrip(value_reply(7, value, "r", "m"))
    assert (kind, batch_id) == ("ok", 7)
    np.testing.assert_array_equal(decoded["y"], value["y"])
    assert decoded["y"].dtype == np.int16


@pytest.mark.parametrize(
    ("bad", "start"),
    [
        (object(), "cannot send a value of type object"),
        ({1, 2}, "cannot send a value of type set"),
        (np.ones(2, np.complex64), "cannot send a numpy array of dtype complex64"),
    ],
)
def test_a_value_that_cannot_cross_becomes_an_error_reply(bad: Any, start: str) -> None:
    kind, batch_id, error_type, text = roundtrip(value_reply(3, bad, "mlp", "predict"))
    assert (kind, batch_id, error_type) == ("error", 3, "UnsupportedValue")
    assert text.startswith(start)  # the pool adds the runner and method again


@pytest.mark.parametrize(
    ("exc", "error_type", "text"),
    [
        (ValueError("bad shape"), "ValueError", "bad shape"),
        (KeyError("k"), "KeyError", "'k'"),
        (UnsupportedValue("no sets", runner="r", method="m"), "UnsupportedValue", "no sets"),
    ],
)
def test_error_reply_names_the_exception_class_and_its_text(
    exc: Exception, error_type: str, text: str
) -> None:
    assert roundtrip(error_reply(11, exc)) == ["error", 11, error_type, text]


def test_no_method_reply_is_a_lookup_error() -> None:
    assert roundtrip(no_method_reply(5, "predcit")) == [
        "error",
        5,
        "LookupError",
        "no method 'predcit'",
    ]
