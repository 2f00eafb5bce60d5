"""Errors over HTTP are safe and uniform: a real uvicorn server on 127.0.0.1, real workers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from orchestrator import create_app, load
from orchestrator.errors import (
    CallTimeout,
    ConditionError,
    DeadlineExceeded,
    GraphClosed,
    GraphUnavailable,
    NodeFailed,
    Overloaded,
    PoisonCall,
    PoolClosed,
    ReferenceFailed,
    RequestError,
    SkippedOutput,
    WorkerCrashed,
)
from orchestrator.server._errors import classify
from tests._serve_helpers import SERVE_GRAPHS, metric_value, thread_server

MAX_BODY = 4 * 2**20
SECRET = "secret=/etc/app/key"


def _app(*, expose_errors: bool = False) -> object:
    graphs = [load(SERVE_GRAPHS / "calc.yaml"), load(SERVE_GRAPHS / "faulty.yaml")]
    return create_app(graphs, max_body_bytes=MAX_BODY, expose_errors=expose_errors)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with thread_server(_app()) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def _count(client: httpx.Client, graph: str, route: str, status: int) -> float:
    return metric_value(
        str(client.base_url), "graphctl_requests_total", graph=graph, route=route, code=str(status)
    )


def test_a_large_invalid_value_is_quoted_by_a_short_prefix(client: httpx.Client) -> None:
    label = "a" * 2_000_000
    response = client.post("/calc", json={"x": [1.0], "label": label})
    assert response.status_code == 422
    assert len(response.content) < 2_000
    assert response.json()["field"] == "label" and "too long" in response.json()["error"]
    response = client.post("/calc", json={"x": [1.0], "label": "a", label: 1})
    assert response.status_code == 422 and len(response.content) < 2_000


def test_a_methods_exception_text_stays_in_the_log(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="graphctl.serve"):
        response = client.post("/faulty", json={"x": [1.0], "mode": "leak"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert "'scaler.leak'" in error and "PermissionError" in error
    assert SECRET not in response.text
    served = [r for r in caplog.records if r.name == "graphctl.serve"]
    assert len(served) == 1 and SECRET in served[0].getMessage()
    assert "'faulty'" in served[0].getMessage() and served[0].exc_info is None


def test_expose_errors_sends_the_text_to_clients() -> None:
    with thread_server(_app(expose_errors=True)) as url:
        response = httpx.post(f"{url}/faulty", json={"x": [1.0], "mode": "leak"}, timeout=60)
    assert response.status_code == 500 and SECRET in response.json()["error"]


def test_graphctls_own_messages_stay_informative(client: httpx.Client) -> None:
    response = client.post("/calc", json={"x": [[1.0]], "label": "a"})
    assert response.status_code == 422
    assert response.json() == {
        "error": "expected shape [*], got [1, 1]",
        "request_id": response.headers["x-request-id"],
        "field": "x",
        "detail": [
            {"loc": ["body", "x"], "msg": "expected shape [*], got [1, 1]", "type": "value_error"}
        ],
    }


@pytest.mark.parametrize("path", ["/calc", "/v2/models/calc/infer"])
def test_deep_nesting_is_refused_before_parsing(client: httpx.Client, path: str) -> None:
    body = b'{"x": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b', "label": "a"}'
    response = client.post(path, content=body)
    assert response.status_code in (400, 422)
    assert "deeper than 100" in response.json()["error"]


def test_brackets_inside_strings_do_not_count_as_nesting(client: httpx.Client) -> None:
    label = "[" * 150
    response = client.post("/calc", json={"x": [1.0], "label": label[:100]})
    assert response.status_code == 200, response.text


def test_complex_output_is_a_clear_error_naming_runner_and_method(client: httpx.Client) -> None:
    response = client.post("/faulty", json={"x": [1.0], "mode": "rotate"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert "'scaler.rotate'" in error and "complex64" in error


def test_unknown_paths_and_methods_answer_the_error_object(client: httpx.Client) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found", "request_id": missing.headers["x-request-id"]}
    wrong = client.get("/calc", headers={"X-Request-ID": "probe-405"})
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "Method Not Allowed", "request_id": "probe-405"}


def test_every_answered_request_is_counted(client: httpx.Client) -> None:
    before = {
        key: _count(client, *key)
        for key in [("calc", "json", 413), ("calc", "oip", 400), ("faulty", "json", 500)]
    }
    assert client.post("/calc", content=b"x" * (MAX_BODY + 1)).status_code == 413
    assert client.post("/v2/models/calc/infer", content=b"{nope").status_code == 400
    assert client.post("/faulty", json={"x": [1.0], "mode": "leak"}).status_code == 500
    for key, count in before.items():
        assert _count(client, *key) == count + 1, key


@pytest.mark.parametrize("x", ["[1.0, true]", "[NaN]", "[1e400]", "[1e39]", "[Infinity]"], ids=str)
def test_float_tensors_refuse_booleans_and_non_finite_numbers(client: httpx.Client, x: str) -> None:
    response = client.post("/calc", content=f'{{"x": {x}, "label": "a"}}'.encode())
    assert response.status_code == 422, response.text
    assert "error" in response.json()


def _oip_body(datatype: str, data: list[object]) -> dict[str, object]:
    return {
        "inputs": [
            {"name": "x", "datatype": datatype, "shape": [len(data)], "data": data},
            {"name": "label", "datatype": "BYTES", "shape": [1], "data": ["a"]},
        ]
    }


def test_oip_refuses_another_datatype_and_non_finite_data(client: httpx.Client) -> None:
    url = "/v2/models/calc/infer"
    assert client.post(url, json=_oip_body("FP32", [1.0])).status_code == 200
    wrong = client.post(url, json=_oip_body("INT64", [1]))
    assert wrong.status_code == 400 and "FP32" in wrong.json()["error"]
    huge = client.post(url, content=json.dumps(_oip_body("FP32", [1e39])).encode())
    assert huge.status_code == 400 and "finite" in huge.json()["error"]


def test_oip_unknown_version_is_404(client: httpx.Client) -> None:
    body = _oip_body("FP32", [1.0])
    assert client.post("/v2/models/calc/versions/1/infer", json=body).status_code == 200
    response = client.post("/v2/models/calc/versions/2/infer", json=body)
    assert response.status_code == 404 and "version" in response.json()["error"]
    assert client.get("/v2/models/calc/versions/2").status_code == 404


# The mapping itself: one table from class to status, walked along the MRO.


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RequestError("bad", field="x"), 422),
        (GraphClosed("closed"), 503),
        (DeadlineExceeded(), 504),
        (SkippedOutput("skipped"), 500),
        (ConditionError("cannot compare"), 500),
        (ReferenceFailed("no key"), 500),
        (Overloaded("full", retry_after_s=2.5), 503),
        (WorkerCrashed("gone"), 503),
        (CallTimeout("late"), 503),
        (PoolClosed("stopped"), 503),
        (PoisonCall("twice"), 500),
        (NodeFailed("a", WorkerCrashed("gone")), 503),
        (NodeFailed("a", ValueError("x")), 500),
        (KeyError("x"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_status_follows_the_class(error: BaseException, status: int) -> None:
    assert classify(error).status == status


def test_a_subclass_takes_its_category_status() -> None:
    class Draining(GraphUnavailable):
        """A temporary state no table entry names."""

    answer = classify(Draining("draining"))
    assert (answer.status, answer.headers["Retry-After"]) == (503, "1")


def test_retry_after_comes_from_the_error_or_its_cause() -> None:
    overloaded = Overloaded("full", retry_after_s=2.5)
    assert classify(overloaded).headers["Retry-After"] == "3"
    assert classify(NodeFailed("a", overloaded)).headers["Retry-After"] == "3"


def test_a_users_exception_is_named_by_type_only() -> None:
    failed = NodeFailed("a", ValueError(SECRET))
    answer = classify(failed)
    assert SECRET not in answer.message and "ValueError" in answer.message
    assert answer.log_text is not None and SECRET in answer.log_text
    assert SECRET in classify(failed, expose=True).message
    assert classify(RequestError("bad"), bad_request_status=400).status == 400
