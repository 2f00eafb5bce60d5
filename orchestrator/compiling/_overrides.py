"""Deploy-time runner overrides: a ``--config prod.yaml`` file and ``--set`` strings.

    plan = apply_overrides(compile_file("graph.yaml"), "prod.yaml",
                           sets=["runners.mlp_a.workers=4"])

The file names runners of the graph and the settings to change::

    runners:
      mlp_a:
        workers: 4
        batching: {max_batch_size: 64}
        methods: {predict: {max_latency_ms: 200}}
        max_queue: 1000
        resources: {cpu: 2}
        env: {OMP_NUM_THREADS: "2"}

``--set runners.NAME.KEY[.SUB]=VALUE`` (VALUE is read as YAML) is applied after
the file, in order. Everything is validated against the graph: an unknown
runner, key or method, or a bad value, is a ``GraphFileError`` listing every
problem as ``FILE:LINE:COL`` (``--set:1:COL`` for a ``--set`` string).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from orchestrator.compiling._runner_settings import (
    SETTINGS_KEYS,
    Problem,
    config_to_dict,
    merge_settings,
)
from orchestrator.compiling._spec import SpecDocument, load_document
from orchestrator.errors import Diagnostic, GraphFileError
from orchestrator.plan import Plan
from runners.config import RunnerConfig

SET_FILE = "--set"
_TOP_KEYS = ("apiVersion", "kind", "runners")


def apply_overrides(
    plan: Plan,
    config_path: str | os.PathLike[str] | None = None,
    sets: Sequence[str] = (),
) -> Plan:
    """``plan`` with its runners' settings replaced; ``GraphFileError`` lists all problems."""
    if config_path is None and not sets:
        return plan
    runners = dict(plan.runners)
    diagnostics: list[Diagnostic] = []
    if config_path is not None:
        diagnostics += _apply_file(plan, runners, load_document(os.fspath(config_path)))
    for text in sets:
        diagnostics += _apply_set(plan, runners, text)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise GraphFileError(errors)
    return dataclasses.replace(plan, runners=runners)


def _known_methods(plan: Plan, runner: str) -> set[str]:
    used = {n.method for n in plan.nodes.values() if n.runner == runner and n.method}
    return used | set(plan.runners[runner].methods)


def _unknown_runner(plan: Plan, name: str) -> str:
    close = difflib.get_close_matches(name, list(plan.runners), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(sorted(plan.runners)) or "none"
    return f"graph {plan.name!r} has no runner {name!r}{hint} (runners: {known})"


def _merge(
    plan: Plan, runners: dict[str, RunnerConfig], name: str, raw: Mapping[str, Any]
) -> list[Problem]:
    merged, problems = merge_settings(runners[name], raw, known_methods=_known_methods(plan, name))
    if not problems:
        runners[name] = merged
    return problems


# --- the file ---------------------------------------------------------------------------


def _apply_file(
    plan: Plan, runners: dict[str, RunnerConfig], doc: SpecDocument
) -> list[Diagnostic]:
    diagnostics = list(doc.problems)
    data = doc.data
    if not isinstance(data, Mapping):
        return [*diagnostics, _at(doc, (), "an overrides file must be a mapping with 'runners'")]
    for key in data:
        if key not in _TOP_KEYS:
            diagnostics.append(
                _at(doc, (key,), f"unknown key {key!r}; expected: {', '.join(_TOP_KEYS)}", True)
            )
    section = data.get("runners", {})
    if not isinstance(section, Mapping):
        return [*diagnostics, _at(doc, ("runners",), "'runners' must map runner names to settings")]
    for name, raw in section.items():
        where = ("runners", name)
        if name not in runners:
            diagnostics.append(_at(doc, where, _unknown_runner(plan, str(name)), True))
        elif not isinstance(raw, Mapping):
            diagnostics.append(_at(doc, where, "runner settings must be a mapping"))
        else:
            for problem in _merge(plan, runners, name, raw):
                diagnostics.append(
                    _at(
                        doc,
                        where + problem.path,
                        f"runner {name!r}: {problem.message}",
                        problem.on_key,
                    )
                )
    return diagnostics


def _at(doc: SpecDocument, path: tuple[Any, ...], message: str, on_key: bool = False) -> Diagnostic:
    loc = doc.key_at(path) if on_key else doc.value_at(path)
    return Diagnostic(loc.file, loc.line, loc.column, message)


# --- --set strings ----------------------------------------------------------------------


def _segments(key: str) -> list[tuple[str, int]]:
    """``runners.a.workers`` → [("runners", 1), ("a", 9), ("workers", 11)] (1-based columns)."""
    found, column = [], 1
    for part in key.split("."):
        found.append((part, column))
        column += len(part) + 1
    return found


def _apply_set(plan: Plan, runners: dict[str, RunnerConfig], text: str) -> list[Diagnostic]:
    key, sep, value_text = text.partition("=")
    parts = _segments(key.strip())
    value_column = len(key) + 2

    def error(column: int, message: str) -> list[Diagnostic]:
        return [Diagnostic(SET_FILE, 1, column, f"{message} (in --set {text!r})")]

    if not sep or len(parts) < 3 or parts[0][0] != "runners" or not all(p for p, _ in parts):
        return error(1, "expected runners.NAME.KEY=VALUE")
    name, name_column = parts[1]
    if name not in runners:
        return error(name_column, _unknown_runner(plan, name))
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError:
        return error(value_column, f"cannot read the value {value_text!r} as YAML")
    raw: Any = value
    for part, _ in reversed(parts[2:]):
        raw = {part: raw}
    return [
        _set_problem(text, parts, value_column, problem, name)
        for problem in _merge(plan, runners, name, raw)
    ]


def _set_problem(
    text: str, parts: Sequence[tuple[str, int]], value_column: int, problem: Problem, name: str
) -> Diagnostic:
    depth = 2 + len(problem.path) - 1  # index of the problem's key among the segments
    column = parts[depth][1] if problem.on_key and depth < len(parts) else value_column
    return Diagnostic(
        SET_FILE, 1, column, f"runner {name!r}: {problem.message} (in --set {text!r})"
    )


def effective_runners(plan: Plan) -> dict[str, dict[str, Any]]:
    """Every runner's effective settings, as plain data (``graphctl config``)."""
    return {name: config_to_dict(config) for name, config in plan.runners.items()}


def settings_document(plan: Plan) -> dict[str, Any]:
    """An overrides file (``--config``) that sets every runner to its effective
    settings: applied to the graph file, it gives ``plan``'s runners back. What a
    runner leaves to its ``@method`` declarations (``null``) is left out, and so are
    empty ``endpoints``."""
    runners = {}
    for name, settings in effective_runners(plan).items():
        kept = {key: settings[key] for key in SETTINGS_KEYS}
        kept["batching"] = _without_nulls(kept["batching"])
        kept["methods"] = {m: _without_nulls(b) for m, b in kept["methods"].items()}
        if not kept["endpoints"]:  # local workers: the default, and a worker host's view
            del kept["endpoints"]
        runners[name] = kept
    return {"runners": runners}


def _without_nulls(batching: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in batching.items() if value is not None}
