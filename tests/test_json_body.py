"""Request bodies as JSON: depth-limited, strict about non-JSON constants."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import RequestError
from orchestrator.server._json_body import MAX_JSON_DEPTH, dumps, loads, nesting_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [(b"3", 0), (b"[1, [2, {}]]", 3), (b'{"a": "[[[["}', 1), (b'["\\"[[", [1]]', 2)],
)
def test_nesting_depth_ignores_brackets_inside_strings(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_loads_parses_within_the_depth_limit() -> None:
    deep = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads(deep) is not None
    assert loads(b'{"x": [1.5, 2]}') == {"x": [1.5, 2]}


def test_loads_refuses_deeper_nesting_and_non_json() -> None:
    too_deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(RequestError, match=f"deeper than {MAX_JSON_DEPTH}"):
        loads(too_deep)
    for text in ("[NaN]", "{not json", "[Infinity]"):
        with pytest.raises(RequestError):
            loads(text)


@pytest.mark.parametrize("text", ["123456789012345678901", '{"id": 18446744073709551616}'])
def test_integers_past_64_bits_are_read_exactly(text: str) -> None:
    assert loads(text) == json.loads(text)


def test_a_long_run_of_digits_still_refuses_nan() -> None:
    with pytest.raises(RequestError, match="not valid JSON"):
        loads('{"id": 123456789012345678901, "x": NaN}')


def test_answers_write_integers_past_64_bits_and_nan_as_null() -> None:
    assert (
        dumps({"n": 2**70, "x": [1.5, float("nan")]})
        == b'{"n":1180591620717411303424,"x":[1.5,null]}'
    )
    assert dumps({"x": [float("inf"), 2]}) == b'{"x":[null,2]}'
