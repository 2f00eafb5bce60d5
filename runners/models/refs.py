"""Model references (``name:version``) and method signatures: plain validated values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runners.errors import ModelError

LATEST = "latest"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ModelRef:
    """``name:version``; ``version`` is ``latest`` until resolved against a store."""

    name: str
    version: str = LATEST

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ModelError(
                f"invalid model name {self.name!r}: use letters, digits, '_', '-' or '.'"
            )
        if not _NAME.match(self.version):
            raise ModelError(f"invalid model version {self.version!r} of {self.name!r}")

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


def parse_ref(text: str) -> ModelRef:
    """``digits``, ``digits:latest`` or ``digits:20250101T...-ab12cd``."""
    name, _, version = text.strip().partition(":")
    return ModelRef(name, version or LATEST)


@dataclass(frozen=True)
class Signature:
    """How one stored method is called: batched along ``batch_dim``, or one at a time."""

    batchable: bool = False
    batch_dim: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"batchable": self.batchable, "batch_dim": self.batch_dim}


def parse_signatures(raw: Mapping[str, Any]) -> dict[str, Signature]:
    """``{"predict": {"batchable": True, "batch_dim": 0}}`` → validated ``Signature``s."""
    if not isinstance(raw, Mapping) or not raw:
        raise ModelError("signatures must map at least one method name to its settings")
    result: dict[str, Signature] = {}
    for method, spec in raw.items():
        result[str(method)] = _signature(str(method), spec)
    return result


def _signature(method: str, spec: Any) -> Signature:
    if isinstance(spec, Signature):
        return spec
    if spec is None:
        return Signature()
    if not isinstance(spec, Mapping):
        raise ModelError(f"signature of {method!r} must be a mapping, got {type(spec).__name__}")
    unknown = set(spec) - {"batchable", "batch_dim"}
    if unknown:
        raise ModelError(f"signature of {method!r}: unknown keys {sorted(unknown)}")
    batchable, batch_dim = spec.get("batchable", False), spec.get("batch_dim", 0)
    if not isinstance(batchable, bool) or not isinstance(batch_dim, int) or batch_dim < 0:
        raise ModelError(
            f"signature of {method!r}: batchable must be true/false and batch_dim an int >= 0"
        )
    return Signature(batchable=batchable, batch_dim=batch_dim)
