"""Schema errors in words a user can act on: each at the key or the value at
fault, naming its runner, input, node or output, with "did you mean" hints."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.compiling._spec import parse_document
from orchestrator.compiling._validation import did_you_mean, owner, validate_document

HEAD = "apiVersion: graphctl/v1\nkind: Graph\nmetadata: {name: g}\nspec:\n"
ONE_NODE = "  nodes:\n    a: {function: m:f}\n  outputs: {o: $a}\n"


def _problems(text: str) -> tuple[list[tuple[int, int, str]], set[Any]]:
    diagnostics, bad = validate_document(parse_document(text, "g.yaml"))
    assert all(d.file == "g.yaml" and d.severity == "error" for d in diagnostics)
    return [(d.line, d.column, d.message) for d in diagnostics], bad


@pytest.mark.parametrize(
    ("body", "line", "column", "message"),
    [
        (
            "  nodes:\n    a: {function: m:f, argz: {}}\n  outputs: {o: $a}\n",
            6,
            24,
            "node 'a': unknown key 'argz' (did you mean 'args'?)",
        ),
        (
            "  nodes:\n    a: {function: m:f, runner: r, method: p}\n  outputs: {o: $a}\n",
            6,
            5,
            "node 'a' has both `runner` and `function`: "
            "use exactly one of `runner`, `function`, `switch`, `coalesce`",
        ),
        (
            "  nodes:\n    a: {args: {}}\n  outputs: {o: $a}\n",
            6,
            5,
            "node 'a' needs one of `runner`, `function`, `switch`, `coalesce`",
        ),
        (
            "  inputs:\n    x: {tensor: {dtype: float31, shape: [3]}}\n" + ONE_NODE,
            6,
            25,
            "input 'x': `tensor.dtype`: 'float31' is not one of 'bool', 'int8', 'int16', "
            "'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16', 'float32', "
            "'float64' (did you mean 'float32'?)",
        ),
        (
            "  runners:\n    r: {runnable: m:C, workers: 0}\n"
            "  nodes:\n    a: {runner: r, method: p}\n  outputs: {o: $a}\n",
            6,
            33,
            "runner 'r': `workers`: 0 is less than the minimum of 1",
        ),
        (
            "  nodes:\n    a: {function: mf}\n  outputs: {o: $a}\n",
            6,
            19,
            "node 'a': `function`: 'mf' must be written `module:name`",
        ),
        (
            "  nodes:\n    a: {function: m:f, timeout_ms: fast}\n  outputs: {o: $a}\n",
            6,
            36,
            "node 'a': `timeout_ms` must be a number, got 'fast'",
        ),
        (
            "  nodes:\n    a: {function: m:f, on_error: skipp}\n  outputs: {o: $a}\n",
            6,
            34,
            "node 'a': `on_error` must be 'fail' or 'skip' or a map, got 'skipp'",
        ),
        (
            "  nodes:\n    a: {function: m:f}\n  outputs: {o: a}\n",
            7,
            16,
            "output 'o': 'a' must be a reference like `$node`, `$node.field` or `$inputs.name`",
        ),
        ("  nodes:\n    a: {function: m:f}\n", 4, 1, "spec: missing required key 'outputs'"),
    ],
)
def test_one_mistake_one_message_at_its_place(
    body: str, line: int, column: int, message: str
) -> None:
    problems, _ = _problems(HEAD + body)
    assert problems == [(line, column, message)]


def test_a_misnamed_node_is_reported_at_its_name_and_where_it_is_used() -> None:
    problems, bad = _problems(HEAD + "  nodes:\n    1a: {function: m:f}\n  outputs: {o: $1a}\n")
    assert problems == [
        (
            6,
            5,
            "node name '1a' must be a name of letters, digits, `_` and `-`, "
            "not starting with a digit",
        ),
        (
            7,
            16,
            "output 'o': '$1a' must be a reference like `$node`, `$node.field` or `$inputs.name`",
        ),
    ]
    assert bad == {("spec", "nodes", "1a"), ("spec", "outputs", "o")}


def test_the_header_is_checked_too() -> None:
    text = HEAD.replace("graphctl/v1", "graphctl/v2") + ONE_NODE
    problems, bad = _problems(text)
    assert problems == [(1, 13, "apiVersion must be 'graphctl/v1', got 'graphctl/v2'")]
    assert bad == {("apiVersion",)}


def test_every_mistake_is_reported_in_file_order() -> None:
    body = (
        "  nodes:\n"
        "    a: {function: m:f, timeout_ms: fast}\n"
        "    b: {args: {}}\n"
        "  outputs: {o: $a}\n"
    )
    problems, bad = _problems(HEAD + body)
    assert [(line, column) for line, column, _ in problems] == [(6, 36), (7, 5)]
    assert bad == {("spec", "nodes", "a", "timeout_ms"), ("spec", "nodes", "b")}


def test_a_valid_document_has_no_problems() -> None:
    assert _problems(HEAD + ONE_NODE) == ([], set())


@pytest.mark.parametrize(
    ("word", "choices", "hint"),
    [
        ("argz", ["args", "when"], " (did you mean 'args'?)"),
        ("xyz", ["args", "when"], ""),
        ("predict", [], ""),
        (3, [3, 4], " (did you mean '3'?)"),
        ("runer", ["runner", "runners"], " (did you mean 'runner'?)"),
    ],
)
def test_did_you_mean(word: object, choices: list[object], hint: str) -> None:
    assert did_you_mean(word, choices) == hint


@pytest.mark.parametrize(
    ("path", "who"),
    [
        (("spec", "nodes", "a", "args"), "node 'a'"),
        (("spec", "runners", "r"), "runner 'r'"),
        (("spec", "inputs", "x", "tensor", "dtype"), "input 'x'"),
        (("spec", "outputs", "o"), "output 'o'"),
        (("spec", "nodes"), "spec.nodes"),
        (("spec", "timeout_ms"), "spec.timeout_ms"),
        ((), "the graph file"),
    ],
)
def test_owner_names_what_a_path_belongs_to(path: tuple[Any, ...], who: str) -> None:
    assert owner(path) == who
