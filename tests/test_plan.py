"""The compiled plan as a value: read-only after it is built (whoever holds it),
its edges listed once from the nodes' dependencies, and its defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator.compiling import compile_file
from orchestrator.plan import (
    Location,
    NodePlan,
    OnError,
    OutputPlan,
    Plan,
    Ref,
    RetryPolicy,
)

ROOT = Path(__file__).resolve().parent.parent
HERE = Location("g.yaml", 1, 1)


def _node(name: str, *deps: str) -> NodePlan:
    return NodePlan(name=name, kind="function", location=HERE, deps=frozenset(deps))


def _plan(*nodes: NodePlan) -> Plan:
    return Plan(
        name="g",
        description="",
        file=Path("/graphs/g.yaml"),
        inputs={},
        outputs={"out": OutputPlan("out", Ref(nodes[-1].name))},
        nodes={node.name: node for node in nodes},
        runners={},
    )


def test_edges_follow_node_order_and_sorted_dependencies() -> None:
    plan = _plan(_node("a"), _node("b"), _node("c", "b", "a"), _node("d", "c"))
    assert plan.edges == (("a", "c"), ("b", "c"), ("c", "d"))
    assert _plan(_node("solo")).edges == ()


def test_mappings_are_read_only_views_of_private_copies() -> None:
    nodes = {"a": _node("a")}
    plan = Plan("g", "", Path("g.yaml"), {}, {}, nodes, {}, warnings=[])  # type: ignore[arg-type]
    nodes["b"] = _node("b")
    assert list(plan.nodes) == ["a"]
    for name in ("inputs", "outputs", "nodes", "runners"):
        with pytest.raises(TypeError):
            getattr(plan, name)["x"] = None
    assert plan.warnings == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "other"  # type: ignore[misc]


def test_a_compiled_plan_cannot_be_changed_through_its_nodes() -> None:
    plan = compile_file(ROOT / "graphs" / "diamond.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.nodes["a"].deps = frozenset()  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.runners["mlp_a"].init["seed"] = 3  # type: ignore[index]
    assert plan.base_dir == ROOT / "graphs"


def test_defaults_fail_fast_and_do_not_retry() -> None:
    node = _node("n")
    assert node.retries == RetryPolicy(count=0, backoff_ms=50.0, max_backoff_ms=2000.0)
    assert node.on_error == OnError(mode="fail", default=None)
    assert node.on_skipped_input == "skip"
    assert OutputPlan("o", Ref("n")).if_skipped == "null"
