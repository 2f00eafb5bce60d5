"""Open Inference Protocol v2 routes, driven by the real ``tritonclient.http`` client."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from orchestrator import create_app, load
from tests._serve_helpers import DIAMOND, SERVE_GRAPHS, thread_server


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app([load(DIAMOND), load(SERVE_GRAPHS / "calc.yaml")])
    with thread_server(app) as base:
        yield base


@pytest.fixture
def client(url: str) -> Iterator[triton.InferenceServerClient]:
    http = triton.InferenceServerClient(url.removeprefix("http://"), network_timeout=30)
    yield http
    http.close()


def _diamond_expected(x: np.ndarray) -> np.ndarray:
    """The diamond graph computed directly with its own functions, in this process."""
    spec = importlib.util.spec_from_file_location("diamond_models", DIAMOND.with_name("models.py"))
    assert spec is not None and spec.loader is not None
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    pre = models.normalize(x)
    a = models.MLP(hidden=256, seed=0).predict(pre[None, :])
    b = models.MLP(hidden=512, seed=1).predict(pre[None, :])
    return np.asarray(models.average_softmax(a, b))[0]


def _sample() -> np.ndarray:
    with open(DIAMOND.with_name("diamond.input.json")) as file:
        return np.asarray(json.load(file)["x"], dtype=np.float32)


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("diamond")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("diamond")
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [64]}]
    assert meta["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [10]}]
    calc = client.get_model_metadata("calc")
    assert calc["inputs"][0] == {"name": "x", "datatype": "FP32", "shape": [-1]}
    assert calc["inputs"][1] == {"name": "label", "datatype": "BYTES", "shape": [1]}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_round_trip_gives_the_graphs_values(
    client: triton.InferenceServerClient, binary: bool
) -> None:
    x = _sample()
    tensor = triton.InferInput("x", [64], "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    wanted = [triton.InferRequestedOutput("y", binary_data=binary)]
    result = client.infer("diamond", [tensor], outputs=wanted, request_id="req-7")
    response = result.get_response()
    assert response["id"] == "req-7"
    assert response["model_name"] == "diamond" and response["model_version"] == "1"
    y = result.as_numpy("y")
    assert y.dtype == np.float32 and y.shape == (10,)
    np.testing.assert_allclose(y, _diamond_expected(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_bytes_and_dynamic_shapes_round_trip(
    client: triton.InferenceServerClient, binary: bool
) -> None:
    x = triton.InferInput("x", [3], "FP32")
    x.set_data_from_numpy(np.array([1.0, 2.0, 3.5], dtype=np.float32), binary_data=binary)
    label = triton.InferInput("label", [1], "BYTES")
    label.set_data_from_numpy(np.array(["héllo".encode()], dtype=object), binary_data=binary)
    wanted = [
        triton.InferRequestedOutput(name, binary_data=binary) for name in ("y", "text", "total")
    ]
    result = client.infer("calc", [x, label], outputs=wanted, model_version="1")
    assert result.as_numpy("y").tolist() == [2.0, 4.0, 7.0]
    (text,) = result.as_numpy("text").tolist()  # tritonclient: str from JSON, bytes from binary
    assert (text.decode() if binary else text) == "HÉLLO"
    assert result.as_numpy("total").tolist() == [6.5]


def test_all_outputs_binary_when_asked_for_none(url: str) -> None:
    body = {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [1], "data": [4.0]},
            {"name": "label", "datatype": "BYTES", "shape": [1], "data": ["a"]},
        ],
        "parameters": {"binary_data_output": True},
    }
    response = httpx.post(f"{url}/v2/models/calc/infer", json=body)
    length = int(response.headers["Inference-Header-Content-Length"])
    header = json.loads(response.content[:length])
    assert [o["name"] for o in header["outputs"]] == ["y", "text", "total"]
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert sizes == [4, 4 + 1, 8]
    assert len(response.content) == length + sum(sizes)


def test_unknown_model_is_404_with_error_body(
    client: triton.InferenceServerClient, url: str
) -> None:
    response = httpx.post(f"{url}/v2/models/nope/infer", json={"inputs": []})
    assert response.status_code == 404
    request_id = response.headers["x-request-id"]
    assert response.json() == {"error": "unknown model 'nope'", "request_id": request_id}
    assert httpx.get(f"{url}/v2/models/nope").status_code == 404
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.get_model_metadata("nope")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"inputs": []}', "inputs"),
        (b'{"inputs": [{"name": "x", "datatype": "FP99", "shape": [1], "data": [1]}]}', "FP99"),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1]}]}', "shape"),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}', "label"),
        (b'{"inputs": [{"name": "zz", "datatype": "FP32", "shape": [1], "data": [1]}]}', "zz"),
    ],
)
def test_bad_requests_are_400_with_error_body(url: str, body: bytes, words: str) -> None:
    response = httpx.post(f"{url}/v2/models/calc/infer", content=body)
    assert response.status_code == 400
    error = response.json()
    assert list(error) == ["error", "request_id"]
    assert words in error["error"]


def test_unknown_requested_output_is_400(url: str) -> None:
    body = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [64], "data": [0.0] * 64}],
        "outputs": [{"name": "nope"}],
    }
    response = httpx.post(f"{url}/v2/models/diamond/infer", json=body)
    assert response.status_code == 400
    assert "nope" in response.json()["error"]


def test_server_metadata_and_health_bodies(url: str) -> None:
    assert httpx.get(f"{url}/v2").json()["name"] == "graphctl"
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{url}/v2/models/calc/ready").json() == {"name": "calc", "ready": True}
