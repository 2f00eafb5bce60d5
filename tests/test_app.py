"""The HTTP app (``create_app``) on a real uvicorn server on 127.0.0.1, real worker pools."""

from __future__ import annotations

import concurrent.futures
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator import create_app, load
from tests._serve_helpers import SERVE_GRAPHS, metric_value, thread_server, wait_until

API_KEY = "s3cret"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_INFLIGHT = 2
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Files that release ``hold`` calls of the held and deadline graphs."""
    folder = tmp_path_factory.mktemp("release")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SERVE_TEST_RELEASE", str(folder / "held"))
        patch.setenv("SERVE_TEST_NEVER", str(folder / "never"))
        yield folder
        (folder / "held").touch()
        (folder / "never").touch()


@pytest.fixture(scope="module")
def url(release: Path) -> Iterator[str]:
    graphs = [
        load(SERVE_GRAPHS / f"{name}.yaml") for name in ("calc", "held", "broken", "deadline")
    ]
    app = create_app(graphs, api_key=API_KEY, max_inflight=MAX_INFLIGHT, max_body_bytes=MAX_BODY)
    with thread_server(app) as base:
        yield base
        (release / "held").touch()
        (release / "never").touch()


@pytest.fixture
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        yield http


def test_index_lists_every_graph_with_links(client: httpx.Client) -> None:
    body = client.get("/").json()
    names = [graph["name"] for graph in body["graphs"]]
    assert names == ["calc", "held", "broken", "deadline"]
    calc = body["graphs"][0]
    assert calc["url"] == "/calc" and calc["model"] == "/v2/models/calc"
    assert calc["description"] == "scale a vector in a worker and describe it"


def test_post_graph_returns_its_outputs(client: httpx.Client) -> None:
    response = client.post("/calc", json={"x": [1.0, 2.5], "label": "hi"})
    assert response.status_code == 200, response.text
    assert response.json() == {"y": [2.0, 5.0], "text": "HI", "total": 3.5}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"x": [1.0], "label": 3}, "label", "string"),
        ({"x": [1.0]}, "label", "missing"),
        ({"x": [1.0], "label": "a", "extra": 1}, "extra", "unknown"),
        ({"x": [[1.0], [2.0]], "label": "a"}, "x", "shape"),
        ({"x": ["a"], "label": "a"}, "x", "float32"),
    ],
)
def test_bad_field_gives_422_naming_it(
    client: httpx.Client, body: dict, field: str, words: str
) -> None:
    response = client.post("/calc", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["field"] == field
    assert words in error["error"]
    assert error["detail"][0]["loc"] == ["body", field]


def test_body_that_is_not_a_json_object_gives_422(client: httpx.Client) -> None:
    assert client.post("/calc", content=b"[1, 2]").status_code == 422
    assert client.post("/calc", content=b"{nope").status_code == 422


def test_failing_node_gives_500_naming_it_with_the_text_only_in_the_log(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="graphctl.serve"):
        response = client.post("/broken", json={"x": [1.0]})
    assert response.status_code == 500
    error = response.json()["error"]
    assert "boom" in error and "ValueError" in error
    assert "explode() always fails" not in response.text and "Traceback" not in response.text
    logged = [r.getMessage() for r in caplog.records if "explode() always fails" in r.getMessage()]
    assert len(logged) == 1 and "'broken'" in logged[0]


def test_deadline_gives_504(client: httpx.Client) -> None:
    response = client.post("/deadline", json={"x": [1.0]})
    assert response.status_code == 504
    assert "error" in response.json()


def test_overload_gives_503_with_retry_after_while_health_answers(
    client: httpx.Client, url: str, release: Path
) -> None:
    with concurrent.futures.ThreadPoolExecutor(MAX_INFLIGHT) as pool:
        held = [
            pool.submit(client.post, "/held", json={"x": [float(i)]}) for i in range(MAX_INFLIGHT)
        ]
        wait_until(
            lambda: _holder_calls(client) == MAX_INFLIGHT,
            what="held requests to reach the runner",
            timeout_s=30,
        )
        refused = client.post("/held", json={"x": [9.0]})
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 1
        assert "in flight" in refused.json()["error"]
        assert _refused_before_its_body_is_sent(url) == 503
        assert httpx.get(f"{url}/livez").status_code == 200
        assert httpx.get(f"{url}/readyz").status_code == 200
        assert client.get("/metrics").status_code == 200
        (release / "held").touch()
        results = [future.result(timeout=30) for future in held]
    assert [r.status_code for r in results] == [200] * MAX_INFLIGHT
    assert [r.json()["y"] for r in results] == [[float(i)] for i in range(MAX_INFLIGHT)]


def _refused_before_its_body_is_sent(url: str) -> int:
    """The status of a request whose body never comes (503 only if refused unread)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /held HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
            + API_KEY.encode()
            + b"\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n"
        )
        return int(sock.recv(1024).split(b" ", 2)[1])


