"""Mistakes on the ``graphctl`` command line give one clear line and exit 2 (usage) or 1
(bad input), never "internal error", a traceback, or a server on a wrong port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._serve_helpers import CLI, DIAMOND, ROOT, free_port

TIMEOUT_S = 60


def _graphctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["serve", str(DIAMOND), "--port", "99999"], "--port: must be between 0 and 65535"),
        (["serve", str(DIAMOND), "--max-body-mb", "-1"], "--max-body-mb: must be more than 0"),
        (["validate", str(ROOT / "graphs")], "is a folder"),
        (["graph", str(ROOT / "graphs")], "is a folder"),
    ],
)
def test_usage_mistakes_exit_2_with_one_error_line(args: list[str], words: str) -> None:
    result = _graphctl(*args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and words in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_nul_byte_in_a_graph_file_is_a_diagnostic(tmp_path: Path) -> None:
    graph = tmp_path / "nul.yaml"
    graph.write_bytes(b"apiVersion: graphctl/v1\nkind: G\x00raph\n")
    for command in ("validate", "graph"):
        result = _graphctl(command, str(graph))
        assert result.returncode == 1
        first = result.stderr.splitlines()[0]
        assert (
            first
            == f"{graph}:2:8: error: invalid YAML: character U+0000 is not allowed in a YAML file"
        )
        assert "internal error" not in result.stderr


def test_bench_url_without_a_listener_says_it_cannot_reach_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _graphctl("bench", str(DIAMOND), "--url", url, "--requests", "2")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"graphctl: error: cannot reach a server at {url}: All connection attempts failed"
    ]
