"""``graphctl serve`` as a child process: start-up checks, signals, crashed workers."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import signal
import threading
from pathlib import Path

import httpx
import psutil

from tests._serve_helpers import DIAMOND, ROOT, SERVE_GRAPHS, ServeProcess, wait_until

HELD = str(SERVE_GRAPHS / "held.yaml")
TALKER = str(ROOT / "tests" / "graphs" / "talker.yaml")
DANGLING = """\
apiVersion: graphctl/v1
kind: Graph
metadata: {name: dangling}
spec:
  inputs: {x: {type: number}}
  nodes:
    a: {function: models:describe, args: {x: $nowhere, label: $inputs.x}}
  outputs: {y: $a}
"""


def _workers(server: ServeProcess) -> list[psutil.Process]:
    return psutil.Process(server.process.pid).children(recursive=True)


def _runner_calls(url: str, runner: str) -> int:
    total = 0.0
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        name = line.split("{", 1)[0]
        if name in ("graphctl_runner_in_flight", "graphctl_runner_queue_length") and (
            f'runner="{runner}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def test_a_bad_graph_file_stops_start_up_with_its_errors(tmp_path: Path) -> None:
    bad = tmp_path / "dangling.yaml"
    bad.write_text(DANGLING)
    with ServeProcess([str(SERVE_GRAPHS / "calc.yaml"), str(bad)]) as server:
        assert server.wait() == 1
        stderr = server.process.communicate()[1]
    assert f"{bad}:7:" in stderr and "nowhere" in stderr


def test_serving_a_folder_prints_the_ready_url(tmp_path: Path) -> None:
    with ServeProcess([str(SERVE_GRAPHS)]) as server:
        server.wait_ready()
        names = [graph["name"] for graph in httpx.get(f"{server.url}/").json()["graphs"]]
        assert names == sorted(path.stem for path in SERVE_GRAPHS.glob("*.yaml"))
        assert server.process.stdout is not None
        line = server.process.stdout.readline()
        assert server.url in line and "ready" in line
        server.signal(signal.SIGTERM)
        assert server.wait() == 0


def test_sigterm_answers_every_accepted_request_then_stops_the_workers(tmp_path: Path) -> None:
    release = tmp_path / "release"
    count = 4
    with (
        ServeProcess([HELD], env={"SERVE_TEST_RELEASE": str(release)}) as server,
        concurrent.futures.ThreadPoolExecutor(count) as pool,
    ):
        server.wait_ready()
        workers = _workers(server)
        assert workers
        with httpx.Client(base_url=server.url, timeout=30) as client:
            futures = [
                pool.submit(client.post, "/held", json={"x": [float(i)]}) for i in range(count)
            ]
            wait_until(
                lambda: _runner_calls(server.url, "holder") == count,
                timeout_s=30,
                what="requests in flight",
            )
            server.signal(signal.SIGTERM)
            wait_until(lambda: not _accepts(server.url), timeout_s=15, what="listener closed")
            assert server.process.poll() is None  # still draining
            release.touch()
            answers = [future.result(timeout=30) for future in futures]
        assert [a.status_code for a in answers] == [200] * count
        assert [a.json()["y"] for a in answers] == [[float(i)] for i in range(count)]
        assert server.wait() == 0
        _, still = psutil.wait_procs(workers, timeout=10)
        assert still == [], "worker processes outlived the server"


def test_second_signal_forces_exit_without_orphans(tmp_path: Path) -> None:
    release = tmp_path / "never"
    with ServeProcess([HELD], env={"SERVE_TEST_RELEASE": str(release)}) as server:
        server.wait_ready()
        workers = _workers(server)
        held = threading.Thread(target=_post_ignoring_errors, args=(f"{server.url}/held",))
        held.start()
        wait_until(
            lambda: _runner_calls(server.url, "holder") == 1,
            timeout_s=30,
            what="a request in flight",
        )
        server.signal(signal.SIGTERM)
        wait_until(lambda: not _accepts(server.url), timeout_s=15, what="listener closed")
        server.signal(signal.SIGTERM)
        assert server.wait(timeout_s=10) == 130
        held.join(timeout=30)
        release.touch()  # the worker finishes the call it holds, then sees EOF and exits
        _, still = psutil.wait_procs(workers, timeout=15)
        assert still == [], "worker processes outlived the server"


def _post_ignoring_errors(url: str) -> None:
    with contextlib.suppress(httpx.TransportError):  # the server is forced down under it
        httpx.post(url, json={"x": [1.0]}, timeout=30)


def _accepts(url: str) -> bool:
    try:
        httpx.get(f"{url}/livez", timeout=2)
    except httpx.TransportError:
        return False
    return True


def test_killed_worker_gives_only_clear_503s_and_the_pool_recovers() -> None:
    x = {"x": [float(i % 7) for i in range(64)]}
    statuses: list[int] = []
    bad: list[str] = []
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                response = client.post("/diamond", json=x)
                statuses.append(response.status_code)
                if response.status_code != 200 and not (
                    response.status_code == 503
                    and "Retry-After" in response.headers
                    and "error" in response.json()
                ):
                    bad.append(f"{response.status_code} {response.text}")

    with ServeProcess([str(DIAMOND)]) as server:
        server.wait_ready()
        victim = _workers(server)[0]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            loaders = [pool.submit(load, server.url) for _ in range(8)]
            wait_until(lambda: len(statuses) >= 50, timeout_s=30, what="load to run")
            victim.kill()
            victim.wait(timeout=10)
            wait_until(lambda: _restarts(server.url) >= 1, timeout_s=30, what="a worker restart")
            wait_until(
                lambda: httpx.get(f"{server.url}/readyz").status_code == 200,
                timeout_s=30,
                what="ready again",
            )
            after = len(statuses)
            wait_until(lambda: len(statuses) >= after + 50, timeout_s=30, what="load after")
            stop.set()
            for loader in loaders:
                loader.result(timeout=30)
        assert bad == []
        assert statuses[-40:] == [200] * 40
        server.signal(signal.SIGTERM)
        assert server.wait() == 0


def _restarts(url: str) -> float:
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("graphctl_runner_worker_restarts_total{")
    )


def test_worker_output_and_tracebacks_reach_the_server_log_not_the_client() -> None:
    with ServeProcess([TALKER]) as server:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            said = client.post("/talker", json={"text": "hi"})
            failed = client.post("/talker", json={"text": "fail"})
        server.signal(signal.SIGTERM)
        assert server.wait() == 0  # the pools are stopped: every worker line was read
        stderr = server.process.communicate()[1]
    assert said.json() == {"said": "HI"}
    assert failed.status_code == 500
    assert "'talker.talk' raised ValueError" in failed.json()["error"]
    assert "cannot talk about fail" not in failed.text  # the text is for the server log
    assert "Traceback" not in failed.text and "talker.py" not in failed.text
    worker = r"runners\.worker: \[talker/worker-0\]"
    for level, line in [
        ("WARNING", "printed hi"),
        ("WARNING", "talker: warned hi"),
        ("INFO", "talker: informed hi"),  # serve logs from info by default
        ("WARNING", "stderr hi"),
    ]:
        assert re.search(rf"^\S+ \S+ {level} {worker} {line}$", stderr, re.M), stderr
    raised = rf"^\S+ \S+ ERROR {worker} runners\.worker: talk raised\nTraceback "
    assert re.search(raised, stderr, re.M), stderr
    assert stderr.count("Traceback (most recent call last)") == 1
    assert "ValueError: cannot talk about fail" in stderr


def test_json_log_lines_carry_the_request_they_come_from() -> None:
    with ServeProcess([TALKER, "--log-format", "json"]) as server:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            said = client.post("/talker", json={"text": "hi"}, headers={"x-request-id": "talk-1"})
            failed = client.post("/talker", json={"text": "fail"})
        server.signal(signal.SIGTERM)
        assert server.wait() == 0  # the pools are stopped: every worker line was read
        stderr = server.process.communicate()[1]
    assert said.headers["x-request-id"] == "talk-1"
    failed_id = failed.headers["x-request-id"]
    assert failed.json()["request_id"] == failed_id
    lines = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    assert all({"timestamp", "level", "logger", "message"} <= line.keys() for line in lines)
    access = {line["request_id"]: line for line in lines if line["logger"] == "graphctl.access"}
    assert access["talk-1"]["status"] == 200 and access["talk-1"]["path"] == "/talker"
    assert access[failed_id]["status"] == 500
    (answered,) = [line for line in lines if line["logger"] == "graphctl.serve"]
    assert answered["request_id"] == failed_id and answered["graph"] == "talker"
    worker = [line for line in lines if line["logger"] == "runners.worker"]
    warned = next(line for line in worker if "talker: warned hi" in line["message"])
    assert warned["level"] == "WARNING" and warned["runner"] == "talker" and warned["worker"] == 0
    assert warned["request_id"] == ["talk-1"]  # the requests of the worker's batch
    raised = next(line for line in worker if "talk raised" in line["message"])
    assert raised["level"] == "ERROR" and "ValueError: cannot talk about fail" in raised["message"]
    assert raised["request_id"] == [failed_id]
    printed = next(line for line in worker if "printed hi" in line["message"])
    assert printed["level"] == "WARNING"  # a print has no record, so no fields of its own