def _holder_calls(client: httpx.Client) -> int:
    """Calls queued or running in the ``holder`` runner, read from /metrics."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        name = line.split("{", 1)[0]
        if name in ("graphctl_runner_in_flight", "graphctl_runner_queue_length") and (
            'runner="holder"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def test_api_key_is_enforced_except_on_health(url: str) -> None:
    assert httpx.post(f"{url}/calc", json={"x": [1.0], "label": "a"}).status_code == 401
    wrong = httpx.get(f"{url}/", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    assert "API key" in wrong.json()["error"]
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert httpx.get(f"{url}/v2/models/calc").status_code == 401
    for path in ("/livez", "/readyz", "/v2/health/live", "/v2/health/ready"):
        assert httpx.get(f"{url}{path}").status_code == 200, path


def test_oversize_body_gives_413(client: httpx.Client) -> None:
    big = b'{"x": [' + b"1.0, " * MAX_BODY + b'1.0], "label": "a"}'
    assert client.post("/calc", content=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts streamed bytes
        yield b'{"x": ['
        for _ in range(64):
            yield b"1.0, " * 1024
        yield b'1.0], "label": "a"}'

    streamed = client.post("/calc", content=chunks())
    assert streamed.status_code == 413
    assert "limit" in streamed.json()["error"]


def test_health_endpoints(url: str) -> None:
    assert httpx.get(f"{url}/livez").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz").json()
    assert ready["status"] == "ready"
    assert ready["graphs"]["calc"] == {"ready": True}
    assert httpx.get(f"{url}/readyz/calc").json() == {"status": "ready"}  # no key needed
    assert httpx.get(f"{url}/readyz/nope").status_code == 404


def test_openapi_carries_input_and_output_schemas(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/calc"]["post"]
    assert operation["description"] == "scale a vector in a worker and describe it"
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["x", "label"]
    assert body["additionalProperties"] is False
    assert body["properties"]["label"]["type"] == "string"
    items = body["properties"]["x"]["items"]
    assert items["type"] == "number" and items["maximum"] == pytest.approx(3.4028235e38)
    output = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(output["properties"]) == {"y", "text", "total"}
    assert output["properties"]["total"] == {"type": "number"}
    assert client.get("/docs").status_code == 200


def test_readyz_turns_200_only_once_pools_are_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    monkeypatch.setenv("SERVE_TEST_GATE", str(gate))
    ready_calls: list[bool] = []
    app = create_app([load(SERVE_GRAPHS / "calc.yaml")], on_ready=lambda: ready_calls.append(True))
    try:
        with thread_server(app, wait_ready=False) as base:
            assert httpx.get(f"{base}/livez").status_code == 200
            waiting = httpx.get(f"{base}/readyz")
            assert waiting.status_code == 503
            assert waiting.json()["not_ready"] == {"calc": {"scaler": "starting"}}
            early = httpx.post(f"{base}/calc", json={"x": [1.0], "label": "a"})
            assert early.status_code == 503 and "Retry-After" in early.headers
            assert httpx.get(f"{base}/v2/health/ready").status_code == 503
            assert ready_calls == []
            gate.touch()
            wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, what="ready")
            wait_until(lambda: ready_calls == [True], what="on_ready", timeout_s=5)
            done = httpx.post(f"{base}/calc", json={"x": [1.0], "label": "a"})
            assert done.status_code == 200
    finally:
        gate.touch()


def test_concurrent_requests_of_several_rows_share_batches_over_http() -> None:
    """Each request carries its own batch dimension: 12 concurrent requests of 1 to 4
    rows are concatenated into a few model calls, and each gets its own rows."""
    sizes = [1, 3, 2, 4, 1, 2, 3, 1, 4, 2, 1, 3]
    with thread_server(create_app([load(SERVE_GRAPHS / "rows.yaml")])) as base:

        def post(n: int) -> list[list[float]]:
            body = {"x": [[float(n)] * 3 for _ in range(n)]}
            answer = httpx.post(f"{base}/rows", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
            rows: list[list[float]] = answer.json()["y"]
            return rows

        with concurrent.futures.ThreadPoolExecutor(len(sizes)) as pool:
            answers = list(pool.map(post, sizes))
        batches = metric_value(base, "graphctl_runner_batch_size_count", runner="summer")
    for n, rows in zip(sizes, answers, strict=True):
        assert len(rows) == n and all(row[0] == 3.0 * n for row in rows)
    assert max(row[1] for rows in answers for row in rows) > 4  # batches of several requests
    assert batches < len(sizes)
