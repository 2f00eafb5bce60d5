"""Tensor declarations: the ``{tensor: {dtype, shape}}`` shorthand of inputs and
outputs, its JSON Schema (nested lists of numbers: the compiled plan, OpenAPI and
OIP metadata all use this one), the finite range of each float dtype, and whether
two declarations can meet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from orchestrator.plan import TensorSpec

# The numpy dtype names a graph file may use (the schema's enum says the same;
# a test keeps them in step).
DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)
DYNAMIC = -1

# The largest finite value of each float dtype, by itemsize: a JSON number beyond
# it would become infinity when cast.
FLOAT_MAX = {size: float(np.finfo(f"f{size}").max) for size in (2, 4, 8)}


def tensor_spec(data: Mapping[str, Any]) -> TensorSpec:
    """A ``TensorSpec`` from schema-valid ``{dtype, shape}`` data."""
    return TensorSpec(dtype=str(data["dtype"]), shape=tuple(int(n) for n in data["shape"]))


def _scalar_schema(dtype: str) -> dict[str, Any]:
    if dtype == "bool":
        return {"type": "boolean"}
    if dtype.startswith(("int", "uint")):
        schema: dict[str, Any] = {"type": "integer"}
        if dtype.startswith("uint"):
            schema["minimum"] = 0
        return schema
    largest = FLOAT_MAX[np.dtype(dtype).itemsize]
    return {"type": "number", "minimum": -largest, "maximum": largest}


def tensor_json_schema(spec: TensorSpec) -> dict[str, Any]:
    """The JSON form of a tensor: nested lists, fixed dimensions as min/maxItems."""
    schema = _scalar_schema(spec.dtype)
    for size in reversed(spec.shape):
        schema = {"type": "array", "items": schema}
        if size != DYNAMIC:
            schema["minItems"] = size
            schema["maxItems"] = size
    shape = ", ".join("any" if n == DYNAMIC else str(n) for n in spec.shape)
    schema["description"] = f"a {spec.dtype} tensor of shape [{shape}], as nested lists"
    return schema


def mismatch(produced: TensorSpec, declared: TensorSpec) -> str | None:
    """Why a tensor ``produced`` cannot be one ``declared``, or ``None`` if it can."""
    if produced.dtype != declared.dtype:
        return f"dtype {produced.dtype} does not match {declared.dtype}"
    if len(produced.shape) != len(declared.shape):
        return (
            f"shape {list(produced.shape)} has {len(produced.shape)} dimensions, "
            f"{list(declared.shape)} has {len(declared.shape)}"
        )
    for axis, (have, want) in enumerate(zip(produced.shape, declared.shape, strict=True)):
        if DYNAMIC not in (have, want) and have != want:
            return (
                f"shape {list(produced.shape)} does not fit {list(declared.shape)} "
                f"(dimension {axis}: {have} != {want})"
            )
    return None
