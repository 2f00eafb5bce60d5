"""Loading graph files: positions of keys and values, duplicate keys, YAML errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.compiling._spec import (
    ALIAS_COPIES_MIN,
    alias_copy_limit,
    load_document,
    parse_document,
)
from orchestrator.errors import GraphFileError
from orchestrator.plan import Location

ROOT = Path(__file__).resolve().parent.parent

TEXT = """\
a:
  b: [1, {c: $x}]
  d: 2024-01-01
flow: {k: v}
"""


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc = parse_document(TEXT, "f.yaml")
    assert doc.data == {"a": {"b": [1, {"c": "$x"}], "d": "2024-01-01"}, "flow": {"k": "v"}}
    assert doc.key_at(("a", "b")) == Location("f.yaml", 2, 3)
    assert doc.value_at(("a", "b", 1, "c")) == Location("f.yaml", 2, 14)
    assert doc.value_at(("flow", "k")) == Location("f.yaml", 4, 11)
    assert doc.key_at(("flow", "k")) == Location("f.yaml", 4, 8)
    assert doc.problems == ()


def test_missing_paths_fall_back_to_the_closest_ancestor() -> None:
    doc = parse_document(TEXT, "f.yaml")
    assert doc.value_at(("a", "b", 7, "zz")) == doc.value_at(("a", "b"))
    assert doc.key_at(("a", "nope")) == Location("f.yaml", 1, 1)


def test_every_duplicate_key_is_a_problem_and_the_first_wins() -> None:
    doc = parse_document("x: 1\ny: {k: 1, k: 2}\nx: 3\n", "d.yaml")
    assert doc.data == {"x": 1, "y": {"k": 1}}
    assert [str(p) for p in doc.problems] == [
        "d.yaml:2:11: error: duplicate key 'k' (first written at line 2, column 5)",
        "d.yaml:3:1: error: duplicate key 'x' (first written at line 1, column 1)",
    ]


def test_merge_keys_fill_in_without_overriding() -> None:
    doc = parse_document("base: &b {w: 1, v: 2}\nr: {<<: *b, v: 3}\n", "m.yaml")
    assert doc.data["r"] == {"w": 1, "v": 3}
    assert doc.problems == ()


def test_a_merge_of_a_list_alias_merges_each_map() -> None:
    doc = parse_document("b: &b [{x: 1}, {y: 2}]\nr: {<<: *b, y: 3}\n", "m.yaml")
    assert doc.data["r"] == {"y": 3, "x": 1}


@pytest.mark.parametrize("text", ["a: &a {<<: *a}\n", "a: &a [*a]\n"])
def test_recursive_aliases_are_a_problem_not_a_crash(text: str) -> None:
    doc = parse_document(text, "r.yaml")
    assert [str(p) for p in doc.problems] == [
        "r.yaml:1:4: error: an alias refers to itself: recursive YAML is not supported"
    ]


def _copies(per_alias: int, uses: int) -> str:
    """A list of ``per_alias - 1`` zeros (``per_alias`` values with the list), then
    ``uses`` aliases of it."""
    return f"a: &a [{', '.join(['0'] * (per_alias - 1))}]\nb: [{', '.join(['*a'] * uses)}]\n"


@pytest.mark.timeout(20)
def test_aliases_may_copy_up_to_the_limit_and_no_more() -> None:
    uses = ALIAS_COPIES_MIN // 100
    assert len(parse_document(_copies(100, uses), "c.yaml").data["b"]) == uses
    with pytest.raises(GraphFileError) as caught:
        parse_document(_copies(100, uses + 1), "c.yaml")
    column = 5 + 4 * uses  # where the alias that crosses the limit is written
    assert [str(d) for d in caught.value.diagnostics] == [
        f"c.yaml:2:{column}: error: YAML aliases copy more than {ALIAS_COPIES_MIN} values,"
        " here at *a: aliases of aliases multiply; write the repeated values out or nest"
        " fewer aliases"
    ]


def test_a_large_file_may_copy_ten_times_what_it_writes() -> None:
    assert alias_copy_limit(10) == ALIAS_COPIES_MIN
    assert alias_copy_limit(50_000) == 500_000


@pytest.mark.timeout(10)
def test_a_billion_laughs_stops_at_the_alias_that_crosses_the_limit() -> None:
    with pytest.raises(GraphFileError) as caught:
        load_document(ROOT / "graphs" / "broken" / "billion_laughs.yaml")
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.line, diagnostic.column) == (20, 10)
    assert diagnostic.message.startswith("YAML aliases copy more than 100000 values, here at *e")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: [1, 2\n",
            "y.yaml:2:1: error: invalid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        ("", "y.yaml:1:1: error: the file is empty"),
        ("a: 1\n---\nb: 2\n", "y.yaml:2:1: error: invalid YAML: but found another document"),
    ],
)
def test_yaml_errors_raise_with_a_position(text: str, expected: str) -> None:
    with pytest.raises(GraphFileError) as caught:
        parse_document(text, "y.yaml")
    assert [str(d) for d in caught.value.diagnostics] == [expected]


def test_complex_keys_are_rejected() -> None:
    doc = parse_document("? [a, b]\n: 1\n", "k.yaml")
    assert [str(p) for p in doc.problems] == [
        "k.yaml:1:3: error: a key must be a plain value, not a list or a map"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(GraphFileError) as caught:
        load_document(tmp_path / "missing.yaml")
    assert str(caught.value) == (
        f"{tmp_path / 'missing.yaml'}:1:1: error: cannot read the file: No such file or directory"
    )
