"""Compiling one entry of ``spec.nodes`` (``orchestrator.compiling._nodes``): the
NodePlan each form becomes (function, runner call, switch, coalesce, map), its
policies, and each problem with its words, checked against real user code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.compiling._context import CompileContext
from orchestrator.compiling._nodes import NodeDraft, compile_node
from orchestrator.compiling._runners import compile_runners
from orchestrator.compiling._spec import parse_document
from orchestrator.plan import Compare, OnError, Ref, RetryPolicy

MODULE = "gc_node_code"
CODE = """
from runners import Runnable, method

def double(x):
    return 2 * x

async def fetch(url, *, retries=1):
    return url

NOT_CALLABLE = 3

class Model(Runnable):
    @method(batchable=True)
    def predict(self, x, *, temperature=1.0):
        return x

    def helper(self, x):
        return x
"""
RUNNERS = {"model": {"runnable": f"{MODULE}:Model"}}


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / f"{MODULE}.py").write_text(CODE)
    yield tmp_path
    sys.modules.pop(MODULE, None)


def _compile(folder: Path, name: str, node: dict[str, Any]) -> tuple[NodeDraft | None, list[str]]:
    text = yaml.safe_dump({"spec": {"runners": RUNNERS, "nodes": {name: node}}}, sort_keys=False)
    context = CompileContext(parse_document(text.replace("MOD", MODULE), "g.yaml"), folder)
    spec = context.doc.data["spec"]
    runners = compile_runners(context, spec["runners"])
    draft = compile_node(context, name, spec["nodes"][name], runners, spec["runners"])
    return draft, [d.message for d in context.diagnostics]


def test_a_function_node(folder: Path) -> None:
    draft, problems = _compile(
        folder,
        "twice",
        {"function": "MOD:double", "args": {"x": "$inputs.x"}, "inline": True, "timeout_ms": 50},
    )
    assert problems == [] and draft is not None
    plan = draft.plan
    assert (plan.kind, plan.function, plan.inline, plan.is_async) == (
        "function", f"{MODULE}:double", True, False,
    )  # fmt: skip
    assert plan.func is not None and plan.func(4) == 8
    assert plan.args == {"x": Ref("inputs", ("x",), "$inputs.x")}
    assert plan.timeout_ms == 50 and (plan.location.line, plan.location.column) == (6, 5)
    assert [site.ref.text for site in draft.sites] == ["$inputs.x"]


def test_an_async_function_is_known_as_such(folder: Path) -> None:
    draft, problems = _compile(folder, "get", {"function": "MOD:fetch", "args": {"url": "u"}})
    assert problems == [] and draft is not None and draft.plan.is_async


def test_a_runner_call_with_policies(folder: Path) -> None:
    draft, problems = _compile(
        folder,
        "score",
        {
            "runner": "model",
            "method": "predict",
            "args": {"x": "$pre"},
            "retries": {"count": 2, "backoff_ms": 10},
            "on_error": {"default": [0]},
            "on_skipped_input": "null",
            "when": {"ref": "$gate", "eq": True},
        },
    )
    assert problems == [] and draft is not None
    plan = draft.plan
    assert (plan.kind, plan.runner, plan.method) == ("runner", "model", "predict")
    assert plan.retries == RetryPolicy(count=2, backoff_ms=10)
    assert plan.on_error == OnError(mode="default", default=[0])
    assert plan.on_skipped_input == "null"
    assert plan.when == Compare(Ref("gate", (), "$gate"), "eq", True)


@pytest.mark.parametrize(
    ("retries", "on_error", "policy", "mode"),
    [(None, "skip", RetryPolicy(), "skip"), (3, "fail", RetryPolicy(count=3), "fail")],
)
def test_short_forms_of_the_policies(
    folder: Path, retries: int | None, on_error: str, policy: RetryPolicy, mode: str
) -> None:
    node: dict[str, Any] = {"function": "MOD:double", "args": {"x": 1}, "on_error": on_error}
    if retries is not None:
        node["retries"] = retries
    draft, _ = _compile(folder, "n", node)
    assert draft is not None
    assert draft.plan.retries == policy and draft.plan.on_error.mode == mode


def test_a_switch_lists_the_branches_of_each_case(folder: Path) -> None:
    draft, problems = _compile(
        folder,
        "route",
        {
            "switch": "$kind.label",
            "cases": {"cat": ["meow"], "dog": ["woof", "meow"]},
            "default": ["hm"],
        },
    )
    assert problems == [] and draft is not None
    assert draft.plan.kind == "switch" and draft.plan.cases == ("cat", "dog")
    assert draft.plan.args == {"value": Ref("kind", ("label",), "$kind.label")}
    assert {name: [key for key, _ in routes] for name, routes in draft.branches.items()} == {
        "meow": ["cat", "dog"],
        "woof": ["dog"],
        "hm": [None],
    }


def test_a_coalesce_reads_its_references_in_order(folder: Path) -> None:
    draft, problems = _compile(folder, "first", {"coalesce": ["$a", "$b.x"]})
    assert problems == [] and draft is not None
    assert draft.plan.args == {"values": [Ref("a", (), "$a"), Ref("b", ("x",), "$b.x")]}


def test_a_map_node_may_read_item_in_its_args(folder: Path) -> None:
    draft, problems = _compile(
        folder, "each", {"function": "MOD:double", "map": "$inputs.xs", "args": {"x": "$item"}}
    )
    assert problems == [] and draft is not None
    assert draft.plan.map == Ref("inputs", ("xs",), "$inputs.xs")


@pytest.mark.parametrize(
    ("name", "node", "messages"),
    [
        ("inputs", {"function": "MOD:double"}, ["node name 'inputs' is reserved for references"]),
        (
            "n",
            {"runner": "modle", "method": "predict"},
            ["node 'n': unknown runner 'modle' (did you mean 'model'?)"],
        ),
        (
            "n",
            {"runner": "model", "method": "helper", "args": {"x": 1}},
            ["node 'n': MOD:Model.helper is not a runner method: decorate it with @method"],
        ),
        (
            "n",
            {"runner": "model", "method": "predcit"},
            ["node 'n': MOD:Model has no @method 'predcit' (did you mean 'predict'?)"],
        ),
        (
            "n",
            {"runner": "model", "method": "predict", "args": {"x": 1, "temprature": 2}},
            ["node 'n': MOD:Model.predict takes no argument 'temprature'"
             " (did you mean 'temperature'?)"],
        ),
        (
            "n",
            {"runner": "model", "method": "predict"},
            ["node 'n': missing argument 'x' of MOD:Model.predict"],
        ),
        ("n", {"function": "MOD:NOT_CALLABLE"}, ["node 'n': 'MOD:NOT_CALLABLE' is not a function"]),
        ("n", {"function": "MOD:double"}, ["node 'n': missing argument 'x' of MOD:double"]),
        (
            "n",
            {"function": "MOD:double", "args": {"x": "$item"}},
            ["node 'n': `$item` is only valid inside the `args` of a node with `map`"],
        ),
        (
            "n",
            {"function": "MOD:double", "map": "$xs", "args": {"x": 1},
             "when": {"ref": "$item", "eq": 1}},
            ["node 'n': `$item` is only valid inside the `args` of a node with `map`"],
        ),
        (
            "n",
            {"runner": "model", "method": "predict", "args": {"x": 1}, "inline": True},
            ["node 'n': `inline` applies only to function nodes"],
        ),
        (
            "n",
            {"coalesce": ["$a"], "timeout_ms": 5, "retries": 1},
            ["node 'n': `timeout_ms` applies only to runner and function nodes",
             "node 'n': `retries` applies only to runner and function nodes"],
        ),
        (
            "n",
            {"function": "MOD:double", "args": {"x": "$bad..ref"}},
            ["node 'n': '$bad..ref' is not a valid reference: write `$node`, `$node.field`, "
             "`$inputs.name` or `$item` (and `$$` for a literal `$`)"],
        ),
    ],
)  # fmt: skip
def test_problems_are_named_for_their_node(
    folder: Path, name: str, node: dict[str, Any], messages: list[str]
) -> None:
    _, problems = _compile(folder, name, node)
    assert problems == [m.replace("MOD", MODULE) for m in messages]
