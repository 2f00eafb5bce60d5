"""References and conditions compiled to data: the reference grammar (with its
messages), ``$$`` escapes, the paths problems are reported at, and the walkers
that list what a node reads."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.compiling._references import (
    Collected,
    ReferenceSyntaxError,
    compile_condition,
    compile_template,
    is_node_ref,
    parse_ref,
    refs_in_condition,
    refs_in_template,
    refs_read_by,
)
from orchestrator.plan import AllOf, AnyOf, Compare, Location, NodePlan, Not, Ref

HERE = Location("graph.yaml", 1, 1)


@pytest.mark.parametrize(
    ("text", "source", "path"),
    [
        ("$router", "router", ()),
        ("$router.label", "router", ("label",)),
        ("$ocr.boxes.0", "ocr", ("boxes", 0)),
        ("$ocr.boxes.10.x", "ocr", ("boxes", 10, "x")),
        ("$inputs.x", "inputs", ("x",)),
        ("$item", "item", ()),
        ("$_private-node.out_1", "_private-node", ("out_1",)),
        ("$a.-dash", "a", ("-dash",)),
    ],
)
def test_valid_references(text: str, source: str, path: tuple[Any, ...]) -> None:
    assert parse_ref(text) == Ref(source=source, path=path, text=text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("$", "is not a valid reference"),
        ("$1node", "is not a valid reference"),
        ("$node.", "is not a valid reference"),
        ("$node..x", "is not a valid reference"),
        ("$node x", "is not a valid reference"),
        ("node", "is not a valid reference"),
        ("$node.a b", "is not a valid reference"),
        ("$inputs", "names no input: write `$inputs.NAME`"),
    ],
)
def test_invalid_references_say_why(text: str, reason: str) -> None:
    with pytest.raises(ReferenceSyntaxError) as info:
        parse_ref(text)
    assert reason in str(info.value) and repr(text) in str(info.value)


def test_template_replaces_references_keeps_literals_and_unescapes_dollars() -> None:
    found = Collected()
    args = {"x": "$a.out", "rows": ["$inputs.x", 3, "$$price", "plain"], "n": None}
    compiled = compile_template(args, ("spec", "nodes", "n", "args"), found)
    assert compiled == {
        "x": Ref("a", ("out",), "$a.out"),
        "rows": [Ref("inputs", ("x",), "$inputs.x"), 3, "$price", "plain"],
        "n": None,
    }
    assert [(s.ref.text, s.path) for s in found.sites] == [
        ("$a.out", ("spec", "nodes", "n", "args", "x")),
        ("$inputs.x", ("spec", "nodes", "n", "args", "rows", 0)),
    ]
    assert found.problems == []


def test_template_problems_are_recorded_at_their_path_and_do_not_stop_the_walk() -> None:
    found = Collected()
    compiled = compile_template(["$bad..ref", "$ok"], ("args",), found)
    assert compiled == [None, Ref("ok", (), "$ok")]
    ((path, message),) = found.problems
    assert path == ("args", 0) and "'$bad..ref' is not a valid reference" in message


def test_a_non_string_where_a_reference_is_expected_is_a_problem() -> None:
    found = Collected()
    assert found.ref(42, ("when", "ref")) is None
    assert found.problems == [(("when", "ref"), "expected a reference, got 42")]


A = Ref("r", ("label",), "$r.label")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"ref": "$r.label", "eq": "cat"}, Compare(A, "eq", "cat")),
        ({"ref": "$r.label", "in": ["cat", "dog"]}, Compare(A, "in", ("cat", "dog"))),
        ({"ref": "$r.label", "exists": True}, Compare(A, "exists", True)),
        ({"ref": "$r.label", "gt": 0.5}, Compare(A, "gt", 0.5)),
        (
            {"all": [{"ref": "$r.label", "ne": "x"}, {"not": {"ref": "$r.label", "lt": 1}}]},
            AllOf((Compare(A, "ne", "x"), Not(Compare(A, "lt", 1)))),
        ),
        ({"any": [{"ref": "$r.label", "le": 2}]}, AnyOf((Compare(A, "le", 2),))),
        ({"any": []}, AnyOf(())),
    ],
)
def test_conditions_compile_to_data(data: Any, expected: Any) -> None:
    found = Collected()
    assert compile_condition(data, ("when",), found) == expected
    assert found.problems == []


@pytest.mark.parametrize(
    "data",
    [
        "not a mapping",
        {"ref": "$r.label"},  # no operator
        {"ref": "$r.label", "eq": 1, "ne": 2},  # two operators
        {"ref": "$$r", "eq": 1},
        {"all": [{"ref": "$r.label", "eq": 1}, {"bogus": 1}]},
        {"not": {"ref": "$r.label"}},
        {"neither": True},
    ],
)
def test_malformed_conditions_compile_to_none(data: Any) -> None:
    assert compile_condition(data, ("when",), Collected()) is None


def test_condition_reference_problems_point_at_the_ref_key() -> None:
    found = Collected()
    compile_condition({"all": [{"ref": "$1x", "eq": 1}]}, ("when",), found)
    assert [path for path, _ in found.problems] == [("when", "all", 0, "ref")]


def test_walkers_list_every_reference_in_order() -> None:
    b, c, d = (Ref(n, (), f"${n}") for n in "bcd")
    condition = AllOf((Compare(A, "eq", 1), AnyOf((Not(Compare(b, "exists", True)),))))
    assert refs_in_condition(condition) == [A, b]
    assert refs_in_condition(None) == []
    assert refs_in_template({"x": [c, {"y": (d, 1)}], "z": "text"}) == [c, d]
    node = NodePlan(name="n", kind="function", location=HERE, args={"v": c}, when=condition, map=d)
    assert refs_read_by(node) == [c, A, b, d]
    assert refs_read_by(NodePlan(name="m", kind="function", location=HERE, args={"v": c})) == [c]


@pytest.mark.parametrize(
    ("text", "is_node"),
    [("$a.b", True), ("$inputs.x", False), ("$item", False), ("$items", True)],
)
def test_is_node_ref(text: str, is_node: bool) -> None:
    assert is_node_ref(parse_ref(text)) is is_node
