"""The Open Inference Protocol codec: datatypes, JSON and binary tensors, request framing."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from orchestrator.errors import RequestError
from orchestrator.server._oip_codec import (
    DATATYPES,
    Tensor,
    datatype_of,
    decode_binary_data,
    decode_inputs,
    decode_json_data,
    encode_binary,
    encode_json_data,
    encode_response,
    numpy_dtype,
    split_body,
)

NUMERIC = [name for name in DATATYPES if name not in ("BYTES", "BOOL")]


def _sample(datatype: str) -> np.ndarray:
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    if datatype == "BYTES":
        array = np.empty((2, 2), dtype=object)
        array[:] = [[b"a", b""], ["é".encode(), b"xyz"]]
        return array
    return np.arange(6).reshape(2, 3).astype(DATATYPES[datatype])


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_binary_round_trip_keeps_values_dtype_and_shape(datatype: str) -> None:
    array = _sample(datatype)
    raw = encode_binary(array)
    back = decode_binary_data(raw, datatype, list(array.shape), "inputs[0]")
    assert back.shape == array.shape
    assert back.dtype == numpy_dtype(datatype)
    assert back.tolist() == array.tolist()


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_json_round_trip_keeps_values(datatype: str) -> None:
    array = _sample(datatype)
    data = encode_json_data(array)
    assert isinstance(data, list) and len(data) == array.size
    json.dumps(data)  # plain JSON
    back = decode_json_data(data, datatype, list(array.shape), "inputs[0]")
    assert back.tolist() == array.tolist()


def test_bytes_binary_is_length_prefixed_little_endian() -> None:
    array = np.array([b"ab", b"xyz"], dtype=object)
    assert encode_binary(array) == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 3) + b"xyz"


def test_numeric_binary_is_little_endian() -> None:
    assert encode_binary(np.array([1], dtype=np.int32)) == b"\x01\x00\x00\x00"


def test_nested_json_data_is_accepted_row_major() -> None:
    back = decode_json_data([[1, 2], [3, 4]], "INT32", [2, 2], "x")
    assert back.tolist() == [[1, 2], [3, 4]]


def test_datatype_of_maps_numpy_and_strings() -> None:
    assert datatype_of(np.dtype(np.float16)) == "FP16"
    assert datatype_of(np.dtype(np.uint64)) == "UINT64"
    assert datatype_of(np.array(["a"]).dtype) == "BYTES"
    for name in NUMERIC:
        assert datatype_of(DATATYPES[name]) == name


@pytest.mark.parametrize(
    ("data", "datatype", "shape", "field"),
    [
        ([1, 2, 3], "INT32", [2], "inputs[0].data"),
        ([1.5], "INT32", [1], "inputs[0].data"),
        ([1], "BOOL", [1], "inputs[0].data"),
        ([300], "UINT8", [1], "inputs[0].data"),
        ([1], "COMPLEX", [1], "inputs[0].datatype"),
        ([1], "BYTES", [1], "inputs[0].data"),
    ],
)
def test_bad_json_data_names_the_field(data: list, datatype: str, shape: list, field: str) -> None:
    with pytest.raises(RequestError) as caught:
        decode_json_data(data, datatype, shape, "inputs[0]")
    assert caught.value.field == field


def test_binary_size_must_match_the_shape() -> None:
    with pytest.raises(RequestError, match="needs 8"):
        decode_binary_data(b"\x00" * 4, "FP32", [2], "inputs[0]")


def test_truncated_bytes_element_is_an_error() -> None:
    with pytest.raises(RequestError, match="truncated"):
        decode_binary_data(struct.pack("<I", 5) + b"ab", "BYTES", [1], "inputs[0]")


def test_split_body_separates_header_and_binary() -> None:
    header = json.dumps({"inputs": []}).encode()
    parsed, rest = split_body(header + b"\x01\x02", str(len(header)))
    assert parsed == {"inputs": []}
    assert rest == b"\x01\x02"


@pytest.mark.parametrize("length", ["-1", "abc", "999"])
def test_split_body_rejects_a_bad_header_length(length: str) -> None:
    with pytest.raises(RequestError, match="Inference-Header-Content-Length"):
        split_body(b"{}", length)


def test_split_body_rejects_non_objects() -> None:
    with pytest.raises(RequestError, match="JSON object"):
        split_body(b"[1]", None)
    with pytest.raises(RequestError, match="not valid JSON"):
        split_body(b"{", None)


def test_decode_inputs_reads_json_and_binary_tensors_in_order() -> None:
    a = np.array([1.5, 2.5], dtype=np.float32)
    b = np.array([7, 8, 9], dtype=np.int64)
    header = {
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}},
            {"name": "j", "datatype": "BOOL", "shape": [1], "data": [True]},
            {
                "name": "b",
                "datatype": "INT64",
                "shape": [3],
                "parameters": {"binary_data_size": 24},
            },
        ]
    }
    tensors = decode_inputs(header, encode_binary(a) + encode_binary(b))
    assert [t.name for t in tensors] == ["a", "j", "b"]
    assert tensors[0].array.tolist() == [1.5, 2.5]
    assert tensors[1].array.tolist() == [True]
    assert tensors[2].array.tolist() == [7, 8, 9]


def test_decode_inputs_rejects_leftover_binary_and_missing_data() -> None:
    with pytest.raises(RequestError, match="belong to no input"):
        decode_inputs(
            {"inputs": [{"name": "a", "datatype": "INT8", "shape": [1], "data": [1]}]}, b"\x00"
        )
    with pytest.raises(RequestError) as caught:
        decode_inputs({"inputs": [{"name": "a", "datatype": "INT8", "shape": [1]}]}, b"")
    assert caught.value.field == "inputs[0]"
    with pytest.raises(RequestError) as caught:
        decode_inputs({"inputs": "x"}, b"")
    assert caught.value.field == "inputs"


def test_encode_response_json_only_has_no_header_length() -> None:
    body, length = encode_response({"model_name": "m"}, [Tensor("y", np.array([1.0, 2.0]), "FP64")])
    assert length is None
    assert json.loads(body)["outputs"] == [
        {"name": "y", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]}
    ]


def test_encode_response_binary_appends_data_after_the_header() -> None:
    y = np.array([[1, 2]], dtype=np.int16)
    body, length = encode_response(
        {"model_name": "m", "id": "7"}, [Tensor("y", y, "INT16", binary=True)]
    )
    assert length is not None
    header = json.loads(body[:length])
    assert header["id"] == "7"
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 4}
    assert "data" not in header["outputs"][0]
    assert body[length:] == y.tobytes()
