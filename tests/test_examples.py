"""Every example graph runs with its sample input and its sample JSONL lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import orchestrator
from tests._executor_helpers import EXAMPLES, run

EXAMPLE_GRAPHS = sorted(p for p in EXAMPLES.glob("*.yaml") if p.with_suffix(".input.json").exists())
# vote's sample inputs are the first held-out digits: its own test below runs them.
QUICK_EXAMPLES = [p for p in EXAMPLE_GRAPHS if p.stem != "vote"]


def run_example(path: Path, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        async with orchestrator.load(path) as graph:
            return [orchestrator.to_jsonable(await graph.run(one)) for one in inputs]

    return run(main())


def sample_inputs(path: Path) -> list[dict[str, Any]]:
    inputs = [json.loads(path.with_suffix(".input.json").read_text())]
    lines = path.with_suffix(".jsonl")
    if lines.exists():
        inputs += [json.loads(line) for line in lines.read_text().splitlines() if line.strip()]
    return inputs


def test_every_feature_has_an_example() -> None:
    names = {p.stem for p in EXAMPLE_GRAPHS}
    assert {"diamond", "pipeline", "routing", "fanout", "optional_branch", "vote"} <= names


@pytest.mark.parametrize("path", QUICK_EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_with_its_sample_input(path: Path) -> None:
    outputs = run_example(path, sample_inputs(path))
    plan = orchestrator.load(path).plan
    for out in outputs:
        assert set(out) == set(plan.outputs)
        json.dumps(out)  # JSON-ready


def test_pipeline_labels() -> None:
    path = EXAMPLES / "pipeline.yaml"
    labels = [out["label"] for out in run_example(path, sample_inputs(path))]
    assert labels == ["positive", "positive", "negative", "neutral"]


def test_fanout_scores_each_sentence_in_order() -> None:
    path = EXAMPLES / "fanout.yaml"
    (out,) = run_example(path, [{"sentences": ["good", "bad", "not good", "love it, great"]}])
    assert out["scores"] == [1.0, -1.0, -1.0, 2.0]
    assert out["best"] == "love it, great" and out["mean"] == 0.25


def test_optional_branch_failures_do_not_sink_the_request() -> None:
    path = EXAMPLES / "optional_branch.yaml"
    short, long = run_example(path, [{"text": "good food"}, {"text": "good food and nice staff"}])
    assert short["result"] == {
        "label": "positive", "score": 1.0, "enrichment": None, "keywords": ["food", "good"],
    }  # fmt: skip
    assert long["result"]["keywords"] == [] and long["enrichment"] is None


def test_vote_matches_scikit_learn_on_held_out_digits() -> None:
    from sklearn.datasets import load_digits

    from graphs.digits_vote import TRAIN_SAMPLES, DigitsClassifier, holdout

    samples = holdout(40)
    assert samples[:8] == sample_inputs(EXAMPLES / "vote.yaml")
    outputs = run_example(EXAMPLES / "vote.yaml", samples)
    x = load_digits().data[TRAIN_SAMPLES : TRAIN_SAMPLES + 40]
    proba = DigitsClassifier("forest").predict_proba(x) + DigitsClassifier("logreg").predict_proba(
        x
    )
    assert [out["digit"] for out in outputs] == np.argmax(proba, axis=1).tolist()
    accuracy = np.mean([out["correct"] for out in outputs])
    assert accuracy >= 0.85, accuracy


def test_rows_example_answers_each_request_its_own_rows() -> None:
    """graphs/rows.yaml: requests of 1, 3 and 2 rows, run concurrently, each get their
    own rows' probabilities, equal to the model run directly on those rows."""
    import asyncio

    from graphs.models import MLP, normalize_rows, softmax

    rng = np.random.default_rng(0)
    requests = [rng.standard_normal((n, 64)).astype(np.float32) for n in (1, 3, 2)]

    async def main() -> list[Any]:
        async with orchestrator.load(EXAMPLES / "rows.yaml") as graph:
            outs = await asyncio.gather(*(graph.run({"x": x.tolist()}) for x in requests))
            return [out["p"] for out in outs]

    model = MLP(hidden=256, seed=0)
    for x, got in zip(requests, run(main()), strict=True):
        want = softmax(model.predict(normalize_rows(x)))
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
