"""The compiler's links between nodes: dependencies, switch gates, cycles, unused nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import GraphFileError
from orchestrator.plan import AllOf, Compare
from tests.test_compiler import build


def test_dependencies_come_from_every_reference_a_node_reads(tmp_path: Path) -> None:
    plan = build(
        tmp_path,
        """
        inputs: {x: {type: number}}
        nodes:
          a: {function: models:ident, args: {x: $inputs.x}}
          b: {function: models:ident, args: {x: $inputs.x}, when: {ref: $a, gt: 0}}
          c: {function: models:join, args: {a: $b, b: [$a]}}
        outputs: {y: $c}
        """,
    )
    assert plan.nodes["b"].deps == frozenset({"a"})
    assert plan.nodes["c"].deps == frozenset({"a", "b"})
    assert plan.edges == (("a", "b"), ("a", "c"), ("b", "c"))


def test_a_switch_puts_a_gate_on_each_branch(tmp_path: Path) -> None:
    plan = build(
        tmp_path,
        """
        inputs: {kind: {type: string}}
        nodes:
          route: {switch: $inputs.kind, cases: {cat: [small]}, default: [big]}
          small: {function: models:ident, args: {x: $inputs.kind}, when: {ref: $inputs.kind, ne: x}}
          big: {function: models:ident, args: {x: $inputs.kind}}
          out: {coalesce: [$small, $big]}
        outputs: {y: $out}
        """,
    )
    small, big = plan.nodes["small"], plan.nodes["big"]
    assert big.when == Compare(big.when.ref, "eq", "default")  # type: ignore[union-attr]
    assert isinstance(small.when, AllOf)  # its own condition and the switch's gate
    gates = [c for c in small.when.conditions if isinstance(c, Compare) and c.ref.source == "route"]
    assert [(g.op, g.value) for g in gates] == [("eq", "cat")]
    assert {"route"} <= small.deps and {"route"} <= big.deps


def test_a_cycle_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(GraphFileError) as caught:
        build(
            tmp_path,
            """
            inputs: {x: {type: number}}
            nodes:
              a: {function: models:ident, args: {x: $c}}
              b: {function: models:ident, args: {x: $a}}
              c: {function: models:ident, args: {x: $b}}
            outputs: {y: $c}
            """,
        )
    assert any("cycle: a -> b -> c -> a" in str(d) for d in caught.value.errors)


def test_a_node_nobody_reads_is_a_warning(tmp_path: Path) -> None:
    plan = build(
        tmp_path,
        """
        inputs: {x: {type: number}}
        nodes:
          used: {function: models:ident, args: {x: $inputs.x}}
          spare: {function: models:ident, args: {x: $inputs.x}}
        outputs: {y: $used}
        """,
    )
    assert [d.severity for d in plan.warnings] == ["warning"]
    assert "spare" in plan.warnings[0].message
