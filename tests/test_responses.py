"""Every failure the web framework sees answers ``{"error": ...}``: an
``HttpError`` as a response, and the app-wide handlers behind a real uvicorn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from orchestrator.server._errors import HttpError
from orchestrator.server._responses import add_error_handlers, error_response
from tests._serve_helpers import thread_server


@pytest.mark.parametrize(
    ("error", "detail", "body"),
    [
        (HttpError(404, "no such graph"), False, {"error": "no such graph"}),
        (
            HttpError(422, "must be a number", field="inputs.x"),
            False,
            {"error": "must be a number", "field": "inputs.x"},
        ),
        (
            HttpError(422, "must be a number", field="inputs.x"),
            True,
            {
                "error": "must be a number",
                "field": "inputs.x",
                "detail": [
                    {
                        "loc": ["body", "inputs", "x"],
                        "msg": "must be a number",
                        "type": "value_error",
                    }
                ],
            },
        ),
        (
            HttpError(422, "body is not an object"),
            True,
            {
                "error": "body is not an object",
                "detail": [
                    {"loc": ["body"], "msg": "body is not an object", "type": "value_error"}
                ],
            },
        ),
        (HttpError(503, "busy"), True, {"error": "busy"}),  # detail only for 422
    ],
)
def test_error_response_body(error: HttpError, detail: bool, body: dict[str, Any]) -> None:
    response = error_response(error, detail=detail)
    assert response.status_code == error.status
    assert json.loads(bytes(response.body)) == body


def test_error_response_carries_the_headers() -> None:
    response = error_response(HttpError(503, "busy", headers={"Retry-After": "2"}))
    assert response.headers["retry-after"] == "2"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/typed/{number}")
    async def typed(number: int) -> dict[str, int]:
        return {"number": number}

    @app.get("/bug")
    async def bug() -> None:
        raise ZeroDivisionError("hidden detail")

    with thread_server(app, wait_ready=False) as base:
        yield base


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/typed/7", 200, {"number": 7}),
        ("GET", "/nowhere", 404, {"error": "Not Found"}),
        ("POST", "/typed/7", 405, {"error": "Method Not Allowed"}),
        (
            "GET",
            "/typed/seven",
            422,
            {
                "error": "Input should be a valid integer, unable to parse string as an integer",
                "field": "number",
            },
        ),
        ("GET", "/bug", 500, {"error": "internal error: ZeroDivisionError"}),
    ],
)
def test_every_failure_has_the_same_body(
    url: str, method: str, path: str, status: int, body: dict[str, Any]
) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.request(method, path)
    assert response.status_code == status
    assert response.json() == body
    assert "hidden detail" not in response.text


def test_method_not_allowed_keeps_its_allow_header(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/typed/1")
    assert response.headers["allow"] == "GET"
