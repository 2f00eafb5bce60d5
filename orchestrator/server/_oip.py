"""Open Inference Protocol v2 (KServe v2, Triton, MLServer) routes: each graph a model.

    app.include_router(oip_router(served))

Graph inputs and outputs become tensors: a tensor input keeps its dtype and
shape (``-1`` for dynamic dimensions); a JSON input maps to the closest tensor
(``string`` → ``BYTES [1]``, ``number`` → ``FP64 [1]``, an array → ``[-1]``,
an object → one ``BYTES`` element holding JSON). Errors are ``{"error": ...}``
with 400, 404 or 503, as the protocol says, never FastAPI's 422 shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from orchestrator._about import graphctl_version
from orchestrator.errors import RequestError, abbreviate
from orchestrator.plan import InputPlan, OutputPlan, TensorSpec
from orchestrator.server._deadlines import OIP_TIMEOUT_PARAMETER, parse_timeout_ms
from orchestrator.server._errors import HttpError
from orchestrator.server._graph_route import ClientWatch
from orchestrator.server._oip_codec import (
    HEADER_LENGTH,
    Tensor,
    datatype_of,
    decode_inputs,
    encode_response,
    split_body,
)
from orchestrator.server._responses import error_response
from orchestrator.server._serving import Served, Slot

MODEL_VERSION = "1"
PLATFORM = "graphctl"
_SCALARS = {"string": "BYTES", "integer": "INT64", "number": "FP64", "boolean": "BOOL"}


def schema_tensor(
    schema: Mapping[str, Any] | None, tensor: TensorSpec | None
) -> tuple[str, list[int]]:
    """The OIP datatype and shape standing for a declared input or output."""
    if tensor is not None:
        return datatype_of(np.dtype(tensor.dtype)), list(tensor.shape)
    kind = (schema or {}).get("type")
    if kind in _SCALARS:
        return _SCALARS[str(kind)], [1]
    if kind == "array":
        items = (schema or {}).get("items")
        item_type = items.get("type") if isinstance(items, Mapping) else None
        return _SCALARS.get(str(item_type), "BYTES"), [-1]
    return "BYTES", [1]


def _describe(
    name: str, schema: Mapping[str, Any] | None, tensor: TensorSpec | None
) -> dict[str, Any]:
    datatype, shape = schema_tensor(schema, tensor)
    return {"name": name, "datatype": datatype, "shape": shape}


def model_metadata(slot: Slot) -> dict[str, Any]:
    """``GET /v2/models/{graph}``: the graph as a model with its tensors."""
    plan = slot.graph.plan
    return {
        "name": plan.name,
        "versions": [MODEL_VERSION],
        "platform": PLATFORM,
        "inputs": [_describe(i.name, i.schema, i.tensor) for i in plan.inputs.values()],
        "outputs": [_describe(o.name, o.schema, o.tensor) for o in plan.outputs.values()],
    }


def input_value(tensor: Tensor, spec: InputPlan) -> Any:
    """A graph input from an OIP tensor: the array itself for tensor inputs, else JSON data.

    A tensor input takes only its own datatype: the protocol names the datatype
    sent, so another one (``INT64`` for an ``FP32`` input) is a mistake, not a cast."""
    array = tensor.array
    if spec.tensor is not None:
        declared = datatype_of(np.dtype(spec.tensor.dtype))
        if tensor.datatype != declared:
            raise RequestError(
                f"input {spec.name!r} is {declared}, got {abbreviate(tensor.datatype)}",
                field="inputs",
            )
        return array
    kind = spec.schema.get("type")
    texts = [
        v.decode(errors="replace") if isinstance(v, bytes) else v
        for v in array.reshape(-1).tolist()
    ]
    if kind == "array":
        return texts
    if len(texts) != 1:
        raise RequestError(f"expected one element, got shape {list(array.shape)}", field=spec.name)
    if kind == "object" or (kind is None and isinstance(texts[0], str)):
        try:
            return json.loads(texts[0])
        except ValueError:
            return texts[0]
    return texts[0]


def output_tensor(name: str, value: Any, binary: bool) -> Tensor:
    """An OIP tensor from a graph output value (arrays as they are, the rest as JSON-ish)."""
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
    elif isinstance(value, Mapping) or value is None:
        array = np.array([json.dumps(value, default=str).encode()], dtype=object)
    else:
        array = np.asarray(value if isinstance(value, list) else [value])
    if array.dtype.kind in "US" or array.dtype == object:
        flat = array.reshape(-1).tolist()
        array = np.empty(len(flat), dtype=object)
        array[:] = [_text(v) for v in flat]
        array = array.reshape(np.shape(value) if isinstance(value, list | np.ndarray) else (1,))
    return Tensor(name, array, datatype_of(array.dtype), binary=binary)


def _text(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else json.dumps(value, default=str).encode()


def _requested_outputs(
    header: Mapping[str, Any], plan_outputs: Mapping[str, OutputPlan]
) -> dict[str, bool]:
    """Output name -> binary?, from ``outputs`` and ``parameters.binary_data_output``."""
    params = header.get("parameters") or {}
    default_binary = (
        bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    )
    wanted = header.get("outputs")
    if wanted is None:
        return {name: default_binary for name in plan_outputs}
    if not isinstance(wanted, list):
        raise RequestError("must be a list of {name, parameters}", field="outputs")
    chosen: dict[str, bool] = {}
    for index, item in enumerate(wanted):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or name not in plan_outputs:
            raise RequestError(
                f"unknown output {abbreviate(name)!r}", field=f"outputs[{index}].name"
            )
        item_params = item.get("parameters") or {}
        chosen[name] = bool(item_params.get("binary_data", default_binary))
    return chosen


def _requested_timeout_ms(header: Mapping[str, Any]) -> float | None:
    """The request's own deadline, ``parameters.timeout_ms``, checked; ``None`` if absent."""
    params = header.get("parameters")
    if not isinstance(params, dict) or OIP_TIMEOUT_PARAMETER not in params:
        return None
    field = f"parameters.{OIP_TIMEOUT_PARAMETER}"
    return parse_timeout_ms(params[OIP_TIMEOUT_PARAMETER], field=field)


