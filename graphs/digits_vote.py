"""A real model on real data: scikit-learn classifiers trained on the digits data
set bundled with scikit-learn (8x8 images of handwritten digits, 1797 samples).

Each worker trains its classifier in ``__init__`` on the first ``TRAIN_SAMPLES``
samples; samples from ``TRAIN_SAMPLES`` on are held out for the sample inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from runners.runnable import Runnable, method

TRAIN_SAMPLES = 1500
FloatArray = npt.NDArray[np.float64]


class DigitsClassifier(Runnable):
    """``kind: forest`` (a random forest) or ``kind: logreg`` (a logistic regression)."""

    def __init__(self, kind: str = "forest", seed: int = 0) -> None:
        digits = load_digits()
        x, y = digits.data[:TRAIN_SAMPLES], digits.target[:TRAIN_SAMPLES]
        if kind == "forest":
            estimator: Any = RandomForestClassifier(n_estimators=50, random_state=seed)
        elif kind == "logreg":
            estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        else:
            raise ValueError(f"kind must be 'forest' or 'logreg', got {kind!r}")
        self.model = estimator.fit(x, y)

    @method(batchable=True, stack=True)
    def predict_proba(self, x: FloatArray) -> FloatArray:
        """Class probabilities (batch, 10) of images flattened to 64 pixel values."""
        proba: FloatArray = self.model.predict_proba(np.asarray(x, dtype=np.float64))
        return proba


def vote(a: FloatArray, b: FloatArray, label: int | None = None) -> dict[str, Any]:
    """Soft vote of two classifiers; ``correct`` is known when the true ``label`` is."""
    proba = (np.asarray(a) + np.asarray(b)) / 2.0
    digit = int(np.argmax(proba))
    result: dict[str, Any] = {
        "digit": digit,
        "confidence": round(float(proba[digit]), 4),
        "agree": int(np.argmax(a)) == int(np.argmax(b)),
    }
    result["correct"] = digit == label if label is not None else None
    return result


def holdout(count: int, start: int = TRAIN_SAMPLES) -> list[dict[str, Any]]:
    """Held-out samples as graph inputs: ``{"x": [64 pixels], "label": digit}``."""
    digits = load_digits()
    return [
        {"x": digits.data[i].tolist(), "label": int(digits.target[i])}
        for i in range(start, min(start + count, len(digits.target)))
    ]
