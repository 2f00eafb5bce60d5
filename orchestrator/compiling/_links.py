"""Link compiled nodes into a graph: resolve references, put each switch's gate on
its branches, build the DAG, and find cycles and unused nodes.

Pure functions over the drafts; every problem goes to the ``CompileContext``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

import networkx as nx

from orchestrator.compiling._context import CompileContext
from orchestrator.compiling._nodes import NodeDraft
from orchestrator.compiling._references import RefSite, is_node_ref
from orchestrator.compiling._validation import did_you_mean, owner
from orchestrator.plan import (
    INPUTS,
    ITEM,
    SWITCH_DEFAULT,
    AllOf,
    Compare,
    Condition,
    InputPlan,
    NodePlan,
    OutputPlan,
    Ref,
)

MAX_UNUSED_WARNINGS = 20  # then one warning counts the rest


def _check_site(
    ctx: CompileContext,
    site: RefSite,
    nodes: Sequence[str],
    known: Set[str],
    inputs: Mapping[str, InputPlan],
) -> None:
    ref, who = site.ref, owner(site.path)
    if ref.source == INPUTS:
        name = str(ref.path[0])
        if name not in inputs:
            ctx.error_at(
                site.path,
                f"{who}: `{ref.text}` names no input {name!r}" + did_you_mean(name, list(inputs)),
            )
    elif ref.source == ITEM:
        if site.path[1] == "outputs":
            ctx.error_at(
                site.path, f"{who}: `$item` is only valid inside the `args` of a node with `map`"
            )
    elif ref.source not in known:
        hint = did_you_mean(ref.source, [*nodes, INPUTS])
        ctx.error_at(site.path, f"{who}: `{ref.text}` refers to no node {ref.source!r}{hint}")


def check_refs(
    ctx: CompileContext,
    drafts: Mapping[str, NodeDraft],
    output_sites: Iterable[RefSite],
    nodes: Sequence[str],
    inputs: Mapping[str, InputPlan],
) -> None:
    """Report every reference to a node or input that does not exist."""
    known = set(nodes)  # membership in a list would make this quadratic
    for draft in drafts.values():
        for site in draft.sites:
            _check_site(ctx, site, nodes, known, inputs)
    for site in output_sites:
        _check_site(ctx, site, nodes, known, inputs)


def _gate(switch: str, keys: Sequence[Any]) -> Compare:
    ref = Ref(source=switch, path=(), text=f"${switch}")
    if len(keys) == 1:
        return Compare(ref, "eq", keys[0])
    return Compare(ref, "in", tuple(keys))


def _collect_gates(
    ctx: CompileContext, drafts: Mapping[str, NodeDraft], nodes: Sequence[str]
) -> dict[str, list[tuple[str, Compare]]]:
    """The gates each branch node gets from the switches that list it."""
    gates: dict[str, list[tuple[str, Compare]]] = {}
    known = set(nodes)
    for switch, draft in drafts.items():
        for case in draft.plan.cases:
            if case == SWITCH_DEFAULT:
                ctx.error_at(
                    ("spec", "nodes", switch, "cases", case),
                    f"node {switch!r}: a case "
                    f"cannot be {SWITCH_DEFAULT!r}: list those nodes under `default`",
                    on_key=True,
                )
        for target, listed in draft.branches.items():
            where = listed[0][1]
            if target not in known or target == switch:
                reason = "itself" if target == switch else f"no node {target!r}"
                ctx.error_at(
                    where,
                    f"node {switch!r}: a case routes to {reason}"
                    + ("" if target == switch else did_you_mean(target, nodes)),
                )
                continue
            keys = [SWITCH_DEFAULT if key is None else key for key, _ in listed]
            gates.setdefault(target, []).append((switch, _gate(switch, keys)))
    return gates


def _when(own: Condition | None, gates: Sequence[Compare]) -> Condition | None:
    parts: list[Condition] = [*gates, *([own] if own is not None else [])]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def gate_branches(
    ctx: CompileContext, drafts: Mapping[str, NodeDraft], nodes: Sequence[str]
) -> dict[str, NodePlan]:
    """Final node plans: ``deps`` filled in, switch gates ANDed into ``when``."""
    gates = _collect_gates(ctx, drafts, nodes)
    known = set(nodes)
    plans = {}
    for name, draft in drafts.items():
        deps = {s.ref.source for s in draft.sites if is_node_ref(s.ref) and s.ref.source in known}
        mine = gates.get(name, [])
        deps.update(switch for switch, _ in mine)
        when = _when(draft.plan.when, [gate for _, gate in mine])
        plans[name] = dataclasses.replace(draft.plan, deps=frozenset(deps), when=when)
    return plans


def _report_cycles(ctx: CompileContext, dag: nx.DiGraph, rank: Mapping[str, int]) -> bool:
    found = False
    for component in sorted(
        nx.strongly_connected_components(dag), key=lambda c: min(rank[n] for n in c)
    ):
        first = min(component, key=rank.__getitem__)
        if len(component) == 1 and not dag.has_edge(first, first):
            continue
        edges = nx.find_cycle(dag.subgraph(component), source=first)
        loop = [str(edge[0]) for edge in edges]
        start = loop.index(min(loop, key=rank.__getitem__))
        loop = loop[start:] + loop[:start]
        path = " -> ".join([*loop, loop[0]])
        ctx.report(ctx.key(("spec", "nodes", loop[0])), f"cycle: {path}")
        found = True
    return found


def build_dag(
    ctx: CompileContext,
    nodes: Mapping[str, NodePlan],
    outputs: Mapping[str, OutputPlan],
    *,
    complete: bool,
) -> list[str] | None:
    """The nodes in a topological order (``None`` when there is a cycle, reported).

    ``complete``: every declared node compiled, so unused ones can be told apart
    from ones whose readers had faults.
    """
    rank = {name: i for i, name in enumerate(nodes)}
    dag = nx.DiGraph()
    dag.add_nodes_from(nodes)
    dag.add_edges_from(
        (dep, name) for name, plan in nodes.items() for dep in plan.deps if dep in rank
    )
    if _report_cycles(ctx, dag, rank):
        return None
    order = [str(n) for n in nx.lexicographical_topological_sort(dag, key=rank.__getitem__)]
    read_by_outputs = {output.ref.source for output in outputs.values()}
    unused = [
        name
        for name in (nodes if complete else ())
        if dag.out_degree(name) == 0 and name not in read_by_outputs
    ]
    _report_unused(ctx, nodes, unused)
    return order


def _report_unused(ctx: CompileContext, nodes: Mapping[str, NodePlan], unused: list[str]) -> None:
    """One warning per unused node up to ``MAX_UNUSED_WARNINGS``, then one for the rest:
    a generated graph with thousands of them must not bury everything else."""
    for name in unused[:MAX_UNUSED_WARNINGS]:
        ctx.report(
            nodes[name].location, f"node {name!r} is not used by any node or output", "warning"
        )
    rest = unused[MAX_UNUSED_WARNINGS:]
    if rest:
        ctx.report(
            nodes[rest[0]].location,
            f"... and {len(rest)} more nodes are not used by any node or output"
            f" (from {rest[0]!r} on)",
            "warning",
        )
