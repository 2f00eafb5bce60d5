"""Reference and template resolution: how ``$node.field`` becomes a value at run time.

Values are passed by reference: a node's output object is handed to every reader
as is, never copied. A node that was skipped holds the ``SKIPPED`` marker, which
readers see and either propagate or turn into ``None`` (``on_skipped_input``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from orchestrator.errors import ReferenceFailed
from orchestrator.plan import SWITCH_DEFAULT, NodePlan, Ref


class _Skipped:
    """The value of a skipped node: a singleton that is never a user value."""

    _instance: _Skipped | None = None

    def __new__(cls) -> _Skipped:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SKIPPED"

    def __bool__(self) -> bool:
        return False


SKIPPED: Final = _Skipped()

Values = Mapping[str, Any]  # source name ("inputs", a node, "item") -> value


class SkippedInput(Exception):
    """Raised while rendering when a referenced value was skipped and the node
    propagates skips; the node then counts as skipped itself."""


def select(value: Any, path: Sequence[str | int], ref_text: str = "") -> Any:
    """Follow ``path`` into ``value``: a mapping key, a sequence index, or an attribute."""
    for step in path:
        value = _step(value, step, ref_text)
    return value


def _step(value: Any, step: str | int, ref_text: str) -> Any:
    if isinstance(value, Mapping):
        if step in value:
            return value[step]
        alternative = str(step) if isinstance(step, int) else _as_int(step)
        if alternative is not None and alternative in value:
            return value[alternative]
        raise ReferenceFailed(f"{ref_text}: no key {step!r} (keys: {_keys(value)})")
    index = step if isinstance(step, int) else _as_int(step)
    if index is not None and isinstance(value, Sequence) and not isinstance(value, str | bytes):
        try:
            return value[index]
        except IndexError:
            raise ReferenceFailed(
                f"{ref_text}: index {index} out of range (length {len(value)})"
            ) from None
    if index is not None and hasattr(value, "shape") and hasattr(value, "__getitem__"):
        try:  # numpy arrays and alike
            return value[index]
        except IndexError:
            raise ReferenceFailed(f"{ref_text}: index {index} out of range") from None
    if isinstance(step, str) and hasattr(value, step):
        return getattr(value, step)
    raise ReferenceFailed(f"{ref_text}: a {type(value).__name__} value has no field {step!r}")


def _as_int(step: str | int) -> int | None:
    if isinstance(step, int):
        return step
    try:
        return int(step)
    except ValueError:
        return None


def _keys(mapping: Mapping[Any, Any]) -> str:
    names = [repr(key) for key in list(mapping)[:8]]
    return ", ".join(names) + (", ..." if len(mapping) > 8 else "") if names else "none"


def lookup(ref: Ref, values: Values) -> Any:
    """The value ``ref`` points at, or ``SKIPPED`` if its source node was skipped."""
    source = values[ref.source]
    if source is SKIPPED:
        return SKIPPED
    return select(source, ref.path, ref.text or f"${ref.source}")


def render(template: Any, values: Values, *, skipped_as_none: bool = False) -> Any:
    """Replace every ``Ref`` leaf of a JSON-like template by its value.

    A skipped value raises ``SkippedInput``, or becomes ``None`` with ``skipped_as_none``.
    Literal containers are rebuilt; referenced values are passed as they are (no copy).
    """
    if isinstance(template, Ref):
        value = lookup(template, values)
        if value is SKIPPED:
            if skipped_as_none:
                return None
            raise SkippedInput(template.text or template.source)
        return value
    if isinstance(template, Mapping):
        return {
            key: render(item, values, skipped_as_none=skipped_as_none)
            for key, item in template.items()
        }
    if isinstance(template, list | tuple):
        return [render(item, values, skipped_as_none=skipped_as_none) for item in template]
    return template


def render_kwargs(
    args: Mapping[str, Any], values: Values, *, skipped_as_none: bool = False
) -> dict[str, Any]:
    """A node's keyword arguments, every reference resolved."""
    return {
        name: render(template, values, skipped_as_none=skipped_as_none)
        for name, template in args.items()
    }


def switch_case(node: NodePlan, values: Values) -> Any:
    """The case key matching the switch's value, else ``SWITCH_DEFAULT``."""
    value = render(node.args["value"], values)
    for case in node.cases:
        if value == case or (
            isinstance(case, str) and not isinstance(value, str) and str(value) == case
        ):
            return case
    return SWITCH_DEFAULT


def coalesce(node: NodePlan, values: Values) -> Any:
    """The first of the node's references whose value was not skipped."""
    for ref in node.args["values"]:
        value = lookup(ref, values)
        if value is not SKIPPED:
            return value
    return SKIPPED
