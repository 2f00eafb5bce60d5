"""Per-request deadlines: the checks as functions, then the header and the OIP parameter
against a real uvicorn server on 127.0.0.1 with real worker pools."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator import RequestError, create_app, load
from orchestrator.server._deadlines import (
    REQUEST_TIMEOUT_HEADER,
    header_timeout_ms,
    parse_timeout_ms,
    shorter_timeout_ms,
)
from tests._serve_helpers import SERVE_GRAPHS, metric_value, thread_server, wait_until

RUNNER = {"graph": "gated_deadline", "runner": "gate", "method": "wait"}


@pytest.mark.parametrize(("value", "expected"), [("250", 250.0), (" 1.5 ", 1.5), (40, 40.0)])
def test_a_positive_number_of_milliseconds_is_a_deadline(value: object, expected: float) -> None:
    assert parse_timeout_ms(value, field="f") == expected


@pytest.mark.parametrize("value", ["abc", "", "0", "-5", "nan", "inf", True, None, [100]])
def test_anything_else_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(RequestError) as caught:
        parse_timeout_ms(value, field="where")
    assert caught.value.field == "where"
    assert "positive number of milliseconds" in caught.value.message


def test_the_header_is_found_whatever_its_case() -> None:
    assert header_timeout_ms([(b"content-type", b"x"), (b"x-request-timeout-ms", b"90")]) == 90
    assert header_timeout_ms([(b"content-type", b"x")]) is None


def test_a_request_only_ever_shortens_the_graph_deadline() -> None:
    assert shorter_timeout_ms(1000, 200) == 200
    assert shorter_timeout_ms(1000, 5000) == 1000
    assert shorter_timeout_ms(None, 5000) == 5000
    assert shorter_timeout_ms(1000, None) == 1000
    assert shorter_timeout_ms(None, None) is None


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    never = tmp_path_factory.mktemp("never") / "released"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SERVE_TEST_NEVER", str(never))  # the deadline graph's calls hang
        graphs = [load(SERVE_GRAPHS / "gated_deadline.yaml"), load(SERVE_GRAPHS / "deadline.yaml")]
        with thread_server(create_app(graphs)) as base:
            try:
                yield base
            finally:
                never.touch()  # lets the hung call end, so the pool can stop


def _json(url: str, gate: Path, timeout_ms: str | None) -> httpx.Response:
    headers = {} if timeout_ms is None else {REQUEST_TIMEOUT_HEADER: timeout_ms}
    body = {"x": [1.0], "gate": str(gate)}
    return httpx.post(f"{url}/gated_deadline", json=body, headers=headers, timeout=10)


def _oip(url: str, gate: Path, timeout_ms: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]},
            {"name": "gate", "datatype": "BYTES", "shape": [1], "data": [str(gate)]},
        ]
    }
    if timeout_ms is not None:
        body["parameters"] = {"timeout_ms": timeout_ms}
    return httpx.post(f"{url}/v2/models/gated_deadline/infer", json=body, timeout=10)


def _figure(url: str, sample: str) -> float:
    return metric_value(url, sample, **RUNNER)


@pytest.mark.parametrize("send", [_json, _oip], ids=["header", "oip-parameter"])
def test_a_request_deadline_drops_its_queued_call(url: str, tmp_path: Path, send: Any) -> None:
    dispatched_before = _figure(url, "graphctl_runner_batch_size_sum")
    busy, queued = tmp_path / "busy", tmp_path / "queued"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        holder = pool.submit(send, url, busy, None)
        try:
            wait_until(lambda: _figure(url, "graphctl_runner_in_flight") == 1, timeout_s=30)
            late = send(url, queued, "1500")
            assert _figure(url, "graphctl_runner_in_flight") == 1  # still busy with the other
        finally:
            busy.touch()
            queued.touch()
        assert holder.result(timeout=30).status_code == 200
    # 504 once the deadline passed in the queue, or 503 at once when the pool's
    # measured batch time already predicts a wait past it: either way, not a worker's time.
    assert late.status_code in (503, 504), late.text
    if late.status_code == 504:
        assert "1500 ms" in late.json()["error"]
    wait_until(lambda: _figure(url, "graphctl_runner_in_flight") == 0, timeout_s=30)
    assert _figure(url, "graphctl_runner_queue_length") == 0
    assert _figure(url, "graphctl_runner_batch_size_sum") == dispatched_before + 1


def test_a_request_cannot_extend_the_graph_deadline(url: str) -> None:
    headers = {REQUEST_TIMEOUT_HEADER: "60000"}
    response = httpx.post(f"{url}/deadline", json={"x": [1.0]}, headers=headers, timeout=10)
    assert response.status_code == 504
    assert "300 ms" in response.json()["error"]


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan"])
def test_a_bad_header_is_a_400_naming_it(url: str, tmp_path: Path, value: str) -> None:
    calls_before = _figure(url, "graphctl_runner_calls_total")
    response = _json(url, tmp_path / "never", value)
    assert response.status_code == 400
    assert response.json()["field"] == REQUEST_TIMEOUT_HEADER
    assert REQUEST_TIMEOUT_HEADER in response.json()["error"]
    assert _figure(url, "graphctl_runner_calls_total") == calls_before


@pytest.mark.parametrize("value", ["soon", 0, -1, True])
def test_a_bad_oip_parameter_is_a_400_naming_it(url: str, tmp_path: Path, value: Any) -> None:
    response = _oip(url, tmp_path / "never", value)
    assert response.status_code == 400
    assert "parameters.timeout_ms" in response.json()["error"]
