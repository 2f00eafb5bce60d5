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
    """How one stored method is called: one at a time, or batched (calls concatenated
    along ``batch_dim``; with ``stack``, one item per call stacked)."""

    batchable: bool = False
    batch_dim: int = 0
    stack: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"batchable": self.batchable, "batch_dim": self.batch_dim, "stack": self.stack}


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
    unknown = set(spec) - {"batchable", "batch_dim", "stack"}
    if unknown:
        raise ModelError(f"signature of {method!r}: unknown keys {sorted(unknown)}")
    batchable, batch_dim = spec.get("batchable", False), spec.get("batch_dim", 0)
    stack = spec.get("stack", False)
    if not isinstance(batchable, bool) or not isinstance(stack, bool):
        raise ModelError(f"signature of {method!r}: batchable and stack must be true/false")
    if not isinstance(batch_dim, int) or batch_dim < 0:
        raise ModelError(f"signature of {method!r}: batch_dim must be an int >= 0")
    return Signature(batchable=batchable, batch_dim=batch_dim, stack=stack)
