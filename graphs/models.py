"""Numpy models of the example graphs: a small MLP runner and two pure functions.

The MLP's weights come from a seeded generator, so every worker process that
loads ``MLP(hidden, seed)`` computes exactly the same function.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from runners import Runnable, method

FloatArray = npt.NDArray[np.float32]

IN_FEATURES = 64
CLASSES = 10


class MLP(Runnable):
    """A two-layer perceptron (ReLU) from ``IN_FEATURES`` inputs to ``CLASSES`` logits."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    def __init__(self, hidden: int = 256, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        scale_in = np.float32(1.0 / np.sqrt(IN_FEATURES))
        scale_hidden = np.float32(1.0 / np.sqrt(hidden))
        self.w1 = rng.standard_normal((IN_FEATURES, hidden), dtype=np.float32) * scale_in
        self.b1 = np.zeros(hidden, dtype=np.float32)
        self.w2 = rng.standard_normal((hidden, CLASSES), dtype=np.float32) * scale_hidden
        self.b2 = np.zeros(CLASSES, dtype=np.float32)

    @method(batchable=True, stack=True)
    def predict(self, x: FloatArray) -> FloatArray:
        """Logits for a batch ``x`` of shape ``(batch, IN_FEATURES)``: each call passes one
        sample of ``IN_FEATURES`` values, stacked into the batch."""
        hidden = np.maximum(np.asarray(x, dtype=np.float32) @ self.w1 + self.b1, 0.0)
        logits: FloatArray = hidden @ self.w2 + self.b2
        return logits


    @method(batchable=True, batch_dim=0)
    def predict_rows(self, x: FloatArray) -> FloatArray:
        """Logits of every row of ``x`` (``(rows, IN_FEATURES)``): each call brings its
        own rows, and concurrent calls are concatenated into one batch."""
        return self.predict(x)


def normalize(x: FloatArray) -> FloatArray:
    """Scale one sample to zero mean and unit variance (a constant input stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    centered = x - x.mean()
    std = float(centered.std())
    result: FloatArray = centered / np.float32(std) if std > 0 else centered
    return result


def normalize_rows(x: FloatArray) -> FloatArray:
    """Scale each row to zero mean and unit variance (a constant row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    centered = x - x.mean(axis=-1, keepdims=True)
    std = centered.std(axis=-1, keepdims=True)
    result: FloatArray = np.divide(centered, std, out=np.zeros_like(centered), where=std > 0)
    return result


def softmax(logits: FloatArray) -> FloatArray:
    """Probabilities along the last axis, computed stably."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    result: FloatArray = shifted / shifted.sum(axis=-1, keepdims=True)
    return result


def average_softmax(a: FloatArray, b: FloatArray) -> FloatArray:
    """The mean of two models' class probabilities: a simple ensemble."""
    result: FloatArray = (softmax(np.asarray(a)) + softmax(np.asarray(b))) / np.float32(2.0)
    return result
