"""``--config`` / ``--set`` on ``graphctl run`` and ``graphctl serve``, and ``load(config=...)``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import orchestrator
from tests._executor_helpers import EXAMPLES, ROOT

GRAPHCTL = Path(sys.executable).parent / "graphctl"
DIAMOND = EXAMPLES / "diamond.yaml"


def graphctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRAPHCTL), *args], capture_output=True, text=True, timeout=90, cwd=ROOT
    )


def test_load_applies_a_config_file_and_sets(tmp_path: Path) -> None:
    config = tmp_path / "prod.yaml"
    config.write_text("runners:\n  mlp_b:\n    workers: 2\n")

    async def scenario() -> tuple[int, int]:
        graph = orchestrator.load(DIAMOND, config=config, sets=["runners.mlp_a.max_queue=7"])
        async with graph:
            stats = graph.stats()
            return stats["mlp_b"].ready_workers, graph.plan.runners["mlp_a"].max_queue

    assert asyncio.run(asyncio.wait_for(scenario(), 90)) == (2, 7)


def test_run_with_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "prod.yaml"
    config.write_text("runners:\n  mlp_a:\n    batching: {max_batch_size: 4}\n")
    done = graphctl(
        "run", str(DIAMOND), "--input", "@graphs/diamond.input.json", "--config", str(config)
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["y"]) == 10


def test_run_rejects_a_bad_set_with_its_column() -> None:
    done = graphctl(
        "run",
        str(DIAMOND),
        "--input",
        "@graphs/diamond.input.json",
        "--set",
        "runners.mlp_z.workers=2",
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "--set:1:9: error: graph 'diamond' has no runner 'mlp_z'" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_rejects_a_bad_config_before_starting(tmp_path: Path) -> None:
    config = tmp_path / "prod.yaml"
    config.write_text("runners:\n  mlp_a:\n    wokers: 2\n")
    done = graphctl("serve", str(DIAMOND), "--port", "0", "--config", str(config))
    assert done.returncode == 1
    assert f"{config}:3:5: error: runner 'mlp_a': unknown key 'wokers'" in done.stderr
    assert "Traceback" not in done.stderr
