"""Request ids and the access log: every request gets an id, returned in
``X-Request-ID``, present in its log lines and in every error body it gets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from orchestrator import create_app, load
from orchestrator.server._request_log import MAX_ID_LENGTH, RequestIds
from orchestrator.server._serving import Served
from runners import log_context, logs
from tests._serve_helpers import SERVE_GRAPHS, thread_server
from tests.conftest import json_lines

CALC = SERVE_GRAPHS / "calc.yaml"
GOOD = {"x": [1.0], "label": "a"}


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """JSON lines of every graphctl record from info up, formatted as they are written
    (on the server's thread, in the request's context)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("graphctl")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_safe_request_id_is_kept_and_any_other_replaced() -> None:
    ids = RequestIds()
    assert ids.of([(b"x-request-id", b"trace-7f3a:01")]) == "trace-7f3a:01"
    made = {ids.of([]), ids.of([(b"x-request-id", b"has space")]), ids.new()}
    made.add(ids.of([(b"x-request-id", b"a" * (MAX_ID_LENGTH + 1))]))
    made.add(ids.of([(b"x-request-id", b"")]))
    made.add(ids.of([(b"x-request-id", "é".encode())]))
    assert len(made) == 6 and all(len(i) <= 20 and " " not in i for i in made)


def test_the_id_is_answered_logged_and_in_error_bodies(json_log: io.StringIO) -> None:
    app = create_app([load(CALC)], api_key="k", max_body_bytes=1000)
    key = {"authorization": "Bearer k"}
    with thread_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        ok = client.post("/calc", json=GOOD, headers={**key, "x-request-id": "ok-1"})
        invalid = client.post("/calc", json={"x": [1.0]}, headers={**key, "x-request-id": "v-2"})
        locked = client.post("/calc", json=GOOD, headers={"x-request-id": "k-3"})
        large = client.post("/calc", content=b"[" + b"1," * 1000 + b"1]", headers=key)
        oip = client.post("/v2/models/calc/infer", content=b"{", headers=key)
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "ok-1"
    for response, status in [(invalid, 422), (locked, 401), (large, 413), (oip, 400)]:
        assert response.status_code == status
        assert response.json()["request_id"] == response.headers["x-request-id"]
    assert invalid.json()["request_id"] == "v-2" and locked.json()["request_id"] == "k-3"
    access = {
        line["request_id"]: line
        for line in json_lines(json_log)
        if line["logger"] == "graphctl.access"
    }
    assert access["ok-1"]["status"] == 200 and access["ok-1"]["method"] == "POST"
    assert access["ok-1"]["path"] == "/calc" and float(str(access["ok-1"]["duration_ms"])) > 0
    assert access["k-3"]["status"] == 401
    assert access[large.headers["x-request-id"]]["status"] == 413
    assert "ok-1" in str(access["ok-1"]["message"])  # the text format shows it too


def test_the_access_log_can_be_turned_off(json_log: io.StringIO) -> None:
    app = create_app([load(CALC)], access_log=False)
    with thread_server(app) as url:
        response = httpx.post(f"{url}/calc", json=GOOD, timeout=30)
    assert response.headers["x-request-id"]
    assert not [line for line in json_lines(json_log) if line["logger"] == "graphctl.access"]


def test_a_failure_in_graphctls_code_is_logged_with_its_request(json_log: io.StringIO) -> None:
    app = create_app([load(CALC)])

    async def broken() -> None:
        raise KeyError("a bug")

    app.add_api_route("/broken", broken)
    with thread_server(app) as url:
        response = httpx.get(f"{url}/broken", headers={"x-request-id": "bug-1"}, timeout=30)
    assert response.status_code == 500
    assert response.json() == {"error": "internal error: KeyError", "request_id": "bug-1"}
    assert "Traceback" not in response.text
    (failure,) = [line for line in json_lines(json_log) if line["logger"] == "graphctl.serve"]
    assert failure["request_id"] == "bug-1" and "KeyError: 'a bug'" in str(failure["exception"])


def test_a_failed_request_is_logged_with_its_graph_and_id(json_log: io.StringIO) -> None:
    app = create_app([load(SERVE_GRAPHS / "broken.yaml")])
    with thread_server(app) as url:
        response = httpx.post(f"{url}/broken", json={"x": [1.0]}, headers={"x-request-id": "b-1"})
    assert response.status_code == 500 and response.json()["request_id"] == "b-1"
    (failure,) = [line for line in json_lines(json_log) if line["logger"] == "graphctl.serve"]
    assert failure["request_id"] == "b-1" and failure["graph"] == "broken"


def test_the_refusal_past_the_inflight_bound_names_its_request() -> None:
    served = Served([load(CALC)], max_inflight=1)
    with log_context.bound(request_id="busy-1"):
        start, body = served.slots["calc"].busy_response()
    assert start["status"] == 503
    assert json.loads(body["body"])["request_id"] == "busy-1"
    assert dict(start["headers"])[b"content-length"] == str(len(body["body"])).encode()
