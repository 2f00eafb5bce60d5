"""The scikit-learn runner: any estimator, stored with joblib.

Loading a joblib (pickle) file runs code from it: the store only loads files
whose sha256 still matches the metadata written when the model was saved, so
only store models you (or someone you trust) saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runners.errors import ModelError
from runners.models.refs import Signature
from runners.models.store import load_verified
from runners.runnable import Runnable, method

FORMAT = "joblib"
METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)
DEFAULT_SIGNATURES = {"predict": Signature(batchable=True, batch_dim=0)}


def write_model(obj: Any, dest: Path) -> tuple[str, str]:
    """Dump an estimator into ``dest``; returns (file name, format)."""
    import joblib

    if not hasattr(obj, "fit"):
        raise ModelError(f"a scikit-learn model must be an estimator, got {type(obj).__name__}")
    filename = filename_for(FORMAT)
    joblib.dump(obj, dest / filename)
    return filename, FORMAT


def detect_format(path: Path) -> str:
    return FORMAT


def filename_for(fmt: str) -> str:
    return "model.joblib"


class SklearnRunnable(Runnable):
    """Serves a stored estimator; each stored signature is a method of the same name.

    scikit-learn estimators mostly run on one thread, so ``workers: auto`` gives
    one worker per core.
    """

    SUPPORTS_CPU_MULTI_THREADING = False

    def __init__(self, model: str, store: str | None = None) -> None:
        import joblib

        info = load_verified(model, framework="sklearn", store=store)
        self._ref = str(info.ref)
        self._signatures = dict(info.signatures)
        self._estimator = joblib.load(info.model_path)

    def _call(self, name: str, x: Any) -> Any:
        if name not in self._signatures:
            raise ModelError(f"model {self._ref!r} was not saved with a {name!r} signature")
        return getattr(self._estimator, name)(np.asarray(x))

    @method(batchable=True, batch_dim=0)
    def predict(self, x: Any) -> Any:
        return self._call("predict", x)

    @method(batchable=True, batch_dim=0)
    def predict_proba(self, x: Any) -> Any:
        return self._call("predict_proba", x)

    @method(batchable=True, batch_dim=0)
    def predict_log_proba(self, x: Any) -> Any:
        return self._call("predict_log_proba", x)

    @method(batchable=True, batch_dim=0)
    def decision_function(self, x: Any) -> Any:
        return self._call("decision_function", x)

    @method(batchable=True, batch_dim=0)
    def transform(self, x: Any) -> Any:
        return self._call("transform", x)

    @method(batchable=True, batch_dim=0)
    def score_samples(self, x: Any) -> Any:
        return self._call("score_samples", x)


RUNNABLE = SklearnRunnable
