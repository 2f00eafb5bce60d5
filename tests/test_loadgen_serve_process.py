"""``graphctl serve`` as a child process, for benchmarks: ready when ``/readyz``
says so, stopped for good on exit, and a failure to start reported with the end
of the server's own log. Real processes on 127.0.0.1 (a graph of functions only,
so no worker pools start)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import httpx
import pytest

from orchestrator.loadgen import BenchError
from orchestrator.loadgen._serve_process import ServeProcess, free_port, graphctl_command
from tests.conftest import run

ROUTING = Path(__file__).resolve().parent.parent / "graphs" / "routing.yaml"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serves_until_the_block_ends_then_the_process_is_gone() -> None:
    async def main() -> int:
        async with ServeProcess(ROUTING) as server:
            assert server.ready_after_s is not None and server.ready_after_s > 0
            async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
                answer = await client.post("/routing", json={"text": "hello"})
            assert answer.status_code == 200 and answer.json()["route"] == "greeting"
            assert server.url == f"http://127.0.0.1:{server.port}"
            return server.pid

    pid = run(main(), timeout_s=120)
    assert not _alive(pid)


def test_a_server_that_exits_early_is_reported_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: graphctl/v1\nkind: Graph\nmetadata: {name: b}\nspec: {}\n")

    async def main() -> None:
        async with ServeProcess(broken):
            raise AssertionError("a broken graph must not serve")

    with pytest.raises(BenchError) as info:
        run(main(), timeout_s=120)
    message = str(info.value)
    assert message.startswith("graphctl serve exited with code 1 before it was ready:\n")
    assert "missing required key" in message


def test_a_server_not_ready_in_time_is_stopped_and_reported() -> None:
    server = ServeProcess(ROUTING, ready_timeout_s=0.01)
    with pytest.raises(BenchError, match=r"graphctl serve was not ready after 0.01 s"):
        run(server.start(), timeout_s=120)
    with pytest.raises(BenchError, match="the server process is not running"):
        _ = server.pid
    assert server.log_tail() == ""


def test_free_port_is_bindable_and_the_command_runs_this_interpreter() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    beside = Path(sys.executable).with_name("graphctl")
    expected = [str(beside)] if beside.is_file() else [sys.executable, "-c"]
    assert graphctl_command()[: len(expected)] == expected
