"""The README's tour works as written: its shell commands, its Python and its graph."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import compile_file, compile_text

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def tour_shell_blocks() -> list[str]:
    """Every ``sh`` block but the set-up one (``make``, which runs this suite)."""
    return [b for b in blocks("sh") if not b.lstrip().startswith("make ")]


def shell(script: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    script = script.replace("/tmp/", f"{tmp}/").replace(".venv/bin/python", sys.executable)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
    )


@pytest.mark.parametrize("script", tour_shell_blocks())
def test_shell_block_runs(script: str, tmp_path: Path) -> None:
    done = shell(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_the_tour_has_its_shell_blocks() -> None:
    assert len(tour_shell_blocks()) >= 4


def test_python_api_block_runs() -> None:
    runnable = [b for b in blocks("python") if "asyncio.run" in b]
    assert len(runnable) == 1
    done = subprocess.run(
        [sys.executable, "-c", runnable[0]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("'label': 'positive'") == 2


def test_graph_block_is_the_diamond_example() -> None:
    (text,) = blocks("yaml")
    shown = compile_text(text, "diamond.yaml", ROOT / "graphs")
    real = compile_file(ROOT / "graphs" / "diamond.yaml")
    assert list(shown.nodes) == list(real.nodes)
    assert shown.runners["mlp_a"] == real.runners["mlp_a"]
    assert [n.inline for n in shown.nodes.values()] == [n.inline for n in real.nodes.values()]
    assert set(shown.edges) == set(real.edges)


def test_validate_error_shown_is_the_real_one() -> None:
    shown = next(line for line in README.splitlines() if ": error: " in line)
    done = shell("graphctl validate graphs/broken/dangling_reference.yaml", ROOT)
    assert done.returncode == 1
    assert shown in done.stderr.splitlines()
