"""docs/deploy.md's worker hosts by hand work as written: its workers start, its
``--config`` file points the runners at them, and ``graphctl run`` answers as a
local run does."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from runners.remote import protocol
from tests._remote_helpers import WorkerProcess
from tests._serve_helpers import CLI, ROOT, free_port

DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def by_hand() -> list[tuple[str, str]]:
    """The code blocks of the ``## Worker hosts by hand`` section, in order."""
    section = DOC.split("\n## Worker hosts by hand\n", 1)[1].split("\n## ", 1)[0]
    return BLOCK.findall(section)


def _graphctl(line: str) -> list[str]:
    words = shlex.split(line.rstrip("& \n"))
    assert words[0] == "graphctl"
    return [sys.executable, "-c", CLI, *words[1:]]


def test_the_worker_hosts_example_runs(tmp_path: Path) -> None:
    blocks = by_hand()
    start = next(body for lang, body in blocks if lang == "sh" and "graphctl worker" in body)
    hosts = next(body for lang, body in blocks if lang == "yaml" and "mlp_b" in body)
    command = next(body for lang, body in blocks if lang == "sh" and "graphctl run" in body)
    token = re.search(r"GRAPHCTL_WORKER_TOKEN=(\S+)", start)
    assert token is not None
    ports = {old: free_port() for old in re.findall(r"127\.0\.0\.1:(\d+)", start)}
    (tmp_path / "hosts.yaml").write_text(re.sub(r":(700\d)", lambda m: f":{ports[m[1]]}", hosts))
    env = {**os.environ, protocol.TOKEN_ENV: token[1]}
    workers = []
    try:
        for line in start.splitlines():
            if line.startswith("graphctl worker"):
                graph, runner = line.split()[2], line.split()[4]
                port = ports[line.rsplit(":", 1)[1].split()[0]]
                workers.append(
                    WorkerProcess(graph=ROOT / graph, port=port, token=token[1], runner=runner)
                )
        argv = _graphctl(command.strip().replace("/tmp/", f"{tmp_path}/"))
        remote = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert remote.returncode == 0, remote.stderr
        assert "Traceback" not in remote.stderr
        local_argv = [a for a in argv if "hosts.yaml" not in a and a != "--config"]
        local = subprocess.run(
            local_argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert json.loads(remote.stdout) == json.loads(local.stdout)
        assert all("orchestrator 127.0.0.1" in w.output for w in workers)
    finally:
        for worker in workers:
            worker.close()
