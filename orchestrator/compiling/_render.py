"""Draw a compiled graph as Mermaid or Graphviz DOT, for docs and code review.

    print(to_mermaid(compile_file("graphs/diamond.yaml")))

Inputs and outputs are drawn as their own shapes; runner nodes say which runner
and method they call and how many items a batch may hold; a switch's edges say
which case routes to each branch.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.compiling._references import refs_read_by
from orchestrator.plan import INPUTS, AllOf, Compare, NodePlan, Plan, TensorSpec

FORMATS = ("mermaid", "dot")


@dataclass(frozen=True)
class _Vertex:
    key: str  # unique across inputs, nodes and outputs
    label: tuple[str, ...]  # lines
    shape: str  # input, output, runner, function, switch, coalesce


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    label: str = ""


def _tensor(tensor: TensorSpec | None) -> tuple[str, ...]:
    if tensor is None:
        return ()
    return (f"{tensor.dtype}[{', '.join('?' if n == -1 else str(n) for n in tensor.shape)}]",)


def _node_label(plan: Plan, node: NodePlan) -> tuple[str, ...]:
    if node.kind == "runner" and node.runner is not None and node.method is not None:
        runner = plan.runners.get(node.runner)
        lines = [node.name, f"{node.runner}.{node.method}"]
        if runner is not None:
            lines.append(f"max_batch_size {runner.batching_for(node.method).max_batch_size}")
    elif node.kind == "function":
        lines = [node.name, str(node.function)]
    else:
        lines = [node.name, node.kind]
    if node.map is not None:
        lines.append(f"map over {node.map.text}")
    return tuple(lines)


def _case_label(node: NodePlan, switch: str) -> str:
    conditions = node.when.conditions if isinstance(node.when, AllOf) else (node.when,)
    for condition in conditions:
        if isinstance(condition, Compare) and condition.ref.source == switch:
            value = condition.value
            return " | ".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return ""


def _layout(plan: Plan) -> tuple[list[_Vertex], list[_Edge]]:
    vertices = [
        _Vertex(f"input:{n}", (f"input {n}", *_tensor(i.tensor)), "input")
        for n, i in plan.inputs.items()
    ]
    edges: list[_Edge] = []
    for node in plan.nodes.values():
        vertices.append(_Vertex(f"node:{node.name}", _node_label(plan, node), node.kind))
        read = refs_read_by(node)
        sources = {f"input:{r.path[0]}" for r in read if r.source == INPUTS and r.path}
        edges += [_Edge(source, f"node:{node.name}") for source in sorted(sources)]
        for dep in sorted(node.deps):
            label = _case_label(node, dep) if plan.nodes[dep].kind == "switch" else ""
            edges.append(_Edge(f"node:{dep}", f"node:{node.name}", label))
    for name, output in plan.outputs.items():
        vertices.append(
            _Vertex(f"output:{name}", (f"output {name}", *_tensor(output.tensor)), "output")
        )
        source = output.ref
        origin = f"input:{source.path[0]}" if source.source == INPUTS else f"node:{source.source}"
        edges.append(_Edge(origin, f"output:{name}"))
    return vertices, edges


_MERMAID_SHAPES = {
    "input": ('(["', '"])'),
    "output": ('(["', '"])'),
    "runner": ('[["', '"]]'),
    "function": ('["', '"]'),
    "switch": ('{"', '"}'),
    "coalesce": ('{{"', '"}}'),
}


def _mermaid_text(text: str) -> str:
    """Text inside a Mermaid ``"..."`` label: a quote would end the label."""
    return text.replace('"', "#quot;")


def to_mermaid(plan: Plan) -> str:
    """A Mermaid ``flowchart`` of the plan (renders on GitHub and in most docs tools)."""
    vertices, edges = _layout(plan)
    ids = {v.key: f"v{i}" for i, v in enumerate(vertices)}
    lines = ["flowchart LR"]
    for vertex in vertices:
        opening, closing = _MERMAID_SHAPES[vertex.shape]
        text = "<br/>".join(_mermaid_text(part) for part in vertex.label)
        lines.append(f"  {ids[vertex.key]}{opening}{text}{closing}")
    for edge in edges:
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {ids[edge.source]} -->{label} {ids[edge.target]}")
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {
    "input": "invhouse",
    "output": "house",
    "runner": "box3d",
    "function": "box",
    "switch": "diamond",
    "coalesce": "hexagon",
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(plan: Plan) -> str:
    """A Graphviz ``digraph`` of the plan (``dot -Tsvg``)."""
    vertices, edges = _layout(plan)
    lines = [f"digraph {_quote(plan.name)} {{", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for vertex in vertices:
        label = _quote("\n".join(vertex.label)).replace("\n", "\\n")
        lines.append(f"  {_quote(vertex.key)} [shape={_DOT_SHAPES[vertex.shape]}, label={label}];")
    for edge in edges:
        attributes = f" [label={_quote(edge.label)}]" if edge.label else ""
        lines.append(f"  {_quote(edge.source)} -> {_quote(edge.target)}{attributes};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(plan: Plan, fmt: str) -> str:
    """The plan drawn in ``fmt``, one of ``FORMATS``."""
    return to_mermaid(plan) if fmt == "mermaid" else to_dot(plan)
