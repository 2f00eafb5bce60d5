"""Deploy-time overrides: validated like the graph, applied to the runners that start."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from orchestrator import GraphFileError, apply_overrides, compile_file
from orchestrator.graph import Graph
from tests.conftest import run

ROOT = Path(__file__).resolve().parents[1]
DIAMOND = ROOT / "graphs" / "diamond.yaml"
GRAPHCTL = str(Path(sys.executable).parent / "graphctl")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prod.yaml"
    path.write_text(text)
    return path


def test_file_and_set_change_runner_settings(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        """
runners:
  mlp_a:
    workers: 2
    batching: {max_batch_size: 4}
    max_queue: 100
    env: {OMP_NUM_THREADS: 1}
  mlp_b:
    methods: {predict: {max_latency_ms: 500}}
""",
    )
    plan = apply_overrides(
        compile_file(DIAMOND), config, ["runners.mlp_a.workers=3", "runners.mlp_b.resources.cpu=2"]
    )
    a, b = plan.runners["mlp_a"], plan.runners["mlp_b"]
    assert a.workers == 3 and a.batching.max_batch_size == 4 and a.max_queue == 100
    assert a.batching.max_latency_ms == 1000  # fields not named keep the graph's values
    assert dict(a.env) == {"OMP_NUM_THREADS": "1"}
    assert b.batching_for("predict").max_latency_ms == 500 and b.resources.cpu == 2


def test_bad_file_reports_every_problem_with_its_position(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        """runners:
  mlp_c:
    workers: 2
  mlp_a:
    wokers: 2
    max_queue: 0
    methods: {score: {max_batch_size: 2}}
