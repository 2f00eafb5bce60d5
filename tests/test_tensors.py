"""The tensor shorthand: its JSON Schema (checked with a real validator), the
float ranges, and the reasons two declarations cannot meet."""

from __future__ import annotations

from typing import Any

import jsonschema
import numpy as np
import pytest

from orchestrator._tensors import (
    DTYPES,
    DYNAMIC,
    FLOAT_MAX,
    mismatch,
    tensor_json_schema,
    tensor_spec,
)
from orchestrator.plan import TensorSpec


def _valid(spec: TensorSpec, value: Any) -> bool:
    return jsonschema.Draft202012Validator(tensor_json_schema(spec)).is_valid(value)


def test_tensor_spec_reads_dtype_and_shape_as_ints() -> None:
    spec = tensor_spec({"dtype": "float32", "shape": [DYNAMIC, 3.0]})
    assert spec == TensorSpec(dtype="float32", shape=(-1, 3))
    assert all(type(n) is int for n in spec.shape)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_accepts_zero_and_refuses_a_string(dtype: str) -> None:
    spec = TensorSpec(dtype=dtype, shape=(2,))
    zero: Any = [False, False] if dtype == "bool" else [0, 0]
    assert _valid(spec, zero)
    assert not _valid(spec, ["0", "0"])


@pytest.mark.parametrize(
    ("dtype", "value", "valid"),
    [
        ("bool", True, True),
        ("bool", 1, False),
        ("int32", -5, True),
        ("int32", 1.5, False),
        ("uint8", 0, True),
        ("uint8", -1, False),
        ("uint64", -1, False),
        ("float16", 65504.0, True),
        ("float16", 65520.0, False),
        ("float16", -65520.0, False),
        ("float32", 3.0e38, True),
        ("float32", 3.5e38, False),
        ("float64", 1.0e308, True),
        ("float64", 7, True),
    ],
)
def test_scalar_ranges(dtype: str, value: Any, valid: bool) -> None:
    assert _valid(TensorSpec(dtype=dtype, shape=()), value) is valid


def test_float_max_is_each_float_dtypes_largest_finite_value() -> None:
    for name in ("float16", "float32", "float64"):
        largest = FLOAT_MAX[np.dtype(name).itemsize]
        assert np.isfinite(np.array(largest, dtype=name))
        assert largest == float(np.finfo(name).max)


@pytest.mark.parametrize(
    ("shape", "value", "valid"),
    [
        ((2, 3), [[1, 2, 3], [4, 5, 6]], True),
        ((2, 3), [[1, 2, 3]], False),
        ((2, 3), [[1, 2], [3, 4]], False),
        ((DYNAMIC, 2), [], True),
        ((DYNAMIC, 2), [[1, 2]] * 50, True),
        ((DYNAMIC, 2), [[1, 2, 3]], False),
        ((2, DYNAMIC), [[1], [2, 3]], True),
        ((), 4.0, True),
        ((), [4.0], False),
        ((1,), 4.0, False),
    ],
)
def test_shapes_fix_only_the_declared_dimensions(
    shape: tuple[int, ...], value: Any, valid: bool
) -> None:
    assert _valid(TensorSpec(dtype="float32", shape=shape), value) is valid


@pytest.mark.parametrize(
    ("shape", "description"),
    [
        ((DYNAMIC, 64), "a int8 tensor of shape [any, 64], as nested lists"),
        ((), "a int8 tensor of shape [], as nested lists"),
        ((3, DYNAMIC, 1), "a int8 tensor of shape [3, any, 1], as nested lists"),
    ],
)
def test_description_names_dtype_and_shape(shape: tuple[int, ...], description: str) -> None:
    assert tensor_json_schema(TensorSpec("int8", shape))["description"] == description


@pytest.mark.parametrize(
    ("produced", "declared", "reason"),
    [
        (("float32", (4,)), ("float32", (4,)), None),
        (("float32", (-1, 4)), ("float32", (8, 4)), None),
        (("float32", (8, 4)), ("float32", (-1, -1)), None),
        (("float32", (4,)), ("float64", (4,)), "dtype float32 does not match float64"),
        (
            ("int8", (4,)),
            ("int8", (4, 1)),
            "shape [4] has 1 dimensions, [4, 1] has 2",
        ),
        (
            ("int8", (2, 3)),
            ("int8", (2, 5)),
            "shape [2, 3] does not fit [2, 5] (dimension 1: 3 != 5)",
        ),
        (("int8", (4,)), ("uint8", (5,)), "dtype int8 does not match uint8"),
    ],
)
def test_mismatch_says_which_part_differs(
    produced: tuple[str, tuple[int, ...]],
    declared: tuple[str, tuple[int, ...]],
    reason: str | None,
) -> None:
    assert mismatch(TensorSpec(*produced), TensorSpec(*declared)) == reason
