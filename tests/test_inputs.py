"""Request inputs: JSON Schema validation, tensor conversion, errors naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator._inputs import to_jsonable, validate_inputs
from orchestrator.errors import RequestError
from orchestrator.plan import InputPlan, Plan, TensorSpec


def make_plan(*inputs: InputPlan) -> Plan:
    return Plan(
        name="t",
        description="",
        file=Path("t.yaml"),
        inputs={spec.name: spec for spec in inputs},
        outputs={},
        nodes={},
        runners={},
    )


PLAN = make_plan(
    InputPlan("x", {"type": "array"}, tensor=TensorSpec("float32", (-1, 3))),
    InputPlan(
        "doc",
        {
            "type": "object",
            "properties": {"text": {"type": "string"}, "lang": {"enum": ["en", "fr"]}},
            "required": ["text"],
        },
    ),
    InputPlan("k", {"type": "integer", "default": 5}, required=False),
)


def test_tensor_and_json_inputs_are_converted() -> None:
    out = validate_inputs(PLAN, {"x": [[1, 2, 3], [4, 5, 6]], "doc": {"text": "hi"}})
    assert isinstance(out["x"], np.ndarray)
    assert out["x"].dtype == np.float32 and out["x"].shape == (2, 3)
    assert out["doc"] == {"text": "hi"}
    assert out["k"] == 5


def test_numpy_input_of_the_right_dtype_is_not_copied() -> None:
    array = np.ones((4, 3), dtype=np.float32)
    out = validate_inputs(PLAN, {"x": array, "doc": {"text": "a"}})
    assert out["x"] is array


@pytest.mark.parametrize(
    ("inputs", "field", "message"),
    [
        ({"doc": {"text": "a"}}, "x", "required input is missing"),
        ({"x": [[1, 2]], "doc": {"text": "a"}}, "x", r"expected shape \[\*, 3\], got \[1, 2\]"),
        ({"x": [[1, 2, 3], [4]], "doc": {"text": "a"}}, "x", "rectangular"),
        ({"x": [["a", "b", "c"]], "doc": {"text": "a"}}, "x", "expected float32 values"),
        ({"x": [[1, 2, 3]], "doc": {}}, "doc", "'text' is a required property"),
        ({"x": [[1, 2, 3]], "doc": {"text": "a", "lang": "de"}}, "doc.lang", "is not one of"),
        ({"x": [[1, 2, 3]], "doc": {"text": "a"}, "z": 1}, "z", "unknown input"),
    ],
)
def test_bad_inputs_name_the_field(inputs: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        validate_inputs(PLAN, inputs)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_float_to_int_tensor_is_refused() -> None:
    plan = make_plan(InputPlan("i", {}, tensor=TensorSpec("int64", (2,))))
    assert validate_inputs(plan, {"i": [1, 2]})["i"].dtype == np.int64
    with pytest.raises(RequestError, match="expected int64"):
        validate_inputs(plan, {"i": [1.5, 2.0]})


def test_inputs_must_be_an_object() -> None:
    with pytest.raises(RequestError, match="JSON object"):
        validate_inputs(PLAN, [1, 2])  # type: ignore[arg-type]


def test_to_jsonable() -> None:
    value = {"a": np.arange(3, dtype=np.int32), "b": (np.float32(1.5), [np.bool_(True)]), 1: "x"}
    assert to_jsonable(value) == {"a": [0, 1, 2], "b": [1.5, [True]], "1": "x"}
