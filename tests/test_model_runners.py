"""Each pre-built framework runner serves a real stored model through a graph, in
batches, and answers what the framework itself answers."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from orchestrator import load
from runners import models
from tests.conftest import run

ROWS = 24
ONE_ITEM = {"batchable": True, "stack": True}  # each call passes one row


@pytest.fixture
def digits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, Any]:
    monkeypatch.setenv("GRAPHCTL_HOME", str(tmp_path))
    x, y = load_digits(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(x[:300] / 16.0, y[:300])
    return x[300 : 300 + ROWS] / 16.0, clf


def _graph(tmp_path: Path, runner: str, node: str, output: str = "$each") -> Path:
    text = f"""
apiVersion: graphctl/v1
kind: Graph
metadata: {{name: served}}
spec:
  runners:
    model: {runner}
  inputs:
    rows: {{type: array, items: {{type: array, items: {{type: number}}}}}}
  nodes:
    each: {node}
  outputs:
    y: {output}
"""
    path = tmp_path / "graph.yaml"
    path.write_text(text)
    return path


def _serve(path: Path, rows: np.ndarray, method: str) -> tuple[list[Any], dict[int, int]]:
    async def scenario() -> tuple[list[Any], dict[int, int]]:
        async with load(path) as graph:
            out = await graph.run({"rows": rows.tolist()})
            sizes = graph.stats()["model"].methods[method].batch_sizes
            return out["y"], dict(sizes)

    return run(scenario(), timeout_s=90)


def test_sklearn_runner_maps_one_item_per_call(
    tmp_path: Path, digits: tuple[np.ndarray, Any]
) -> None:
    rows, clf = digits
    models.save("clf", clf, framework="sklearn", signatures={"predict_proba": ONE_ITEM})
    node = "{runner: model, method: predict_proba, map: $inputs.rows, args: {x: $item}}"
    path = _graph(tmp_path, "{model: 'clf:latest', workers: 1}", node)
    got, sizes = _serve(path, rows, "predict_proba")
    assert sizes == {ROWS: 1}  # the map fan-out reached the model as one batch
    np.testing.assert_allclose(np.array(got), clf.predict_proba(rows), rtol=1e-12)


def test_sklearn_runner_concatenates_requests_that_carry_their_batch_dimension(
    tmp_path: Path, digits: tuple[np.ndarray, Any]
) -> None:
    """As in BentoML: a request of n rows is n rows of a batch; concurrent requests
    of different n share one model call and each gets its own rows back."""
    rows, clf = digits
    scaled = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    scaled.fit(rows * 16.0, clf.predict(rows))  # a scaler needs exactly 2 dimensions
    models.save(
        "scaled",
        scaled,
        framework="sklearn",
        signatures={"predict": {"batchable": True, "batch_dim": 0}},
    )
    path = tmp_path / "graph.yaml"
    path.write_text("""
apiVersion: graphctl/v1
kind: Graph
metadata: {name: rows}
spec:
  runners:
    model: {model: 'scaled:latest', workers: 1}
  inputs:
    x: {tensor: {dtype: float64, shape: [-1, 64]}}
  nodes:
    label: {runner: model, method: predict, args: {x: $inputs.x}}
  outputs:
    y: $label
