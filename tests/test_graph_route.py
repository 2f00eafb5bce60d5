"""Client disconnects against a real uvicorn server on 127.0.0.1 with a real worker pool:
the request is cancelled and its queued call never reaches a worker."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator import create_app, load
from orchestrator.server._graph_route import ClientWatch
from tests._serve_helpers import SERVE_GRAPHS, metric_value, open_post, thread_server, wait_until

RUNNER = {"graph": "gated", "runner": "gate", "method": "wait"}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app([load(SERVE_GRAPHS / "gated.yaml")])
    with thread_server(app) as base:
        yield base


def _figure(url: str, sample: str) -> float:
    return metric_value(url, sample, **RUNNER)


def _json_body(gate: Path) -> dict[str, Any]:
    return {"x": [1.0], "gate": str(gate)}


def _oip_body(gate: Path) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]},
            {"name": "gate", "datatype": "BYTES", "shape": [1], "data": [str(gate)]},
        ]
    }


@pytest.mark.parametrize(
    ("path", "route", "make_body"),
    [("/gated", "json", _json_body), ("/v2/models/gated/infer", "oip", _oip_body)],
)
def test_disconnected_client_cancels_its_request_and_its_queued_call_is_dropped(
    url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    path: str,
    route: str,
    make_body: Any,
) -> None:
    caplog.set_level(logging.INFO, logger="graphctl.serve")
    calls_before = _figure(url, "graphctl_runner_calls_total")
    dispatched_before = _figure(url, "graphctl_runner_batch_size_sum")
    cancelled_before = metric_value(url, "graphctl_requests_total", code="499", route=route)
    busy, queued = tmp_path / "busy", tmp_path / "queued"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        holder = pool.submit(httpx.post, f"{url}{path}", json=make_body(busy), timeout=30)
        try:
            wait_until(lambda: _figure(url, "graphctl_runner_in_flight") == 1, timeout_s=30)
            client = open_post(url, path, make_body(queued))
            wait_until(lambda: _figure(url, "graphctl_runner_queue_length") == 1, timeout_s=30)
            client.close()  # the client gives up while its call waits for the busy worker
            wait_until(
                lambda: _figure(url, "graphctl_runner_queue_length") == 0,
                timeout_s=10,
                what="the disconnected request's call to leave the queue",
            )
            assert _figure(url, "graphctl_runner_in_flight") == 1  # the other still runs
            wait_until(
                lambda: (
                    metric_value(url, "graphctl_requests_total", code="499", route=route)
                    == cancelled_before + 1
                ),
                timeout_s=10,
                what="the request metric to count the disconnect as 499",
            )
        finally:
            busy.touch()
            queued.touch()
        assert holder.result(timeout=30).status_code == 200
    wait_until(lambda: _figure(url, "graphctl_runner_in_flight") == 0, timeout_s=30)
    assert _figure(url, "graphctl_runner_calls_total") == calls_before + 2
    assert _figure(url, "graphctl_runner_batch_size_sum") == dispatched_before + 1
    assert "client disconnected" in caplog.text


def test_answered_requests_are_not_counted_as_disconnects(url: str, tmp_path: Path) -> None:
    gate = tmp_path / "open"
    gate.touch()
    cancelled_before = metric_value(url, "graphctl_requests_total", code="499")
    for _ in range(20):
        response = httpx.post(f"{url}/gated", json=_json_body(gate), timeout=30)
        assert response.status_code == 200
        assert response.json() == {"y": [1.0]}
    assert metric_value(url, "graphctl_requests_total", code="499") == cancelled_before


def test_a_failed_disconnect_watcher_is_reaped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def request() -> None:
        called = asyncio.Event()

        async def receive() -> dict[str, Any]:
            called.set()
            raise RuntimeError("the connection's receive failed")

        with ClientWatch(receive):
            await asyncio.wait_for(called.wait(), timeout=5)
            await asyncio.sleep(0)  # the watcher's end and its done callback

    with caplog.at_level(logging.ERROR, logger="graphctl.serve"):
        asyncio.run(request())
    reaped = [r for r in caplog.records if r.name == "graphctl.serve"]
    assert [r.exc_info[1].args for r in reaped if r.exc_info and r.exc_info[1]] == [
        ("the connection's receive failed",)
    ]
