"""Conditions and references: pure functions over resolved values."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from orchestrator.errors import ConditionError, ReferenceFailed
from orchestrator.plan import AllOf, AnyOf, Compare, Not, Ref
from orchestrator.running._conditions import evaluate
from orchestrator.running._resolve import SKIPPED, SkippedInput, render, select

VALUES: dict[str, Any] = {
    "inputs": {"n": 3, "tags": ["a", "b"]},
    "router": {"label": "cat", "score": 0.8},
    "gone": SKIPPED,
    "obj": SimpleNamespace(text="hello", boxes=[[1, 2], [3, 4]]),
    "arr": np.arange(6).reshape(2, 3),
}


def label(op: str, value: Any) -> Compare:
    return Compare(Ref("router", ("label",), "$router.label"), op, value)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (label("eq", "cat"), True),
        (label("ne", "cat"), False),
        (label("in", ["cat", "dog"]), True),
        (label("not_in", ["cat", "dog"]), False),
        (Compare(Ref("router", ("score",)), "gt", 0.5), True),
        (Compare(Ref("router", ("score",)), "ge", 0.8), True),
        (Compare(Ref("router", ("score",)), "lt", 0.8), False),
        (Compare(Ref("router", ("score",)), "le", 0.8), True),
        (Compare(Ref("router", ("label",)), "exists"), True),
        (Compare(Ref("gone"), "exists"), False),
        (Compare(Ref("gone"), "eq", None), False),
        (Not(Compare(Ref("gone"), "exists")), True),
        (AllOf((label("eq", "cat"), Compare(Ref("inputs", ("n",)), "gt", 2))), True),
        (AllOf((label("eq", "cat"), Compare(Ref("inputs", ("n",)), "gt", 3))), False),
        (AnyOf((label("eq", "dog"), Compare(Ref("inputs", ("n",)), "eq", 3))), True),
        (AnyOf((label("eq", "dog"), label("eq", "cow"))), False),
    ],
)
def test_evaluate(condition: Any, expected: bool) -> None:
    assert evaluate(condition, VALUES) is expected


def test_incomparable_values_name_the_reference() -> None:
    with pytest.raises(ConditionError, match=r"\$router.label"):
        evaluate(label("gt", 3), VALUES)


def test_in_needs_a_list() -> None:
    with pytest.raises(ConditionError, match="list of choices"):
        evaluate(label("in", 3), VALUES)


def test_select_keys_indexes_and_attributes() -> None:
    assert select(VALUES["obj"], ("text",)) == "hello"
    assert select(VALUES["obj"], ("boxes", 1, "0")) == 3
    assert select(VALUES["arr"], (1, 2)) == 5
    assert select({"0": "zero"}, (0,)) == "zero"


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        ({"a": 1}, ("b",), "no key 'b'"),
        ([1, 2], (5,), "index 5 out of range"),
        (3, ("x",), "int value has no field 'x'"),
    ],
)
def test_select_errors_say_what_is_missing(value: Any, path: Any, message: str) -> None:
    with pytest.raises(ReferenceFailed, match=message):
        select(value, path, "$n.x")


def test_render_passes_values_by_reference() -> None:
    array = VALUES["arr"]
    rendered = render({"x": Ref("arr"), "k": [Ref("inputs", ("n",)), 7]}, VALUES)
    assert rendered["x"] is array
    assert rendered["k"] == [3, 7]


def test_render_skipped_raises_or_becomes_none() -> None:
    with pytest.raises(SkippedInput):
        render({"x": Ref("gone")}, VALUES)
    assert render({"x": Ref("gone")}, VALUES, skipped_as_none=True) == {"x": None}