""")
    sizes = [1, 3, 2, 5, 1, 4, 2, 1, 3, 2]  # 10 requests, 24 rows
    starts = np.cumsum([0, *sizes[:-1]])
    parts = [rows[s : s + n] * 16.0 for s, n in zip(starts, sizes, strict=True)]

    async def scenario() -> tuple[list[Any], int]:
        async with load(path) as graph:
            outs = await asyncio.gather(*(graph.run({"x": p.tolist()}) for p in parts))
            return [o["y"] for o in outs], graph.stats()["model"].methods["predict"].batches

    got, batches = run(scenario(), timeout_s=90)
    for part, labels in zip(parts, got, strict=True):
        assert list(labels) == scaled.predict(part).tolist()
    assert batches < len(parts)  # merged, not one call per request


def test_onnx_runner(tmp_path: Path, digits: tuple[np.ndarray, Any]) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    rows, clf = digits
    onx = to_onnx(
        clf,
        initial_types=[("x", FloatTensorType([None, 64]))],
        options={id(clf): {"zipmap": False}},
        target_opset=17,
    )
    models.save("clf_onnx", onx, framework="onnx", signatures={"run": ONE_ITEM})
    node = "{runner: model, method: run, map: $inputs.rows, args: {x: $item}}"
    path = _graph(tmp_path, "{model: 'clf_onnx:latest', batching: {max_batch_size: 8}}", node)
    got, sizes = _serve(path, rows, "run")
    assert sizes == {8: ROWS // 8}  # max_batch_size from the graph splits the fan-out
    import onnxruntime as ort

    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {"x": rows.astype(np.float32)})
    names = [o.name for o in session.get_outputs()]
    assert [item[names[0]] for item in got] == labels.tolist()
    np.testing.assert_allclose(np.array([item[names[1]] for item in got]), proba, rtol=1e-6)
    assert (labels == clf.predict(rows)).mean() > 0.9


def test_torch_runner_torchscript_and_module(
    tmp_path: Path, digits: tuple[np.ndarray, Any]
) -> None:
    import torch

    rows, _ = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13, still loadable
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(net)
    models.save("net_ts", scripted, framework="torch", signatures={"forward": ONE_ITEM})
    models.save("net_pickle", net, framework="torch", signatures={"forward": ONE_ITEM})
    assert models.get("net_ts").format == "torchscript"
    assert models.get("net_pickle").format == "pickle"
    with torch.no_grad():
        expected = net(torch.as_tensor(rows, dtype=torch.float32)).numpy()
    node = "{runner: model, method: forward, map: $inputs.rows, args: {x: $item}}"
    for name in ("net_ts", "net_pickle"):
        path = _graph(tmp_path, f"{{model: '{name}:latest', resources: {{cpu: 1}}}}", node)
        got, sizes = _serve(path, rows, "forward")
        assert sizes == {ROWS: 1}
        np.testing.assert_allclose(np.array(got), expected, rtol=1e-5, atol=1e-6)


def test_digits_example_accuracy_equals_scikit_learns(tmp_path: Path) -> None:
    """train.py saves the models; the graph's answers score what scikit-learn scores."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GRAPHCTL_HOME": str(tmp_path)}
    holdout, out = tmp_path / "holdout.jsonl", tmp_path / "out.jsonl"
    trained = subprocess.run(
        [sys.executable, "graphs/digits/train.py", "--holdout", str(holdout)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
    )
    expected = trained.stdout.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    graphctl = str(Path(sys.executable).parent / "graphctl")
    subprocess.run(
        [
            graphctl,
            "run",
            "graphs/digits/graph.yaml",
            "--inputs",
            str(holdout),
            "--output",
            str(out),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
    )
    scored = subprocess.run(
        [sys.executable, "graphs/digits/score.py", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert scored.stdout.split()[1] == expected
    assert holdout.read_text() == (root / "graphs/digits/holdout.jsonl").read_text()


def test_a_method_the_model_was_not_saved_with_fails_validation(
    tmp_path: Path, digits: tuple[np.ndarray, Any]
) -> None:
    from orchestrator import GraphFileError, compile_file

    _, clf = digits
    models.save("clf", clf, framework="sklearn", signatures={"predict": {"batchable": True}})
    node = "{runner: model, method: predict_proba, map: $inputs.rows, args: {x: $item}}"
    path = _graph(tmp_path, "{model: 'clf:latest'}", node)
    with pytest.raises(GraphFileError) as failure:
        compile_file(path)
    message = str(failure.value)
    assert f"{path}:11:35: error: node 'each': model 'clf:latest' was not saved" in message
    assert "'predict_proba' signature (saved: predict)" in message
