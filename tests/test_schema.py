"""``schemas/graph.schema.json`` agrees with the loader, the compiler and the docs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orchestrator import GraphFileError, compile_file
from orchestrator._tensors import DTYPES
from orchestrator.compiling._spec import load_document
from orchestrator.compiling._validation import graph_schema, validate_document

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(
    path
    for folder in ("graphs", "tests/graphs", "bench/graphs")
    for path in (ROOT / folder).rglob("*.yaml")
    if "broken" not in path.parts
)
# Graphs with `model:` runners compile once their model is stored (the store's tests).
COMPILABLE = [p for p in EXAMPLES if not re.search(r"^\s+model:", p.read_text(), re.MULTILINE)]
BROKEN = sorted((ROOT / "graphs" / "broken").glob("*.yaml"))


def _keys(schema: Any) -> Iterator[tuple[str, Any]]:
    """Every property name the schema declares, with its subschema."""
    if isinstance(schema, dict):
        yield from schema.get("properties", {}).items()
        for value in schema.values():
            yield from _keys(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _keys(value)


def test_the_packaged_schema_is_the_editors_schema() -> None:
    # An installed graphctl reads orchestrator/graph.schema.json; editors read
    # schemas/graph.schema.json. Edit one, copy it over the other.
    packaged = (ROOT / "orchestrator" / "graph.schema.json").read_bytes()
    assert packaged == (ROOT / "schemas" / "graph.schema.json").read_bytes()


def test_schema_is_valid_draft_07() -> None:
    schema = graph_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


def test_every_declared_key_has_a_description() -> None:
    undocumented = {name for name, sub in _keys(graph_schema()) if sub and "description" not in sub}
    # Inside an input's tensor branch the keys only restate those described above.
    assert undocumented <= {"tensor", "required", "description"}


def test_every_key_of_the_schema_is_in_the_reference_doc() -> None:
    doc = (ROOT / "docs" / "graph-file.md").read_text()
    names = {name for name, _ in _keys(graph_schema())}
    missing = sorted(n for n in names if not re.search(rf"(`|\b){re.escape(n)}(`|:)", doc))
    assert missing == []


def test_dtype_names_agree_with_the_compiler() -> None:
    assert tuple(graph_schema()["definitions"]["tensor"]["properties"]["dtype"]["enum"]) == DTYPES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_graph_matches_the_schema(path: Path) -> None:
    doc = load_document(path)
    assert doc.problems == ()
    assert validate_document(doc)[0] == []


@pytest.mark.parametrize("path", COMPILABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_graph_compiles(path: Path) -> None:
    assert compile_file(path).nodes


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_every_broken_graph_is_rejected(path: Path) -> None:
    with pytest.raises(GraphFileError) as caught:
        compile_file(path)
    assert caught.value.errors
