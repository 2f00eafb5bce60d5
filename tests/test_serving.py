"""Readiness per runner and poison calls, against a real uvicorn server whose
worker processes are killed and stopped for real."""

from __future__ import annotations

import ast
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from orchestrator import create_app, load
from tests._serve_helpers import SERVE_GRAPHS, thread_server, wait_until


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    graphs = [load(SERVE_GRAPHS / f"{name}.yaml") for name in ("calc", "fragile")]
    with thread_server(create_app(graphs)) as base:
        yield base


def _worker_pid(runner: str) -> int:
    """The pid of the worker process of ``runner`` (a child of this test process)."""
    for child in psutil.Process().children(recursive=True):
        try:
            argv = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if (
            "runners.worker" in argv
            and json.loads(argv[argv.index("--config") + 1])["runner"] == runner
        ):
            return child.pid
    raise AssertionError(f"no worker of {runner!r}")


def test_a_call_that_kills_its_worker_twice_is_a_500_and_other_graphs_stay_ready(
    url: str,
) -> None:
    poison = httpx.post(f"{url}/fragile", json={"x": [-1.0]}, timeout=30)
    assert poison.status_code == 500
    assert "Retry-After" not in poison.headers
    assert "crashed two workers" in poison.json()["error"]
    assert httpx.get(f"{url}/readyz/calc").status_code == 200
    assert httpx.get(f"{url}/readyz").json()["graphs"]["calc"] == {"ready": True}
    # A restarting runner queues the graph's requests instead of refusing them.
    good = httpx.post(f"{url}/fragile", json={"x": [2.0]}, timeout=30)
    assert good.status_code == 200 and good.json() == {"y": [4.0]}
    wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="ready again")


def test_a_hung_worker_shows_in_readyz_and_is_replaced_in_seconds(url: str) -> None:
    stop = threading.Event()

    def load_loop() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                client.post(f"{url}/fragile", json={"x": [1.0]})

    senders = [threading.Thread(target=load_loop) for _ in range(4)]
    for sender in senders:
        sender.start()
    stopped = _worker_pid("fragile")
    try:
        wait_until(lambda: _calls(url, "fragile") >= 60, what="measured batches", timeout_s=30)
        os.kill(stopped, signal.SIGSTOP)
        wait_until(
            lambda: "hung" in _not_ready(url).get("fragile", {}).get("fragile", ""),
            what="/readyz to report the hung worker",
            timeout_s=10,
        )
        assert httpx.get(f"{url}/readyz/calc").status_code == 200
        wait_until(
            lambda: (
                not psutil.pid_exists(stopped)
                or psutil.Process(stopped).status() == psutil.STATUS_ZOMBIE
            ),
            what="the hung worker to be killed",
            timeout_s=10,
        )
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="ready again")
        assert _worker_pid("fragile") != stopped
    finally:
        stop.set()
        if psutil.pid_exists(stopped):
            os.kill(stopped, signal.SIGCONT)
        for sender in senders:
            sender.join(timeout=30)


def _not_ready(url: str) -> dict[str, dict[str, str]]:
    report: dict[str, dict[str, str]] = httpx.get(f"{url}/readyz").json().get("not_ready", {})
    return report


def _calls(url: str, runner: str) -> float:
    """Calls submitted to ``runner``, from /metrics."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(f"{url}/metrics").text.splitlines()
        if line.startswith("graphctl_runner_calls") and f'runner="{runner}"' in line
    )


def test_the_serving_lifecycle_does_not_depend_on_the_web_framework() -> None:
    """``_serving`` and every orchestrator module it imports stay free of Starlette
    and FastAPI (they are the routes' business, in ``_app`` and ``_responses``)."""
    root = Path(__file__).resolve().parent.parent
    seen: set[str] = set()
    todo = ["orchestrator.server._serving"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        tree = ast.parse((root / (module.replace(".", "/") + ".py")).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("starlette", "fastapi")), (module, node.module)
                if node.module.startswith("orchestrator.") and node.module.count(".") > 1:
                    todo.append(node.module)
    assert "orchestrator.server._errors" in seen
