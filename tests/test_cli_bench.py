"""``graphctl bench`` end to end: the real command in a child process, in-process
and against a real ``graphctl serve`` it starts itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DIAMOND = REPO / "graphs" / "diamond.yaml"
KEYS = ("throughput_rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "nodes")
NODE_KEYS = ("calls", "mean_batch_size", "p50_ms", "queue_wait_ms")
# A short measured run, as one JSON object: enough requests for every figure.
SHORT_JSON_RUN = ("--concurrency", "4", "--duration", "1", "--warmup", "0.3", "-o", "json")
ENTRY = "import sys; from orchestrator.cli import main; sys.exit(main())"


def graphctl(*args: str, timeout: float = 100.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_json_object(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout
    found = json.loads(lines[0])
    assert isinstance(found, dict)
    return found


def check_figures(found: dict[str, Any]) -> None:
    for key in KEYS:
        assert key in found
    assert found["errors"] == {}
    assert found["throughput_rps"] > 0
    assert 0 < found["p50_ms"] <= found["p90_ms"] <= found["p99_ms"] <= found["max_ms"]
    assert set(found["nodes"]) == {"pre", "a", "b", "post"}
    for node in found["nodes"].values():
        for key in NODE_KEYS:
            assert key in node
        assert node["calls"] > 0
    assert found["nodes"]["a"]["mean_batch_size"] >= 1


def test_bench_in_process_prints_one_json_object() -> None:
    done = graphctl("bench", str(DIAMOND), *SHORT_JSON_RUN)
    assert done.returncode == 0, done.stderr
    found = one_json_object(done.stdout)
    check_figures(found)
    assert found["target"] == "in-process"
    assert done.stderr == ""  # no progress line without a terminal


def test_bench_serve_measures_over_http_with_node_figures_from_metrics() -> None:
    done = graphctl("bench", str(DIAMOND), "--serve", *SHORT_JSON_RUN)
    assert done.returncode == 0, done.stderr
    found = one_json_object(done.stdout)
    check_figures(found)
    assert found["target"].startswith("http://127.0.0.1:")
    assert found["target"].endswith("/diamond")
    assert found["nodes"]["a"]["queue_wait_ms"] is not None


def test_bench_text_output_has_headline_and_node_table() -> None:
    done = graphctl(
        "bench", str(DIAMOND), "--concurrency", "2", "--duration", "0.5", "--warmup", "0"
    )
    assert done.returncode == 0, done.stderr
    assert "throughput" in done.stdout and "p99" in done.stdout
    assert "queue wait ms" in done.stdout and "mean batch" in done.stdout


def test_bench_refuses_a_remote_url_before_sending_anything() -> None:
    done = graphctl("bench", str(DIAMOND), "--url", "http://192.0.2.1:8000", "--duration", "1")
    assert done.returncode == 1
    assert "not a loopback address" in done.stderr
    assert "Traceback" not in done.stderr


def test_bench_without_input_and_no_sample_says_what_to_give(tmp_path: Path) -> None:
    graph = tmp_path / "lonely.yaml"
    graph.write_text(DIAMOND.read_text())
    (tmp_path / "models.py").write_text((DIAMOND.parent / "models.py").read_text())
    done = graphctl("bench", str(graph), "--duration", "1")
    assert done.returncode == 1
    assert "--input" in done.stderr and "lonely.input.json" in done.stderr
