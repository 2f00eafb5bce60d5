"""OpenAPI pieces of ``POST /{graph}``, built straight from the graph's JSON Schemas.

No pydantic models are generated: a graph's inputs and outputs already are JSON
Schemas (tensors become nested arrays with fixed lengths where the shape is
fixed), so they go into the operation as they are and a client generated from
``/openapi.json`` sees exactly what the server validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator._tensors import tensor_json_schema
from orchestrator.plan import Plan, TensorSpec

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"],
}


def _field_schema(schema: Mapping[str, Any] | None, tensor: TensorSpec | None) -> dict[str, Any]:
    if tensor is not None:
        return tensor_json_schema(tensor)
    return dict(schema or {})


def request_schema(plan: Plan) -> dict[str, Any]:
    """The JSON body ``POST /{graph}`` takes: one property per graph input."""
    return {
        "title": f"{plan.name} inputs",
        "type": "object",
        "properties": {
            name: _field_schema(spec.schema, spec.tensor) for name, spec in plan.inputs.items()
        },
        "required": [name for name, spec in plan.inputs.items() if spec.required],
        "additionalProperties": False,
    }


def response_schema(plan: Plan) -> dict[str, Any]:
    """The JSON body ``POST /{graph}`` returns: one property per graph output."""
    return {
        "title": f"{plan.name} outputs",
        "type": "object",
        "properties": {
            name: _field_schema(spec.schema, spec.tensor) for name, spec in plan.outputs.items()
        },
    }


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def operation_extra(plan: Plan) -> dict[str, Any]:
    """``openapi_extra`` of the graph's route: its request body and responses."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": request_schema(plan)}},
        },
        "responses": {
            "200": {
                "description": "The graph's outputs.",
                "content": {"application/json": {"schema": response_schema(plan)}},
            },
            "422": _error_response("An input is missing, extra or invalid; `field` names it."),
            "503": _error_response("Overloaded or not ready yet; retry after `Retry-After`."),
            "504": _error_response("The request's deadline passed."),
        },
    }
