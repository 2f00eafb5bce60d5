"""Drawing a compiled plan: every input, node and output once, the edges the
plan's references imply, switch case labels, and text quoting in both formats."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from orchestrator.compiling import FORMATS, compile_file, compile_text, render
from orchestrator.compiling._render import to_dot, to_mermaid
from orchestrator.plan import Plan

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


@pytest.fixture(scope="module")
def diamond() -> Plan:
    return compile_file(GRAPHS / "diamond.yaml")


@pytest.fixture(scope="module")
def routing() -> Plan:
    return compile_file(GRAPHS / "routing.yaml")


def _dot_edges(text: str) -> set[tuple[str, str, str]]:
    pattern = re.compile(r'^  "([^"]+)" -> "([^"]+)"(?: \[label="([^"]*)"\])?;$', re.M)
    return {(a, b, label or "") for a, b, label in pattern.findall(text)}


def test_dot_edges_follow_the_references(diamond: Plan) -> None:
    assert _dot_edges(to_dot(diamond)) == {
        ("input:x", "node:pre", ""),
        ("node:pre", "node:a", ""),
        ("node:pre", "node:b", ""),
        ("node:a", "node:post", ""),
        ("node:b", "node:post", ""),
        ("node:post", "output:y", ""),
    }


def test_dot_vertices_have_a_shape_per_kind_and_runner_details(diamond: Plan) -> None:
    text = to_dot(diamond)
    assert text.startswith('digraph "diamond" {\n  rankdir=LR;')
    assert text.endswith("}\n")
    assert '"input:x" [shape=invhouse, label="input x\\nfloat32[64]"];' in text
    assert '"node:a" [shape=box3d, label="a\\nmlp_a.predict\\nmax_batch_size 32"];' in text
    assert '"node:pre" [shape=box, label="pre\\nmodels:normalize"];' in text
    assert '"output:y" [shape=house, label="output y\\nfloat32[10]"];' in text


def test_switch_edges_are_labelled_with_their_case(routing: Plan) -> None:
    edges = _dot_edges(to_dot(routing))
    assert ("node:route", "node:answer", "question") in edges
    assert ("node:route", "node:greet", "greeting") in edges
    fallback = [e for e in edges if e[:2] == ("node:route", "node:fallback")]
    assert len(fallback) == 1 and fallback[0][2] != ""
    assert {("node:answer", "node:reply", ""), ("input:loud", "node:loud", "")} <= edges
    assert '"node:route" [shape=diamond' in to_dot(routing)
    assert '"node:reply" [shape=hexagon' in to_dot(routing)


def test_mermaid_has_one_line_per_vertex_and_per_edge(routing: Plan) -> None:
    lines = to_mermaid(routing).splitlines()
    assert lines[0] == "flowchart LR"
    vertices = [line for line in lines[1:] if "-->" not in line]
    edges = [line for line in lines[1:] if "-->" in line]
    assert len(vertices) == len(routing.inputs) + len(routing.nodes) + len(routing.outputs)
    assert len(edges) == len(_dot_edges(to_dot(routing)))
    assert any('-->|"question"|' in line for line in edges)
    assert any(line.endswith('{"route<br/>switch"}') for line in vertices)
    assert any(line.endswith('{{"reply<br/>coalesce"}}') for line in vertices)


def test_map_nodes_say_what_they_map_over_and_dynamic_dims_show_as_question_marks() -> None:
    plan = compile_file(GRAPHS / "fanout.yaml")
    text = to_mermaid(plan)
    assert "map over $inputs.sentences" in text and "map over $tokens" in text
    rows = compile_file(GRAPHS / "rows.yaml")
    assert '"input:x" [shape=invhouse, label="input x\\nfloat32[?, 64]"];' in to_dot(rows)


def test_quotes_in_case_labels_are_escaped_in_both_formats(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("def say(text):\n    return text\n")
    plan = compile_text(
        textwrap.dedent(
            """
            apiVersion: graphctl/v1
            kind: Graph
            metadata: {name: quoting}
            spec:
              inputs: {text: {type: string}}
              nodes:
                route:
                  switch: $inputs.text
                  cases: {'say "hi"': [say]}
                say: {function: helpers:say, args: {text: $inputs.text}}
              outputs: {out: $say}
            """
        ),
        base_dir=tmp_path,
    )
    assert '"node:route" -> "node:say" [label="say \\"hi\\""];' in to_dot(plan)
    (edge,) = [line for line in to_mermaid(plan).splitlines() if "-->|" in line]
    assert edge.endswith('-->|"say #quot;hi#quot;"| v2')


@pytest.mark.parametrize("fmt", FORMATS)
def test_render_dispatches_on_the_format(diamond: Plan, fmt: str) -> None:
    expected = to_mermaid(diamond) if fmt == "mermaid" else to_dot(diamond)
    assert render(diamond, fmt) == expected
