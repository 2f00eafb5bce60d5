"""Every answered request of a graph route is counted, whatever answered it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from orchestrator import create_app, load
from orchestrator.server._request_log import graph_route
from tests._serve_helpers import SERVE_GRAPHS, metric_value, thread_server

MAX_BODY = 2000


def test_graph_route_names_the_graph_and_its_protocol() -> None:
    graphs = {"calc"}
    assert graph_route("/calc", graphs) == ("calc", "json")
    assert graph_route("/v2/models/calc/infer", graphs) == ("calc", "oip")
    assert graph_route("/v2/models/calc/ready", graphs) is None
    assert graph_route("/other", graphs) is None


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app([load(SERVE_GRAPHS / "calc.yaml")], max_body_bytes=MAX_BODY)
    with thread_server(app) as base:
        yield base


@pytest.mark.parametrize(
    ("body", "status"), [(b"{not json", 422), (b"[" + b"1," * MAX_BODY + b"1]", 413)]
)
def test_refusals_before_the_graph_are_counted(url: str, body: bytes, status: int) -> None:
    labels = {"graph": "calc", "route": "json", "code": str(status)}
    before = metric_value(url, "graphctl_requests_total", **labels)
    response = httpx.post(
        f"{url}/calc", content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == status
    assert metric_value(url, "graphctl_requests_total", **labels) == before + 1
