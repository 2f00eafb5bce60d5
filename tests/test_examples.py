"""Every example graph runs with its sample input and its sample JSONL lines."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import orchestrator
from tests._executor_helpers import EXAMPLES, ROOT, run
from tests._serve_helpers import metric_value, thread_server, timed_events

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
    wanted = {"diamond", "pipeline", "routing", "fanout", "optional_branch", "vote", "textgen"}
    assert wanted <= {p.stem for p in EXAMPLE_GRAPHS}


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


# graphs/textgen.yaml: a streamed answer from a word n-gram model.
TEXTGEN = EXAMPLES / "textgen.yaml"


def generated_alone(prompt: str, max_tokens: int, seed: int) -> str:
    """The example model's text for one prompt, run directly, one item alone."""
    from graphs.textgen_models import TextGenerator

    steps = TextGenerator(order=3).generate([prompt], [max_tokens], [seed], [0.0])
    return "".join(step[0] for step in steps if isinstance(step[0], str))


def stream_events(base: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(kind, data) of every server-sent event of one ``POST /textgen``."""
    return [(kind, data) for kind, data, _ in timed_events(base, "textgen", body, timeout_s=60)]


def test_textgen_model_continues_with_the_story_s_own_word_triples() -> None:
    """Every three consecutive words of prompt + text occur in the training story
    (which wraps around), and the seed alone decides the text."""
    from graphs.textgen_models import DATA

    story = (DATA / "lighthouse.txt").read_text(encoding="utf-8").split()
    ring = story + story[:2]
    triples = {tuple(ring[i : i + 3]) for i in range(len(story))}
    text = generated_alone("the old keeper", 60, seed=3)
    words = ["old", "keeper", *text.split()]
    assert len(words) == 62 and text.startswith(" ")
    assert all(tuple(words[i : i + 3]) in triples for i in range(60))
    assert generated_alone("the old keeper", 60, seed=3) == text
    assert {generated_alone("the old keeper", 60, seed=s) for s in range(8)} != {text}


def test_textgen_model_skips_the_items_no_longer_wanted() -> None:
    """Item 2 ends at its own step; item 1's caller leaves after step 2: it gets
    nothing more, and item 0 (same prompt and seed) goes on as if alone."""
    from graphs.textgen_models import TextGenerator
    from runners import END

    steps = TextGenerator().generate(
        ["The sea", "The sea", "Pepper"], [6, 6, 2], [5, 5, 1], [0] * 3
    )
    rows = [next(steps), steps.send(frozenset()), steps.send(frozenset())]
    while True:
        try:
            rows.append(steps.send(frozenset({1, 2})))
        except StopIteration:
            break
    first, second, third = ([row[i] for row in rows] for i in range(3))
    assert "".join(first) == generated_alone("The sea", 6, seed=5)
    assert second == first[:3] + [None] * 3
    assert all(isinstance(chunk, str) for chunk in third[:2])
    assert third[2:] == [END, None, None, None]


def test_textgen_model_takes_items_joined_between_steps() -> None:
    """Items appended to the argument lists between steps start at the next step
    and make the text they make alone; the batch ends with its last item."""
    from graphs.textgen_models import TextGenerator
    from runners import END

    prompt, max_tokens, seed, step_ms = ["The sea"], [5], [2], [0.0]
    steps = TextGenerator().generate(prompt, max_tokens, seed, step_ms)
    rows = [next(steps), steps.send(frozenset())]
    for text, tokens, value in (("The keeper", 6, 7), ("Pepper", 1, 1)):  # two joins
        prompt.append(text)
        max_tokens.append(tokens)
        seed.append(value)
        step_ms.append(0.0)
    rows.extend(steps)
    assert [len(row) for row in rows] == [1, 1] + [3] * (len(rows) - 2)
    columns = [[row[i] for row in rows if i < len(row)] for i in range(3)]
    texts = ["".join(c for c in column if isinstance(c, str)) for column in columns]
    assert texts == [
        generated_alone("The sea", 5, 2),
        generated_alone("The keeper", 6, 7),
        generated_alone("Pepper", 1, 1),
    ]
    assert columns[2][1:] == [END] + [None] * (len(rows) - 4)
    assert len(rows) == 2 + 6  # the joined item of 6 tokens is the last to end


def test_textgen_run_prints_the_seeded_text() -> None:
    sample = json.loads(TEXTGEN.with_suffix(".input.json").read_text())
    done = subprocess.run(
        [str(Path(sys.executable).parent / "graphctl"), "run", "graphs/textgen.yaml",
         "--input", "@graphs/textgen.input.json"],
        capture_output=True, text=True, timeout=90, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    *chunk_lines, answer = done.stdout.splitlines()
    out = json.loads(answer)
    assert [json.loads(line)["chunk"] for line in chunk_lines] == out["tokens"]
    assert out["prompt"] == sample["prompt"]
    assert len(out["tokens"]) == sample["max_tokens"]
    want = generated_alone(sample["prompt"], sample["max_tokens"], sample["seed"])
    assert "".join(out["tokens"]) == want


def test_textgen_streams_its_tokens_as_server_sent_events() -> None:
    body = {"prompt": "In the spring", "max_tokens": 20, "seed": 11, "step_ms": 5}
    with thread_server(orchestrator.create_app([orchestrator.load(TEXTGEN)])) as base:
        events = stream_events(base, body)
        plain = httpx.post(f"{base}/textgen", json=body, timeout=60).json()
    assert [kind for kind, _ in events] == ["chunk"] * 20 + ["result"]
    assert {data["output"] for _, data in events[:-1]} == {"tokens"}
    streamed = "".join(data["chunk"] for _, data in events[:-1])
    assert streamed == "".join(plain["tokens"]) == generated_alone("In the spring", 20, 11)
    assert events[-1][1] == {"prompt": "In the spring"}


def test_textgen_concurrent_streams_share_batches_and_keep_their_own_text() -> None:
    bodies = [
        {"prompt": "The keeper", "max_tokens": 8 + i % 5, "seed": i, "step_ms": 20}
        for i in range(16)
    ]
    with thread_server(orchestrator.create_app([orchestrator.load(TEXTGEN)])) as base:
        with ThreadPoolExecutor(16) as threads:
            answers = list(threads.map(lambda body: stream_events(base, body), bodies))
        batches = metric_value(base, "graphctl_runner_batch_size_count", method="generate")
        items = metric_value(base, "graphctl_runner_batch_size_sum", method="generate")
    for body, events in zip(bodies, answers, strict=True):
        text = "".join(data["chunk"] for kind, data in events if kind == "chunk")
        assert text == generated_alone(body["prompt"], body["max_tokens"], body["seed"])
        assert events[-1][0] == "result"
    assert items == 16
    assert items / batches > 1


def test_textgen_a_request_joins_the_running_stream_over_sse() -> None:
    """A second request sent after the first one's first event streams its tokens
    before the first ends: it joined the running batch (one batch of two items)."""
    first_body = {"prompt": "The keeper", "max_tokens": 40, "seed": 4, "step_ms": 20}
    second_body = {"prompt": "In the winter", "max_tokens": 5, "seed": 9, "step_ms": 20}
    started = threading.Event()
    with thread_server(orchestrator.create_app([orchestrator.load(TEXTGEN)])) as base:
        with ThreadPoolExecutor(1) as thread:
            first_answer = thread.submit(
                timed_events, base, "textgen", first_body, started=started, timeout_s=60
            )
            assert started.wait(timeout=60)
            second = timed_events(base, "textgen", second_body, timeout_s=60)
            first = first_answer.result(timeout=60)
        batches = metric_value(base, "graphctl_runner_batch_size_count", method="generate")
        items = metric_value(base, "graphctl_runner_batch_size_sum", method="generate")
    assert second[0][0] == "chunk" and second[-1][0] == first[-1][0] == "result"
    assert second[0][2] < second[-1][2] < first[-1][2]  # all of it while the first ran
    for body, events in ((first_body, first), (second_body, second)):
        text = "".join(data["chunk"] for kind, data, _ in events if kind == "chunk")
        assert text == generated_alone(body["prompt"], body["max_tokens"], body["seed"])
    assert (batches, items) == (1, 2)
