"""Open Inference Protocol v2 tensors: datatypes, JSON and binary encodings.

Pure functions over bytes and numpy arrays, shared by the ``/v2`` routes and
their tests. A request is a JSON header, optionally followed by raw tensor
bytes (the binary tensor extension): the header's length is given by the
``Inference-Header-Content-Length`` HTTP header and every binary input names
its size in ``parameters.binary_data_size``. ``BYTES`` elements are encoded in
binary as a 4-byte little-endian length followed by the bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.errors import RequestError, abbreviate
from orchestrator.server._json_body import loads

HEADER_LENGTH = "inference-header-content-length"

# OIP datatype -> numpy dtype; BYTES is an object array of ``bytes``.
DATATYPES: Mapping[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}


@dataclass(frozen=True)
class Tensor:
    """A named tensor of a request or response; ``binary`` asks for raw output."""

    name: str
    array: np.ndarray[Any, Any]
    datatype: str
    binary: bool = False
    parameters: Mapping[str, Any] | None = None


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The OIP datatype of a numpy dtype; strings and objects are ``BYTES``."""
    if dtype.kind in "OUS":
        return "BYTES"
    try:
        return _BY_DTYPE[dtype]
    except KeyError:
        raise RequestError(f"numpy dtype {dtype} has no Open Inference Protocol datatype") from None


def numpy_dtype(datatype: str, *, field: str = "datatype") -> np.dtype[Any]:
    """The numpy dtype of an OIP datatype name."""
    try:
        return DATATYPES[datatype.upper()]
    except (KeyError, AttributeError):
        expected = ", ".join(DATATYPES)
        raise RequestError(
            f"unknown datatype {abbreviate(datatype)!r}, expected one of {expected}", field=field
        ) from None


def _element_count(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _check_shape(shape: Any, field: str) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise RequestError("shape must be a list of non-negative integers", field=field)
    return tuple(shape)


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [leaf for item in data for leaf in _flatten(item)]
    return [data]


def _as_bytes(value: Any, field: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise RequestError("BYTES elements must be strings", field=field)


def _fits_kind(value: Any, kind: str) -> bool:
    if kind == "b":
        return isinstance(value, bool)
    if kind in "iu":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def decode_json_data(
    data: Any, datatype: str, shape: Sequence[int], field: str
) -> np.ndarray[Any, Any]:
    """A tensor from its JSON ``data`` (nested or flat, row-major)."""
    dtype = numpy_dtype(datatype, field=f"{field}.datatype")
    flat = _flatten(data)
    if len(flat) != _element_count(shape):
        raise RequestError(
            f"data has {len(flat)} elements but shape {list(shape)} needs {_element_count(shape)}",
            field=f"{field}.data",
        )
    if dtype.kind == "O":
        array = np.empty(len(flat), dtype=object)
        array[:] = [_as_bytes(v, f"{field}.data") for v in flat]
        return array.reshape(shape)
    if not all(_fits_kind(v, dtype.kind) for v in flat):
        raise RequestError(f"data must hold {datatype} values", field=f"{field}.data")
    try:
        with np.errstate(over="ignore"):
            array = np.asarray(flat, dtype=dtype).reshape(shape)
    except (ValueError, OverflowError) as error:
        raise RequestError(
            f"data does not fit {datatype}: {error}", field=f"{field}.data"
        ) from None
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise RequestError(
            f"data must hold finite {datatype} values within its range", field=f"{field}.data"
        )
    return array


def decode_binary_data(
    raw: bytes, datatype: str, shape: Sequence[int], field: str
) -> np.ndarray[Any, Any]:
    """A tensor from its raw little-endian bytes (length-prefixed elements for BYTES)."""
    dtype = numpy_dtype(datatype, field=f"{field}.datatype")
    count = _element_count(shape)
    if dtype.kind == "O":
        return _decode_bytes_elements(raw, count, field).reshape(shape)
    if len(raw) != count * dtype.itemsize:
        raise RequestError(
            f"binary data has {len(raw)} bytes but shape {list(shape)} of {datatype} needs "
            f"{count * dtype.itemsize}",
            field=f"{field}.parameters.binary_data_size",
        )
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _decode_bytes_elements(raw: bytes, count: int, field: str) -> np.ndarray[Any, Any]:
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise RequestError("truncated BYTES element length", field=field)
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise RequestError("truncated BYTES element", field=field)
        items.append(raw[offset : offset + size])
        offset += size
    if len(items) != count:
        raise RequestError(
            f"binary data has {len(items)} BYTES elements, shape needs {count}", field=field
        )
    array = np.empty(count, dtype=object)
    array[:] = items
    return array


def encode_binary(array: np.ndarray[Any, Any]) -> bytes:
    """Raw little-endian bytes of a tensor (length-prefixed elements for BYTES)."""
    if datatype_of(array.dtype) == "BYTES":
        parts = []
        for item in array.reshape(-1):
            data = item if isinstance(item, bytes) else str(item).encode()
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def encode_json_data(array: np.ndarray[Any, Any]) -> list[Any]:
    """The flat, row-major JSON ``data`` of a tensor (BYTES as UTF-8 strings)."""
    flat = array.reshape(-1)
    if datatype_of(array.dtype) == "BYTES":
        return [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in flat]
    return list(flat.tolist())


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON header of a request and the binary bytes after it."""
    if header_length is None:
        size = len(body)
    else:
        try:
            size = int(header_length)
        except ValueError:
            size = -1
        if not 0 <= size <= len(body):
            raise RequestError(
                f"Inference-Header-Content-Length {abbreviate(header_length)!r} does not fit "
                f"a body of {len(body)} bytes"
            )
    header = loads(body[:size])
    if not isinstance(header, dict):
        raise RequestError("the request must be a JSON object")
    return header, body[size:]


def decode_inputs(header: Mapping[str, Any], binary: bytes) -> list[Tensor]:
    """Every input tensor of an infer request, binary ones read in order from ``binary``."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("must be a non-empty list of tensors", field="inputs")
    tensors, offset = [], 0
    for index, spec in enumerate(inputs):
        field = f"inputs[{index}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise RequestError("each input needs a name, datatype, shape and data", field=field)
        shape = _check_shape(spec.get("shape"), f"{field}.shape")
        datatype = str(spec.get("datatype", ""))
        params = spec.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is None:
            if "data" not in spec:
                raise RequestError("needs data or parameters.binary_data_size", field=field)
            array = decode_json_data(spec["data"], datatype, shape, field)
        else:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise RequestError(
                    "binary_data_size exceeds the binary data sent",
                    field=f"{field}.parameters.binary_data_size",
                )
            array = decode_binary_data(binary[offset : offset + size], datatype, shape, field)
            offset += size
        tensors.append(Tensor(spec["name"], array, datatype.upper()))
    if offset != len(binary):
        raise RequestError(f"{len(binary) - offset} bytes of binary data belong to no input")
    return tensors


def encode_response(header: dict[str, Any], outputs: Sequence[Tensor]) -> tuple[bytes, int | None]:
    """The response body and, when some output is binary, the JSON header's length."""
    blobs: list[bytes] = []
    described = []
    for tensor in outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.array.shape),
        }
        params = dict(tensor.parameters or {})
        if tensor.binary:
            blob = encode_binary(tensor.array)
            params["binary_data_size"] = len(blob)
            blobs.append(blob)
        else:
            entry["data"] = encode_json_data(tensor.array)
        if params:
            entry["parameters"] = params
        described.append(entry)
    head = json.dumps({**header, "outputs": described}, separators=(",", ":")).encode()
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)
