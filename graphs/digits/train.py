"""Train the digits models and save them to the model store.

    python graphs/digits/train.py            # the store: GRAPHCTL_HOME or the user data dir
    graphctl run graphs/digits/graph.yaml --inputs graphs/digits/holdout.jsonl --output out.jsonl
    python graphs/digits/score.py out.jsonl  # accuracy of the graph's answers

Two scikit-learn classifiers (an SVM and a logistic regression) learn from the
first 1500 of scikit-learn's bundled 8x8 digits; the rest are held out. The
logistic regression is also exported to ONNX with skl2onnx for ``onnx.yaml``.
Prints the accuracy scikit-learn itself gets with the same soft vote, which
the graph must match.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from runners import models

TRAIN_SIZE = 1500
HERE = Path(__file__).resolve().parent
# Each request passes one image: the one-item-per-call style, stacked into batches.
ONE_ITEM = {"batchable": True, "stack": True}
PROBA = {"predict": ONE_ITEM, "predict_proba": ONE_ITEM}


def train() -> tuple[Any, Any, np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    svc = CalibratedClassifierCV(SVC(), ensemble=False).fit(x[:TRAIN_SIZE], y[:TRAIN_SIZE])
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    lr.fit(x[:TRAIN_SIZE], y[:TRAIN_SIZE])
    return svc, lr, x[TRAIN_SIZE:], y[TRAIN_SIZE:]


def export_onnx(lr: Any) -> bytes:
    """The logistic regression as an ONNX graph: input ``x``, outputs ``label`` and
    ``probabilities`` (a plain tensor, not a list of maps)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(
        lr,
        initial_types=[("x", FloatTensorType([None, 64]))],
        options={id(lr): {"zipmap": False}},
        final_types=None,
        target_opset=17,
    )
    for output, name in zip(onx.graph.output, ("label", "probabilities"), strict=True):
        _rename_output(onx, output.name, name)
    data: bytes = onx.SerializeToString()
    return data


def _rename_output(onx: Any, old: str, new: str) -> None:
    for node in onx.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
    for output in onx.graph.output:
        if output.name == old:
            output.name = new


def write_holdout(x: np.ndarray, y: np.ndarray, path: Path) -> None:
    with path.open("w") as out:
        for pixels, label in zip(x, y, strict=True):
            out.write(json.dumps({"pixels": pixels.tolist(), "label": int(label)}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="the model store folder (default: GRAPHCTL_HOME)")
    parser.add_argument("--holdout", type=Path, default=HERE / "holdout.jsonl")
    args = parser.parse_args()
    svc, lr, x_test, y_test = train()
    info = {"dataset": "sklearn digits", "train_samples": TRAIN_SIZE}
    for name, model in (("digits_svc", svc), ("digits_lr", lr)):
        ref = models.save(name, model, framework="sklearn", signatures=PROBA,
                          metadata=info, store=args.store)
        print(f"saved {ref}")
    ref = models.save("digits_onnx", export_onnx(lr), framework="onnx",
                      signatures={"run": ONE_ITEM}, metadata=info, store=args.store)
    print(f"saved {ref}")
    write_holdout(x_test, y_test, args.holdout)
    vote = np.argmax((svc.predict_proba(x_test) + lr.predict_proba(x_test)) / 2, axis=1)
    print(f"scikit-learn soft-vote accuracy on {len(y_test)} held-out digits: "
          f"{float(np.mean(vote == y_test)):.4f}")


if __name__ == "__main__":
    main()
