"""Check a parsed graph file against the graph JSON Schema, in words a user
can act on: each jsonschema error becomes a ``Diagnostic`` at the key or value at
fault, naming the runner, input, node or output it belongs to, with a
"did you mean" hint for misspelt keys and values.

The schema ships inside the package (``orchestrator/graph.schema.json``) so an
installed graphctl finds it; ``schemas/graph.schema.json`` is the same file at
the repository root for editors, and a test keeps the two identical.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from orchestrator.compiling._spec import DataPath, SpecDocument
from orchestrator.errors import Diagnostic

SCHEMA_RESOURCE = "graph.schema.json"  # package data of ``orchestrator``

_SECTIONS = {"runners": "runner", "inputs": "input", "nodes": "node", "outputs": "output"}
_TYPE_WORDS = {
    "object": "a map",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@cache
def graph_schema() -> Mapping[str, Any]:
    """The graph file's JSON Schema (draft-07), loaded once."""
    text = resources.files("orchestrator").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: Mapping[str, Any] = json.loads(text)
    return schema


def did_you_mean(word: object, choices: Sequence[object]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or nothing."""
    names = [str(choice) for choice in choices]
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def owner(path: DataPath) -> str:
    """What a path belongs to, for messages: ``node 'a'``, ``runner 'r'``, ``spec``."""
    if len(path) >= 3 and path[0] == "spec" and path[1] in _SECTIONS:
        return f"{_SECTIONS[path[1]]} {path[2]!r}"
    return ".".join(str(step) for step in path) if path else "the graph file"


def _field(path: DataPath) -> str:
    """The key at ``path`` relative to its owner, as `a.b`, or ``""`` for the owner."""
    start = 3 if len(path) >= 3 and path[0] == "spec" and path[1] in _SECTIONS else len(path) - 1
    rest = path[max(start, 0) :]
    return ".".join(str(step) for step in rest)


def _subject(path: DataPath) -> str:
    name = _field(path)
    who = owner(path)
    if not name or who == name:
        return who
    return f"{who}: `{name}`" if " " in who else f"`{'.'.join(str(s) for s in path)}`"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value) if value is None or isinstance(value, bool) else repr(value)


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        resolved: Mapping[str, Any] = graph_schema()["definitions"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def _phrase(schema: Mapping[str, Any]) -> str:
    """A short description of what a (simple) schema accepts."""
    schema = _resolve(schema)
    if "const" in schema:
        return _show(schema["const"])
    if "enum" in schema:
        return " or ".join(_show(v) for v in schema["enum"])
    kinds = schema.get("type") or []
    names = kinds if isinstance(kinds, list) else [kinds]
    words = [_TYPE_WORDS.get(str(k), str(k)) for k in names]
    text = " or ".join(w for w in words if w) or "a value"
    if "minimum" in schema:
        text += f" >= {schema['minimum']}"
    if schema.get("pattern") == graph_schema()["definitions"]["reference"]["pattern"]:
        text = "a reference like `$node`, `$node.field` or `$inputs.name`"
    return text


def _pattern_phrase(pattern: str) -> str:
    definitions = graph_schema()["definitions"]
    for name, words in (
        ("reference", "a reference like `$node`, `$node.field` or `$inputs.name`"),
        ("module_ref", "written `module:name`"),
        ("name", "a name of letters, digits, `_` and `-`, not starting with a digit"),
    ):
        if definitions[name]["pattern"] == pattern:
            return words
    return f"match {pattern!r}"


def _unknown_keys(error: ValidationError, path: DataPath) -> Iterator[tuple[DataPath, str]]:
    known = list(error.schema.get("properties", {}))
    for key in error.instance:
        if key not in known:
            hint = did_you_mean(key, known)
            yield (*path, key), f"{owner(path)}: unknown key {key!r}{hint}"


def _required_only(branches: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The key names if every branch is just ``{required: [KEY]}``."""
    names = []
    for branch in branches:
        if set(branch) != {"required"} or len(branch["required"]) != 1:
            return None
        names.append(branch["required"][0])
    return names


def _one_of(error: ValidationError, path: DataPath) -> Iterator[tuple[DataPath, str]]:
    branches: Sequence[Mapping[str, Any]] = error.validator_value
    keys = _required_only(branches)
    if keys is not None:
        present = [k for k in keys if isinstance(error.instance, dict) and k in error.instance]
        listing = ", ".join(f"`{k}`" for k in keys)
        if present:
            both = " and ".join(f"`{k}`" for k in present)
            yield path, f"{_subject(path)} has both {both}: use exactly one of {listing}"
        else:
            yield path, f"{_subject(path)} needs one of {listing}"
        return
    matching = {e.relative_schema_path[0] for e in error.context} if error.context else set()
    by_type = [
        i
        for i in matching
        if not any(
            e.relative_schema_path[0] == i
            and e.validator in ("type", "const", "enum")
            and tuple(e.absolute_path) == path
            for e in error.context
        )
    ]
    if len(by_type) == 1:
        for sub in error.context:
            if sub.relative_schema_path[0] == by_type[0]:
                yield from describe(sub)
        return
    if len(by_type) > 1:
        yield from describe(best_match(error.context))
        return
    choices = " or ".join(_phrase(branch) for branch in branches)
    yield path, f"{_subject(path)} must be {choices}, got {_show(error.instance)}"


def describe(error: ValidationError) -> Iterator[tuple[DataPath, str]]:
    """The (path, message) pairs one jsonschema error stands for."""
    path: DataPath = tuple(error.absolute_path)
    kind = error.validator
    if "propertyNames" in error.absolute_schema_path:
        what = _SECTIONS.get(path[-1], "key") if path else "key"
        words = _pattern_phrase(error.validator_value) if kind == "pattern" else "a string"
        yield (*path, error.instance), f"{what} name {_show(error.instance)} must be {words}"
    elif kind == "additionalProperties" and error.validator_value is False:
        yield from _unknown_keys(error, path)
    elif kind in ("oneOf", "anyOf"):
        yield from _one_of(error, path)
    elif kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        for key in missing:
            yield path, f"{owner(path)}: missing required key {key!r}"
    elif kind == "const":
        expected, got = _show(error.validator_value), _show(error.instance)
        yield path, f"{_subject(path)} must be {expected}, got {got}"
    elif kind == "enum":
        choices = ", ".join(_show(v) for v in error.validator_value)
        hint = did_you_mean(error.instance, [v for v in error.validator_value if v is not None])
        yield path, f"{_subject(path)}: {_show(error.instance)} is not one of {choices}{hint}"
    elif kind == "type":
        yield path, f"{_subject(path)} must be {_phrase(error.schema)}, got {_show(error.instance)}"
    elif kind == "pattern":
        words = _pattern_phrase(error.validator_value)
        yield path, f"{_subject(path)}: {_show(error.instance)} must be {words}"
    else:
        yield path, f"{_subject(path)}: {error.message}"


def _anchor(doc: SpecDocument, path: DataPath, error: ValidationError) -> tuple[int, int]:
    """Unknown, missing and misnamed keys point at a key; everything else at its value."""
    on_key = (
        error.validator in ("additionalProperties", "required")
        or "propertyNames" in error.absolute_schema_path
        or (error.validator == "oneOf" and _required_only(error.validator_value) is not None)
    )
    where = doc.key_at(path) if on_key and path else doc.value_at(path)
    return where.line, where.column


def validate_document(doc: SpecDocument) -> tuple[list[Diagnostic], set[DataPath]]:
    """Every schema violation of ``doc``, and the set of paths at fault."""
    validator = jsonschema.Draft7Validator(graph_schema())
    found: dict[tuple[int, int, str], Diagnostic] = {}
    bad_paths: set[DataPath] = set()
    for error in validator.iter_errors(doc.data):
        for path, message in describe(error):
            line, column = _anchor(doc, path, error)
            found.setdefault((line, column, message), Diagnostic(doc.file, line, column, message))
            bad_paths.add(path)
    return sorted(found.values(), key=lambda d: (d.line, d.column)), bad_paths
