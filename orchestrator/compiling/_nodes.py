"""Compile one entry of ``spec.nodes`` into a ``NodePlan`` draft: its form (runner
call, function call, switch, coalesce), its policies, and every reference it reads.

Whether those references lead anywhere, and the gates a switch puts on its
branches, are settled by the compiler once every node is known.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.compiling._context import CompileContext, spec_path
from orchestrator.compiling._imports import ArgProblems, ImportFailure, check_arguments
from orchestrator.compiling._references import (
    Collected,
    RefSite,
    compile_condition,
    compile_template,
)
from orchestrator.compiling._runners import CompiledRunner
from orchestrator.compiling._spec import DataPath
from orchestrator.compiling._validation import did_you_mean
from orchestrator.plan import INPUTS, ITEM, NodeKind, NodePlan, OnError, RetryPolicy

# Keys that only make sense on a node that calls something.
_CALL_ONLY = ("args", "timeout_ms", "retries", "on_error", "map")


@dataclass
class NodeDraft:
    """A node before linking: its plan, the references it reads, and for a switch,
    the nodes each case routes to (name → [(case key, where it is listed)])."""

    plan: NodePlan
    sites: list[RefSite]
    branches: dict[str, list[tuple[Any, DataPath]]] = field(default_factory=dict)


def _retries(data: Any) -> RetryPolicy:
    if isinstance(data, dict):
        return RetryPolicy(**data)
    return RetryPolicy(count=int(data or 0))


def _on_error(data: Any) -> OnError:
    if isinstance(data, dict):
        return OnError(mode="default", default=data.get("default"))
    return OnError(mode="skip" if data == "skip" else "fail")


def _report_args(
    ctx: CompileContext, name: str, target: str, problems: ArgProblems, has_args: bool
) -> None:
    for missing in problems.missing:
        where = spec_path("nodes", name, "args") if has_args else spec_path("nodes", name)
        ctx.error_at(where, f"node {name!r}: missing argument {missing!r} of {target}", on_key=True)
    for unknown, hint in problems.unknown:
        ctx.error_at(
            spec_path("nodes", name, "args", unknown),
            f"node {name!r}: {target} takes no argument {unknown!r}{hint}",
            on_key=True,
        )


def _check_runner_call(
    ctx: CompileContext,
    name: str,
    data: Mapping[str, Any],
    runners: Mapping[str, CompiledRunner],
    declared: Mapping[str, Any],
) -> None:
    runner_name, method = data["runner"], data["method"]
    if runner_name not in declared:
        ctx.error_at(
            spec_path("nodes", name, "runner"),
            f"node {name!r}: unknown runner "
            f"{runner_name!r}" + did_you_mean(runner_name, list(declared)),
        )
        return
    runner = runners.get(runner_name)
    if runner is None or runner.cls is None or runner.methods is None:
        return  # the runner's own faults are already reported
    target = f"{runner.config.runnable}.{method}"
    if method not in runner.methods:
        marked = callable(getattr(runner.cls, method, None))
        if runner.model is not None:
            reason = (
                f"model {runner.model!r} was not saved with a {method!r} signature"
                f" (saved: {', '.join(sorted(runner.methods)) or 'none'})"
            )
        elif marked:
            reason = f"{target} is not a runner method: decorate it with @method"
        else:
            reason = f"{runner.config.runnable} has no @method {method!r}" + did_you_mean(
                method, list(runner.methods)
            )
        ctx.error_at(spec_path("nodes", name, "method"), f"node {name!r}: {reason}")
        return
    problems = check_arguments(
        getattr(runner.cls, method), list(data.get("args") or {}), bound=True
    )
    _report_args(ctx, name, target, problems, "args" in data)


def _import_function(
    ctx: CompileContext, name: str, data: Mapping[str, Any]
) -> Callable[..., Any] | None:
    target = str(data["function"])
    try:
        func = ctx.import_object(target)
    except ImportFailure as error:
        ctx.error_at(spec_path("nodes", name, "function"), f"node {name!r}: {error}")
        return None
    if not callable(func):
        ctx.error_at(
            spec_path("nodes", name, "function"), f"node {name!r}: {target!r} is not a function"
        )
        return None
    problems = check_arguments(func, list(data.get("args") or {}))
    _report_args(ctx, name, target, problems, "args" in data)
    return func  # type: ignore[no-any-return]


def _branches(data: Mapping[str, Any], path: DataPath) -> dict[str, list[tuple[Any, DataPath]]]:
    routes: dict[str, list[tuple[Any, DataPath]]] = {}
    listed = [(key, names, (*path, "cases", key)) for key, names in data["cases"].items()]
    if "default" in data:
        listed.append((None, data["default"], (*path, "default")))
    for key, names, where in listed:
        for i, node in enumerate(names):
            routes.setdefault(str(node), []).append((key, (*where, i)))
    return routes


def _item_outside_args(ctx: CompileContext, name: str, found: Collected, start: int) -> None:
    for site in found.sites[start:]:
        if site.ref.source == ITEM:
            ctx.error_at(
                site.path,
                f"node {name!r}: `$item` is only valid inside the `args` of a node with `map`",
            )


def compile_node(
    ctx: CompileContext,
    name: str,
    data: Mapping[str, Any],
    runners: Mapping[str, CompiledRunner],
    declared_runners: Mapping[str, Any],
) -> NodeDraft | None:
    """The draft of one node, or ``None`` if the schema already found it faulty."""
    path = spec_path("nodes", name)
    if ctx.faulty(path):
        return None
    if name in (INPUTS, ITEM):
        ctx.error_at(path, f"node name {name!r} is reserved for references", on_key=True)
        return None
    found = Collected()
    kind: NodeKind
    extra: dict[str, Any] = {}
    args = compile_template(data.get("args") or {}, (*path, "args"), found)
    if "map" not in data:
        _item_outside_args(ctx, name, found, 0)
    after_args = len(found.sites)
    draft_branches: dict[str, list[tuple[Any, DataPath]]] = {}
    for key in ("inline", "each_chunk"):
        if key in data and "function" not in data:
            message = f"node {name!r}: `{key}` applies only to function nodes"
            ctx.error_at((*path, key), message, on_key=True)
    if "runner" in data:
        kind = "runner"
        extra = {"runner": str(data["runner"]), "method": str(data["method"])}
        _check_runner_call(ctx, name, data, runners, declared_runners)
    elif "function" in data:
        kind = "function"
        func = _import_function(ctx, name, data)
        extra = {
            "function": str(data["function"]),
            "func": func,
            "is_async": func is not None and inspect.iscoroutinefunction(func),
            "inline": bool(data.get("inline", False)),
            "each_chunk": data.get("each_chunk"),
        }
    else:
        kind = "switch" if "switch" in data else "coalesce"
        for key in _CALL_ONLY:
            if key in data:
                ctx.error_at(
                    (*path, key),
                    f"node {name!r}: `{key}` applies only to runner and function nodes",
                    on_key=True,
                )
        if kind == "switch":
            args = {"value": found.ref(data["switch"], (*path, "switch"))}
            extra = {"cases": tuple(data["cases"])}
            draft_branches = _branches(data, path)
        else:
            args = {
                "values": [
                    found.ref(r, (*path, "coalesce", i)) for i, r in enumerate(data["coalesce"])
                ]
            }
    map_ref = found.ref(data["map"], (*path, "map")) if "map" in data else None
    when = compile_condition(data.get("when"), (*path, "when"), found)
    _item_outside_args(ctx, name, found, after_args)
    for where, problem in found.problems:
        ctx.error_at(where, f"node {name!r}: {problem}")
    skipped_input: Literal["skip", "null"] = (
        "skip" if data.get("on_skipped_input", "skip") == "skip" else "null"
    )
    plan = NodePlan(
        name=name,
        kind=kind,
        location=ctx.key(path),
        args=args,
        when=when,
        map=map_ref,
        timeout_ms=data.get("timeout_ms"),
        retries=_retries(data.get("retries")),
        on_error=_on_error(data.get("on_error", "fail")),
        on_skipped_input=skipped_input,
        **extra,
    )
    return NodeDraft(plan, found.sites, draft_branches)