""",
    )
    with pytest.raises(GraphFileError) as caught:
        apply_overrides(compile_file(DIAMOND), config)
    lines = [str(d) for d in caught.value.diagnostics]
    f = str(config)
    assert lines == [
        f"{f}:2:3: error: graph 'diamond' has no runner 'mlp_c'; did you mean 'mlp_b'?"
        " (runners: mlp_a, mlp_b)",
        f"{f}:5:5: error: runner 'mlp_a': unknown key 'wokers'; expected one of: workers,"
        " batching, methods, max_queue, resources, env, supervision, endpoints, remote",
        f"{f}:6:16: error: runner 'mlp_a': must be an integer >= 1, got 0",
        f"{f}:7:15: error: runner 'mlp_a': runner 'mlp_a' has no method 'score'; known: predict",
    ]


def test_gpu_devices_are_set_checked_and_cleared(tmp_path: Path) -> None:
    config = _write(tmp_path, "runners:\n  mlp_a:\n    resources: {devices: [1, 0]}\n")
    plan = apply_overrides(compile_file(DIAMOND), config)
    resources = plan.runners["mlp_a"].resources
    assert (resources.devices, resources.gpu) == ((1, 0), 1)
    cleared = apply_overrides(plan, None, ["runners.mlp_a.resources.devices=null"])
    assert cleared.runners["mlp_a"].resources.devices is None
    bad = _write(tmp_path, "runners:\n  mlp_a:\n    resources: {devices: [0, 0]}\n")
    with pytest.raises(GraphFileError) as caught:
        apply_overrides(compile_file(DIAMOND), bad)
    assert [d.message for d in caught.value.diagnostics] == [
        "runner 'mlp_a': must be a list of distinct GPU indexes >= 0 or null, got [0, 0]"
    ]


def test_bad_set_points_at_the_column(tmp_path: Path) -> None:
    with pytest.raises(GraphFileError) as caught:
        apply_overrides(
            compile_file(DIAMOND),
            sets=[
                "runners.mlp_x.workers=2",
                "runners.mlp_a.batching.size=2",
                "runners.mlp_a.workers=zero",
            ],
        )
    lines = [str(d) for d in caught.value.diagnostics]
    assert lines[0].startswith("--set:1:9: error: graph 'diamond' has no runner 'mlp_x'")
    assert lines[1].startswith("--set:1:24: error: runner 'mlp_a': unknown key 'size'")
    assert lines[2].startswith("--set:1:23: error: runner 'mlp_a': must be an integer >= 1")


def test_overrides_are_what_runs(tmp_path: Path) -> None:
    """Two workers and batches of at most 4 items, as the override says, not the graph."""
    plan = apply_overrides(
        compile_file(DIAMOND),
        sets=["runners.mlp_a.workers=2", "runners.mlp_a.batching.max_batch_size=4"],
    )
    x = json.loads((ROOT / "graphs" / "diamond.input.json").read_text())["x"]

    async def scenario() -> None:
        async with Graph(plan) as graph:
            await asyncio.gather(*(graph.run({"x": np.asarray(x) + i}) for i in range(24)))
            stats = graph.stats()["mlp_a"]
            assert stats.workers == 2 and stats.ready_workers == 2
            sizes = stats.methods["predict"].batch_sizes
            assert max(sizes) <= 4 and sum(k * v for k, v in sizes.items()) == 24

    run(scenario(), timeout_s=90)


def test_graphctl_config_prints_the_effective_settings(tmp_path: Path) -> None:
    config = _write(tmp_path, "runners: {mlp_b: {workers: 2}}\n")
    done = subprocess.run(
        [
            GRAPHCTL,
            "config",
            str(DIAMOND),
            "--config",
            str(config),
            "--set",
            "runners.mlp_a.batching.max_batch_size=8",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    runners = json.loads(done.stdout)["runners"]
    assert runners["mlp_b"]["workers"] == 2
    assert runners["mlp_a"]["batching"]["max_batch_size"] == 8
    bad = subprocess.run(
        [GRAPHCTL, "config", str(DIAMOND), "--set", "runners.nope.workers=1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "--set:1:9: error:" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("graph", ["diamond.yaml", "rows.yaml", "vote.yaml", "pipeline.yaml"])
def test_settings_document_replays_every_override(graph: str, tmp_path: Path) -> None:
    from orchestrator.compiling import effective_runners, settings_document

    plain = compile_file(ROOT / "graphs" / graph)
    sets = [f"runners.{name}.workers=3" for name in plain.runners]
    sets += [f"runners.{name}.supervision.hang_timeout_s=9" for name in plain.runners]
    overridden = apply_overrides(plain, None, sets)
    config = _write(tmp_path, yaml.safe_dump(settings_document(overridden)))
    replayed = apply_overrides(compile_file(ROOT / "graphs" / graph), config)
    assert effective_runners(replayed) == effective_runners(overridden)
    assert effective_runners(replayed) != effective_runners(plain)


def test_endpoints_and_remote_settings_are_set_and_checked(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        """runners:
  mlp_a:
    endpoints: ["10.0.0.7:7000", "dns:mlp-a.prod.svc:7000", "[::1]:7001"]
    remote: {dead_peer_timeout_s: 2, tls_ca: ca.pem}
""",
    )
    a = apply_overrides(compile_file(DIAMOND), config).runners["mlp_a"]
    assert [str(e) for e in a.endpoints] == [
        "10.0.0.7:7000",
        "dns:mlp-a.prod.svc:7000",
        "[::1]:7001",
    ]
    assert a.endpoints[1].dns and a.remote.dead_peer_timeout_s == 2 and a.remote.tls_ca == "ca.pem"
    bad = ["runners.mlp_a.endpoints=[nohost, 'h:99999']", "runners.mlp_a.remote.dns_refresh_s=0"]
    with pytest.raises(GraphFileError) as caught:
        apply_overrides(compile_file(DIAMOND), None, bad)
    text = "\n".join(str(d) for d in caught.value.diagnostics)
    assert "'nohost' must be HOST:PORT or dns:NAME:PORT" in text
    assert "'h:99999' must be HOST:PORT" in text
    assert "dns_refresh_s" in text and "must be a number > 0" in text
