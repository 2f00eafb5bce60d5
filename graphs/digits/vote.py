"""The digits graph's functions: a soft vote of two classifiers, scored against the label."""

from __future__ import annotations

from typing import Any

import numpy as np


def vote(svc: Any, lr: Any, label: int | None = None) -> dict[str, Any]:
    """Average the two probability vectors; the digit is the most probable class."""
    proba = (np.asarray(svc) + np.asarray(lr)) / 2
    digit = int(np.argmax(proba))
    return {
        "digit": digit,
        "confidence": float(proba[digit]),
        "label": label,
        "correct": None if label is None else digit == label,
    }


def check(digit: Any, label: int | None = None) -> dict[str, Any]:
    """A single model's answer, scored against the label."""
    value = int(digit)
    return {"digit": value, "label": label, "correct": None if label is None else value == label}
