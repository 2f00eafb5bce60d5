"""Evaluation of ``when:`` conditions: a small comparison language over resolved
references, interpreted from data (never ``eval``).

A comparison over a skipped value is false (``exists`` included), so a node gated
on a skipped switch is skipped too; ``not`` inverts that as written.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Container
from typing import Any

from orchestrator.errors import ConditionError
from orchestrator.plan import AllOf, AnyOf, Compare, Condition, Not
from orchestrator.running._resolve import SKIPPED, Values, lookup


def _contains(value: Any, choices: Any) -> bool:
    if not isinstance(choices, Container):
        raise ConditionError(f"'in' needs a list of choices, got {type(choices).__name__}")
    return value in choices


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "in": _contains,
    "not_in": lambda value, choices: not _contains(value, choices),
}


def evaluate(condition: Condition, values: Values) -> bool:
    """Whether ``condition`` holds for the resolved ``values`` of this request."""
    if isinstance(condition, Compare):
        return _compare(condition, values)
    if isinstance(condition, AllOf):
        return all(evaluate(part, values) for part in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(evaluate(part, values) for part in condition.conditions)
    if isinstance(condition, Not):
        return not evaluate(condition.condition, values)
    raise ConditionError(f"unknown condition {condition!r}")


def _compare(condition: Compare, values: Values) -> bool:
    value = lookup(condition.ref, values)
    if value is SKIPPED:
        return False
    if condition.op == "exists":
        return value is not None if condition.value in (None, True) else value is None
    compare = _OPERATORS.get(condition.op)
    if compare is None:
        raise ConditionError(f"unknown comparison {condition.op!r}")
    try:
        return bool(compare(value, condition.value))
    except TypeError as error:
        where = condition.ref.text or f"${condition.ref.source}"
        raise ConditionError(
            f"cannot compare {where} ({type(value).__name__}) {condition.op} "
            f"{condition.value!r}: {error}"
        ) from None
