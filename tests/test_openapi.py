"""The OpenAPI pieces of POST /{graph}: the graph's own JSON Schemas, unchanged."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from orchestrator import compile_file
from orchestrator._tensors import tensor_json_schema
from orchestrator.server._openapi import operation_extra, request_schema, response_schema

DIAMOND = Path(__file__).resolve().parent.parent / "graphs" / "diamond.yaml"


def test_tensor_inputs_use_the_one_tensor_schema() -> None:
    plan = compile_file(DIAMOND)
    schema = request_schema(plan)
    assert schema["required"] == ["x"] and schema["additionalProperties"] is False
    x = plan.inputs["x"]
    assert x.tensor is not None
    assert schema["properties"]["x"] == tensor_json_schema(x.tensor)
    assert schema["properties"]["x"]["items"]["maximum"] == pytest.approx(3.4028235e38)
    assert set(response_schema(plan)["properties"]) == {"y"}


def test_the_schema_accepts_what_the_server_accepts() -> None:
    schema = request_schema(compile_file(DIAMOND))
    jsonschema.validate({"x": [0.5] * 64}, schema)
    for bad in ({"x": [0.5] * 63}, {"x": [1e39] * 64}, {}, {"x": [0.5] * 64, "z": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_the_operation_documents_every_answer() -> None:
    extra = operation_extra(compile_file(DIAMOND))
    assert set(extra["responses"]) == {"200", "422", "503", "504"}
    assert extra["requestBody"]["required"] is True
