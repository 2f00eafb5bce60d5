"""``$references`` and conditions: parsed once, at compile time, into plain data.

    parse_ref("$router.label")   # Ref("router", ("label",), "$router.label")
    parse_ref("$ocr.boxes.0")    # Ref("ocr", ("boxes", 0), ...)

In ``args`` any string starting with ``$`` is a reference; ``$$`` escapes a
literal ``$``. Conditions are data (``{ref: $r.label, in: [cat, dog]}``), never code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.compiling._spec import DataPath
from orchestrator.plan import (
    INPUTS,
    ITEM,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    NodePlan,
    Not,
    Ref,
)

COMPARE_OPS = ("eq", "ne", "in", "not_in", "gt", "ge", "lt", "le", "exists")
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_REF = re.compile(rf"\$({_NAME})((?:\.[A-Za-z0-9_-]+)*)")


class ReferenceSyntaxError(ValueError):
    """A string that starts with ``$`` but is not a valid reference."""


def parse_ref(text: str) -> Ref:
    """Parse one reference; raise ``ReferenceSyntaxError`` with a reason."""
    match = _REF.fullmatch(text)
    if match is None:
        raise ReferenceSyntaxError(
            f"{text!r} is not a valid reference: write `$node`, `$node.field`, "
            "`$inputs.name` or `$item` (and `$$` for a literal `$`)"
        )
    source, rest = match.group(1), match.group(2)
    path = tuple(int(step) if step.isdigit() else step for step in rest.split(".")[1:])
    if source == INPUTS and not path:
        raise ReferenceSyntaxError(f"{text!r} names no input: write `$inputs.NAME`")
    return Ref(source=source, path=path, text=text)


@dataclass
class RefSite:
    """One reference found in the file, with the path where it was written."""

    ref: Ref
    path: DataPath


@dataclass
class Collected:
    """What compiling a template or condition found: its references and problems."""

    sites: list[RefSite] = field(default_factory=list)
    problems: list[tuple[DataPath, str]] = field(default_factory=list)

    def ref(self, text: object, path: DataPath) -> Ref | None:
        """Parse ``text`` as a reference at ``path``, recording it or its problem."""
        if not isinstance(text, str):
            self.problems.append((path, f"expected a reference, got {text!r}"))
            return None
        try:
            ref = parse_ref(text)
        except ReferenceSyntaxError as error:
            self.problems.append((path, str(error)))
            return None
        self.sites.append(RefSite(ref, path))
        return ref


def compile_template(value: Any, path: DataPath, found: Collected) -> Any:
    """``args`` data with every ``$ref`` string replaced by a ``Ref`` (``$$x`` → ``$x``)."""
    if isinstance(value, str) and value.startswith("$"):
        if value.startswith("$$"):
            return value[1:]
        return found.ref(value, path)
    if isinstance(value, dict):
        return {key: compile_template(item, (*path, key), found) for key, item in value.items()}
    if isinstance(value, list):
        return [compile_template(item, (*path, i), found) for i, item in enumerate(value)]
    return value


def compile_condition(data: Any, path: DataPath, found: Collected) -> Condition | None:
    """A ``when`` condition as data; ``None`` where the schema already reported a fault."""
    if not isinstance(data, dict):
        return None
    if "ref" in data:
        ref = found.ref(data["ref"], (*path, "ref"))
        ops = [op for op in COMPARE_OPS if op in data]
        if ref is None or len(ops) != 1:
            return None
        value = data[ops[0]]
        return Compare(ref, ops[0], tuple(value) if isinstance(value, list) else value)
    groups: dict[str, Callable[[tuple[Condition, ...]], Condition]] = {
        "all": AllOf,
        "any": AnyOf,
    }
    for key, build in groups.items():
        if isinstance(data.get(key), list):
            parts = [compile_condition(c, (*path, key, i), found) for i, c in enumerate(data[key])]
            if any(part is None for part in parts):
                return None
            return build(tuple(part for part in parts if part is not None))
    if "not" in data:
        inner = compile_condition(data["not"], (*path, "not"), found)
        return Not(inner) if inner is not None else None
    return None


def refs_in_condition(condition: Condition | None) -> list[Ref]:
    """Every reference a condition reads."""
    if condition is None:
        return []
    if isinstance(condition, Compare):
        return [condition.ref]
    if isinstance(condition, Not):
        return refs_in_condition(condition.condition)
    return [ref for part in condition.conditions for ref in refs_in_condition(part)]


def refs_in_template(value: Any) -> list[Ref]:
    """Every reference a compiled template (a node's ``args``) reads, in order."""
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, Mapping):
        return [ref for item in value.values() for ref in refs_in_template(item)]
    if isinstance(value, list | tuple):
        return [ref for item in value for ref in refs_in_template(item)]
    return []


def refs_read_by(node: NodePlan) -> list[Ref]:
    """Every reference ``node`` reads: its arguments, its ``when`` and its ``map``."""
    read = [*refs_in_template(node.args), *refs_in_condition(node.when)]
    return [*read, node.map] if node.map is not None else read


def is_node_ref(ref: Ref) -> bool:
    """Whether ``ref`` reads a node's output (not a graph input, not ``$item``)."""
    return ref.source not in (INPUTS, ITEM)
