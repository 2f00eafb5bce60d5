"""``runners.heap``: processes graphctl owns exempt their start-up objects from
the garbage collector and collect the young generation less often, once ready."""

from __future__ import annotations

import gc

import httpx

from runners import heap
from tests._serve_helpers import SERVE_GRAPHS, ServeProcess


def test_served_graph_runs_in_tuned_server_and_worker_processes() -> None:
    with ServeProcess([str(SERVE_GRAPHS / "collector.yaml")]) as server:
        server.wait_ready()
        answer = httpx.post(f"{server.url}/collector", json={}, timeout=30)
    assert answer.status_code == 200, answer.text
    for process in ("server", "worker"):
        state = answer.json()[process]
        assert state["young_threshold"] == heap.YOUNG_THRESHOLD, process
        assert state["frozen"] > 10_000, process  # the framework's and model's objects


def test_this_test_process_keeps_the_default_collector() -> None:
    """Importing graphctl changes nothing: only the processes it owns are tuned."""
    assert gc.get_threshold()[0] != heap.YOUNG_THRESHOLD
