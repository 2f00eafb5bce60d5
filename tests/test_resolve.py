"""Reference resolution at run time: selection, skipped values, template rendering."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from orchestrator.errors import ReferenceFailed
from orchestrator.plan import Ref
from orchestrator.running._resolve import (
    SKIPPED,
    SkippedInput,
    lookup,
    render,
    render_kwargs,
    select,
)


@dataclass
class Box:
    label: str


def test_select_follows_keys_indexes_and_attributes() -> None:
    value = {"items": [Box("cat"), Box("dog")]}
    assert select(value, ("items", 1, "label")) == "dog"
    assert select(value, ("items", "-1", "label")) == "dog"  # an index written as text
    assert select(value, ()) is value


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("missing",), r"\$r: no key 'missing' \(keys: 'items'\)"),
        (("items", 5), r"\$r: index 5 out of range"),
        (("items", 0, "colour"), r"\$r: a Box value has no field 'colour'"),
    ],
)
def test_a_path_the_value_lacks_names_the_reference(
    path: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ReferenceFailed, match=message):
        select({"items": [Box("cat")]}, path, "$r")


def test_lookup_of_a_skipped_node_is_the_skipped_marker() -> None:
    values = {"a": SKIPPED, "inputs": {"x": 3}}
    assert lookup(Ref("a", ("field",)), values) is SKIPPED
    assert lookup(Ref("inputs", ("x",)), values) == 3
    assert not SKIPPED and repr(SKIPPED) == "SKIPPED"


def test_render_rebuilds_literals_and_passes_values_by_reference() -> None:
    big = list(range(1000))
    values = {"a": big, "inputs": {"x": 1}}
    template = {"data": Ref("a"), "pair": (Ref("inputs", ("x",)), 2), "flag": True}
    rendered = render(template, values)
    assert rendered == {"data": big, "pair": [1, 2], "flag": True}
    assert rendered["data"] is big  # no copy of a referenced value


def test_a_skipped_reference_skips_the_node_or_becomes_none() -> None:
    values = {"a": SKIPPED}
    with pytest.raises(SkippedInput, match=r"\$a"):
        render_kwargs({"x": Ref("a", (), "$a")}, values)
    assert render_kwargs({"x": [Ref("a")]}, values, skipped_as_none=True) == {"x": [None]}
