"""``runners.heap``: processes graphctl owns exempt their start-up objects from
the garbage collector and collect the young generation less often, once ready."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import httpx

from runners import heap
from tests._serve_helpers import ROOT, SERVE_GRAPHS, ServeProcess
from tests.conftest import wait_until


def test_served_graph_runs_in_tuned_server_and_worker_processes() -> None:
    """The server tunes its collector when it announces it is ready (a moment after
    its pools are: ``/readyz`` may answer 200 first), each worker before its ready."""
    with ServeProcess([str(SERVE_GRAPHS / "collector.yaml")]) as server:
        server.wait_ready()
        states: dict[str, dict[str, int]] = {}

        def tuned() -> bool:
            answer = httpx.post(f"{server.url}/collector", json={}, timeout=30)
            assert answer.status_code == 200, answer.text
            states.update(answer.json())
            return states["server"]["young_threshold"] == heap.YOUNG_THRESHOLD

        wait_until(tuned, what="the server to tune its collector")
    for process in ("server", "worker"):
        assert states[process]["young_threshold"] == heap.YOUNG_THRESHOLD, process
        assert states[process]["frozen"] > 10_000, process  # the framework's and model's objects


def test_this_test_process_keeps_the_default_collector() -> None:
    """Importing graphctl changes nothing: only the processes it owns are tuned."""
    assert gc.get_threshold()[0] != heap.YOUNG_THRESHOLD


def test_the_serving_docs_python_api_example_tunes_its_own_process() -> None:
    """The docs' example, run as written inside an ``async def`` in a fresh process."""
    text = (ROOT / "docs" / "serving.md").read_text()
    block = text.split("can opt in once its graphs are loaded:\n\n```python\n", 1)[1]
    code = block.split("```", 1)[0]
    imports = "".join(
        line + "\n" for line in code.splitlines() if line.startswith(("import", "from"))
    )
    body = "".join(
        "    " + line + "\n"
        for line in code.splitlines()
        if not line.startswith(("import", "from"))
    )
    script = (
        f"import asyncio, gc, json\n{imports}\nasync def main():\n{body}"
        "    print(json.dumps({'y': len(answer['y']), 'young': gc.get_threshold()[0],"
        " 'frozen': gc.get_freeze_count()}))\n\nasyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["y"] == 10 and figures["young"] == heap.YOUNG_THRESHOLD
    assert figures["frozen"] > 10_000
