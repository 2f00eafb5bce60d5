"""Model references and stored method signatures: what parses, what is refused,
and the message the user reads."""

from __future__ import annotations

from typing import Any

import pytest

from runners.errors import ModelError
from runners.models.refs import LATEST, ModelRef, Signature, parse_ref, parse_signatures


@pytest.mark.parametrize(
    ("text", "name", "version"),
    [
        ("digits", "digits", LATEST),
        ("digits:latest", "digits", LATEST),
        ("digits:", "digits", LATEST),
        ("  digits:3  ", "digits", "3"),
        ("my.model-v2:20250101T000000-ab12cd", "my.model-v2", "20250101T000000-ab12cd"),
        ("a:" + "v" * 128, "a", "v" * 128),
    ],
)
def test_references_parse(text: str, name: str, version: str) -> None:
    ref = parse_ref(text)
    assert (ref.name, ref.version) == (name, version)
    assert str(ref) == f"{name}:{version}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid model name ''"),
        (":3", "invalid model name ''"),
        ("-lead", "invalid model name '-lead'"),
        ("has space", "invalid model name 'has space'"),
        ("../escape", "invalid model name '../escape'"),
        ("n" * 129, "invalid model name"),
        ("ok:bad/version", "invalid model version 'bad/version' of 'ok'"),
        ("ok:a:b", "invalid model version 'a:b' of 'ok'"),
        ("ok:" + "v" * 129, "invalid model version"),
    ],
)
def test_invalid_references_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_ref(text)
    assert message in str(info.value)


def test_refs_are_values() -> None:
    assert ModelRef("a") == parse_ref("a:latest")
    assert len({ModelRef("a", "1"), parse_ref("a:1")}) == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"predict": None}, {"predict": Signature()}),
        ({"predict": {}}, {"predict": Signature()}),
        (
            {"predict": {"batchable": True, "batch_dim": 1}, "embed": {"stack": True}},
            {"predict": Signature(True, 1), "embed": Signature(stack=True)},
        ),
        ({"p": Signature(True, 2, True)}, {"p": Signature(True, 2, True)}),
        ({7: None}, {"7": Signature()}),
    ],
)
def test_signatures_parse(raw: Any, expected: dict[str, Signature]) -> None:
    assert parse_signatures(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "signatures must map at least one method name"),
        (["predict"], "signatures must map at least one method name"),
        ({"p": [1]}, "signature of 'p' must be a mapping, got list"),
        ({"p": {"batch": True}}, "signature of 'p': unknown keys ['batch']"),
        ({"p": {"batchable": "yes"}}, "batchable and stack must be true/false"),
        ({"p": {"stack": 1}}, "batchable and stack must be true/false"),
        ({"p": {"batch_dim": -1}}, "batch_dim must be an int >= 0"),
        ({"p": {"batch_dim": 1.0}}, "batch_dim must be an int >= 0"),
    ],
)
def test_bad_signatures_say_which_method_and_why(raw: Any, message: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_signatures(raw)
    assert message in str(info.value)


@pytest.mark.parametrize("signature", [Signature(), Signature(True, 3, True), Signature(True)])
def test_signature_round_trips_through_its_dict(signature: Signature) -> None:
    assert parse_signatures({"m": signature.to_dict()}) == {"m": signature}
