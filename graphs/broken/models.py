"""A tiny runner and functions for the deliberately broken example graphs."""

from __future__ import annotations

from typing import Any

from runners import Runnable, method


class Scorer(Runnable):
    """Scales its input; ``gain`` is its only ``init`` parameter."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    @method(batchable=True)
    def predict(self, x: Any) -> Any:
        """``x`` times the gain."""
        return x * self.gain

    def reset(self) -> None:
        """A plain method: not exposed to graphs (no ``@method``)."""


def normalize(x: Any) -> Any:
    """The identity, standing in for preprocessing."""
    return x


def add(a: Any, b: Any) -> Any:
    """The sum of two values."""
    return a + b