def _error(status: int, message: str) -> JSONResponse:
    return error_response(HttpError(status, message))


def oip_router(served: Served) -> APIRouter:
    """The ``/v2`` routes over the graphs of ``served``."""
    router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"])

    def find(name: str, model_version: str = MODEL_VERSION) -> Slot | JSONResponse:
        slot = served.slots.get(name)
        if slot is None:
            return _error(404, f"unknown model {abbreviate(name)!r}")
        if model_version != MODEL_VERSION:
            return _error(
                404, f"model {name!r} has no version {abbreviate(model_version)!r} (only 1)"
            )
        return slot

    @router.get("", summary="Server metadata")
    async def server_metadata() -> dict[str, Any]:
        return {
            "name": PLATFORM,
            "version": graphctl_version(),
            "extensions": ["binary_tensor_data"],
        }

    @router.get("/health/live", summary="Server liveness")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/health/ready", summary="Server readiness", response_model=None)
    async def ready() -> dict[str, bool] | JSONResponse:
        if served.not_ready():
            return JSONResponse({"ready": False}, status_code=503)
        return {"ready": True}

    @router.get("/models/{graph}", summary="Model metadata", response_model=None)
    @router.get(
        "/models/{graph}/versions/{model_version}", include_in_schema=False, response_model=None
    )
    async def metadata(
        graph: str, model_version: str = MODEL_VERSION
    ) -> dict[str, Any] | JSONResponse:
        slot = find(graph, model_version)
        return slot if isinstance(slot, JSONResponse) else model_metadata(slot)

    @router.get("/models/{graph}/ready", summary="Model readiness", response_model=None)
    @router.get(
        "/models/{graph}/versions/{model_version}/ready",
        include_in_schema=False,
        response_model=None,
    )
    async def model_ready(
        graph: str, model_version: str = MODEL_VERSION
    ) -> dict[str, Any] | JSONResponse:
        slot = find(graph, model_version)
        if isinstance(slot, JSONResponse):
            return slot
        if slot.not_ready():
            return JSONResponse({"name": graph, "ready": False}, status_code=503)
        return {"name": graph, "ready": True}

    @router.post("/models/{graph}/infer", summary="Inference", response_model=None)
    @router.post(
        "/models/{graph}/versions/{model_version}/infer",
        include_in_schema=False,
        response_model=None,
    )
    async def infer(graph: str, request: Request, model_version: str = MODEL_VERSION) -> Response:
        slot = find(graph, model_version)
        if isinstance(slot, JSONResponse):
            return slot
        return await _infer(served, slot, request)

    return router


async def _infer(served: Served, slot: Slot, request: Request) -> Response:
    plan = slot.graph.plan
    try:
        header, binary = split_body(await request.body(), request.headers.get(HEADER_LENGTH))
        tensors = decode_inputs(header, binary)
        inputs = {}
        for tensor in tensors:
            if tensor.name not in plan.inputs:
                raise RequestError(f"unknown input {abbreviate(tensor.name)!r}", field="inputs")
            inputs[tensor.name] = input_value(tensor, plan.inputs[tensor.name])
        wanted = _requested_outputs(header, plan.outputs)
        timeout_ms = _requested_timeout_ms(header)
    except RequestError as error:
        return _error(400, str(error))
    with ClientWatch(request.receive) as watch:
        result = await served.call(
            plan.name, "oip", inputs, bad_request_status=400, timeout_ms=timeout_ms
        )
    if watch.disconnected:
        return Response(status_code=499)  # never sent: the client is gone
    if isinstance(result, HttpError):
        return error_response(HttpError(result.status, _message(result), headers=result.headers))
    reply: dict[str, Any] = {"model_name": plan.name, "model_version": MODEL_VERSION}
    if "id" in header:
        reply["id"] = header["id"]
    outputs = [
        output_tensor(name, result[name], binary)
        for name, binary in wanted.items()
        if result.get(name) is not None
    ]
    body, head_length = encode_response(reply, outputs)
    if head_length is None:
        return Response(body, media_type="application/json")
    return Response(
        body,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(head_length)},
    )


def _message(error: HttpError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message
