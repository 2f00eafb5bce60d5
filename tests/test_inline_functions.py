"""``inline: true`` function nodes: a sync function declared cheap runs on the event
loop (no thread hop); without it a sync function runs in a thread."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator import GraphFileError, compile_file
from orchestrator.graph import Graph

KIT = """
import asyncio


def where(x):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return ["thread", x]
    return ["loop", x]
"""

GRAPH = """
apiVersion: graphctl/v1
kind: Graph
metadata: {name: inline}
spec:
  inputs:
    x: {type: number}
    xs: {type: array}
  nodes:
    on_loop: {function: inline_kit:where, inline: true, args: {x: $inputs.x}}
    off_loop: {function: inline_kit:where, args: {x: $inputs.x}}
    mapped: {function: inline_kit:where, inline: true, map: $inputs.xs, args: {x: $item}}
  outputs:
    on_loop: $on_loop
    off_loop: $off_loop
    mapped: $mapped
"""


def _write(tmp_path: Path, graph: str) -> Path:
    (tmp_path / "inline_kit.py").write_text(KIT)
    path = tmp_path / "inline.yaml"
    path.write_text(textwrap.dedent(graph))
    return path


def test_inline_sync_function_runs_on_the_loop_and_others_in_a_thread(tmp_path: Path) -> None:
    plan = compile_file(_write(tmp_path, GRAPH))
    assert plan.nodes["on_loop"].inline and not plan.nodes["off_loop"].inline

    async def run() -> dict[str, Any]:
        async with Graph(plan) as graph:
            return await graph.run({"x": 2, "xs": [1, 2]})

    outputs = asyncio.run(run())
    assert outputs == {
        "on_loop": ["loop", 2],
        "off_loop": ["thread", 2],
        "mapped": [["loop", 1], ["loop", 2]],
    }


def test_inline_on_a_switch_node_is_reported_at_its_key(tmp_path: Path) -> None:
    graph = GRAPH.replace(
        "    on_loop: {function",
        "    route: {switch: $inputs.x, cases: {'1': [on_loop]}, inline: true}\n"
        "    on_loop: {function",
    )
    with pytest.raises(GraphFileError) as caught:
        compile_file(_write(tmp_path, graph))
    messages = [str(d) for d in caught.value.diagnostics]
    assert any("`inline` applies only to function nodes" in m for m in messages), messages
    assert any(":10:57:" in m for m in messages), messages
