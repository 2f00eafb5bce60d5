"""A request's inputs checked against the graph, and outputs made JSON-ready.

``validate_inputs`` turns what a caller sent (JSON data, or numpy arrays from
Python) into what nodes receive: tensor inputs become numpy arrays of the
declared dtype and shape, JSON inputs are checked against their JSON Schema.
Every problem is a ``RequestError`` whose ``field`` names the input at fault.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import jsonschema
import numpy as np

from orchestrator.errors import RequestError
from orchestrator.plan import InputPlan, Plan, TensorSpec


def validate_inputs(plan: Plan, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs of one request, validated and converted; raises ``RequestError``."""
    if not isinstance(inputs, Mapping):
        raise RequestError(f"inputs must be a JSON object, got {type(inputs).__name__}")
    unknown = sorted(set(inputs) - set(plan.inputs))
    if unknown:
        expected = ", ".join(plan.inputs) or "none"
        raise RequestError(f"unknown input (expected: {expected})", field=unknown[0])
    return {name: _one_input(spec, inputs) for name, spec in plan.inputs.items()}


def _one_input(spec: InputPlan, inputs: Mapping[str, Any]) -> Any:
    if spec.name not in inputs:
        if spec.required:
            raise RequestError("required input is missing", field=spec.name)
        return spec.schema.get("default")
    value = inputs[spec.name]
    if spec.tensor is not None:
        return to_tensor(value, spec.tensor, field=spec.name)
    _check_schema(spec, value)
    return value


def _check_schema(spec: InputPlan, value: Any) -> None:
    validator = _validator(_freeze(spec.schema))
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = "".join(
            f"[{step}]" if isinstance(step, int) else f".{step}" for step in error.absolute_path
        )
        raise RequestError(error.message, field=spec.name + where)


@functools.lru_cache(maxsize=256)
def _validator(frozen_schema: str) -> jsonschema.Draft7Validator:
    schema = json.loads(frozen_schema)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def _freeze(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, default=str)


def to_tensor(value: Any, spec: TensorSpec, *, field: str) -> np.ndarray[Any, Any]:
    """``value`` as a numpy array of ``spec``'s dtype and shape (``-1``: any size)."""
    dtype = np.dtype(spec.dtype)
    try:
        array = np.asarray(value)
    except ValueError:
        raise RequestError(
            "not a rectangular array (rows of different lengths)", field=field
        ) from None
    if array.dtype == object or not np.can_cast(array.dtype, dtype, casting="same_kind"):
        got = "mixed values" if array.dtype == object else array.dtype.name
        raise RequestError(f"expected {dtype.name} values, got {got}", field=field)
    if not _shape_fits(array.shape, spec.shape):
        want = "[" + ", ".join("*" if n == -1 else str(n) for n in spec.shape) + "]"
        raise RequestError(f"expected shape {want}, got {list(array.shape)}", field=field)
    return array.astype(dtype, copy=False)


def _shape_fits(shape: tuple[int, ...], declared: tuple[int, ...]) -> bool:
    return len(shape) == len(declared) and all(
        want == -1 or want == got for got, want in zip(shape, declared, strict=True)
    )


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy arrays as nested lists and numpy scalars as numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value
