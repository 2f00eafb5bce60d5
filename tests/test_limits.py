"""The body size limit and the API key, as ASGI middleware of a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from orchestrator.server._limits import ApiKey, BodySizeLimit
from tests._serve_helpers import thread_server

LIMIT = 1000
KEY = "s3cret"


def _echo_app() -> FastAPI:
    app = FastAPI()

    @app.get("/livez")
    async def livez() -> JSONResponse:
        return JSONResponse({"live": True})

    @app.post("/echo")
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"size": len(await request.body())})

    app.add_middleware(BodySizeLimit, max_bytes=LIMIT)
    app.add_middleware(ApiKey, key=KEY)
    return app


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    auth = {"authorization": f"Bearer {KEY}"}
    with (
        thread_server(_echo_app(), wait_ready=False) as url,
        httpx.Client(base_url=url, headers=auth, timeout=30) as http,
    ):
        yield http


def test_a_body_within_the_limit_passes(client: httpx.Client) -> None:
    assert client.post("/echo", content=b"x" * LIMIT).json() == {"size": LIMIT}


def test_a_declared_body_over_the_limit_is_413(client: httpx.Client) -> None:
    response = client.post("/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["error"]


def test_a_streamed_body_over_the_limit_is_413(client: httpx.Client) -> None:
    chunks = iter([b"x" * 600, b"x" * 600])  # no content-length: counted as it arrives
    response = client.post("/echo", content=chunks)
    assert response.status_code == 413


def test_a_missing_or_wrong_key_is_401(client: httpx.Client) -> None:
    for headers in ({"authorization": ""}, {"authorization": "Bearer wrong"}):
        response = client.post("/echo", content=b"{}", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key" in response.json()["error"]


def test_health_probes_need_no_key(client: httpx.Client) -> None:
    assert client.get("/livez", headers={"authorization": ""}).json() == {"live": True}
