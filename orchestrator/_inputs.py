"""A request's inputs checked against the graph, and outputs made JSON-ready.

``validate_inputs`` turns what a caller sent (JSON data, or numpy arrays from
Python) into what nodes receive: tensor inputs become numpy arrays of the
declared dtype and shape, JSON inputs are checked against their JSON Schema.
Every problem is a ``RequestError`` whose ``field`` names the input at fault,
and quotes at most a short prefix of the value at fault.

A float tensor given as JSON must hold finite numbers of its dtype's range
(``1e400`` or ``1e39`` for float32 would become infinity). JSON booleans in a
numeric tensor are refused over HTTP (``reject_booleans``): numpy would read
them as 1 and 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import numpy as np

from orchestrator._tensors import FLOAT_MAX
from orchestrator.errors import QUOTE_LIMIT, RequestError, abbreviate
from orchestrator.plan import InputPlan, Plan, TensorSpec


def validate_inputs(plan: Plan, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs of one request, validated and converted; raises ``RequestError``."""
    if not isinstance(inputs, Mapping):
        raise RequestError(f"inputs must be a JSON object, got {type(inputs).__name__}")
    unknown = sorted(set(inputs) - set(plan.inputs))
    if unknown:
        expected = ", ".join(plan.inputs) or "none"
        raise RequestError(f"unknown input (expected: {expected})", field=abbreviate(unknown[0]))
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
    error = jsonschema.exceptions.best_match(spec.validator.iter_errors(value))
    if error is not None:
        where = "".join(
            f"[{step}]" if isinstance(step, int) else f".{step}" for step in error.absolute_path
        )
        raise RequestError(_short_message(error), field=spec.name + abbreviate(where))


def _short_message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, with the value it quotes (maybe megabytes) abbreviated."""
    message = str(error.message)
    if len(message) <= 2 * QUOTE_LIMIT:
        return message
    quoted = repr(error.instance)
    if quoted in message:
        return message.replace(quoted, abbreviate(error.instance))
    return abbreviate(message, 2 * QUOTE_LIMIT)


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
    # JSON's 1e400 parses as infinity, and 1e39 overflows float32: one reduction before
    # the cast refuses both (NaN compares false too).
    if (
        dtype.kind == "f"
        and array.dtype.kind == "f"
        and isinstance(value, list)
        and array.size
        and not float(np.abs(array).max()) <= FLOAT_MAX[dtype.itemsize]
    ):
        raise RequestError(
            f"expected finite {dtype.name} values, got one out of its range", field=field
        )
    return array.astype(dtype, copy=False)


def reject_booleans(plan: Plan, body: Mapping[str, Any]) -> None:
    """``RequestError`` if a numeric tensor input holds a JSON boolean.

    Call it only for a body whose text has ``true`` or ``false``: the scan walks
    every element in Python, as costly as the conversion itself."""
    for name, spec in plan.inputs.items():
        value = body.get(name)
        if spec.tensor is not None and spec.tensor.dtype != "bool" and _holds_bool(value):
            raise RequestError(f"expected {spec.tensor.dtype} values, got a boolean", field=name)


def _holds_bool(value: Any) -> bool:
    if isinstance(value, list):
        return any(map(_holds_bool, value))
    return isinstance(value, bool)


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
