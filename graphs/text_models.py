"""Text models of the example graphs: a tokenizer, a lexicon sentiment model
(batched in a runner), a request classifier and the replies of a small router.

The sentiment model is deliberately tiny and deterministic: a word lexicon
scored per token, so the examples' outputs can be checked by eye.
"""

from __future__ import annotations

import re
from typing import Any

from runners.runnable import Runnable, method

_WORD = re.compile(r"[a-z']+")

POSITIVE = frozenset(
    ["good", "great", "love", "excellent", "happy", "nice", "fast", "fantastic", "wonderful"]
)
NEGATIVE = frozenset(
    ["bad", "terrible", "hate", "awful", "sad", "slow", "broken", "poor", "horrible"]
)
NEGATIONS = frozenset(["not", "never", "no", "don't", "isn't", "wasn't"])


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (an OCR or user text in the examples)."""
    return _WORD.findall(text.lower())


class Sentiment(Runnable):
    """Scores token lists in batches: +1 per positive word, -1 per negative word,
    flipped after a negation; ``scale`` multiplies the result."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    @method(batchable=True, stack=True)
    def score(self, tokens: list[list[str]]) -> list[float]:
        """One score per token list of the batch."""
        return [self.scale * _score(words) for words in tokens]


def _score(words: list[str]) -> float:
    total = 0.0
    sign = 1.0
    for word in words:
        if word in NEGATIONS:
            sign = -1.0
            continue
        total += sign * ((word in POSITIVE) - (word in NEGATIVE))
        sign = 1.0
    return total


def label(score: float, threshold: float = 0.0) -> dict[str, Any]:
    """A sentiment label from a score."""
    name = "positive" if score > threshold else "negative" if score < -threshold else "neutral"
    return {"label": name, "score": float(score)}


def classify(text: str) -> dict[str, str]:
    """What kind of request a text is: ``question``, ``greeting`` or ``other``."""
    stripped = text.strip().lower()
    if stripped.endswith("?"):
        return {"kind": "question"}
    if stripped.split(" ", 1)[0] in {"hi", "hello", "hey"}:
        return {"kind": "greeting"}
    return {"kind": "other"}


def answer(text: str) -> str:
    return f"Good question! You asked: {text.strip()}"


def greet(text: str) -> str:
    return "Hello to you too!"


def fallback(text: str) -> str:
    return f"Noted: {text.strip()}"


def shout(reply: str) -> str:
    """The reply in capitals, for callers who asked ``loud: true``."""
    return reply.upper()


def summarize(sentences: list[str], scores: list[float]) -> dict[str, Any]:
    """The mean score of a map fan-out and the most positive sentence."""
    best = max(range(len(scores)), key=scores.__getitem__) if scores else None
    return {
        "mean": sum(scores) / len(scores) if scores else 0.0,
        "best": sentences[best] if best is not None else None,
    }


def enrich(text: str) -> dict[str, Any]:
    """An optional enrichment that depends on an external service which is down."""
    raise ConnectionError("the enrichment service is unreachable")


def keywords(tokens: list[str]) -> list[str]:
    """An optional branch that fails on long inputs (it only supports short texts)."""
    if len(tokens) > 3:
        raise ValueError(f"keywords supports at most 3 tokens, got {len(tokens)}")
    return sorted(set(tokens))


def report(sentiment: dict[str, Any], extra: Any, words: Any) -> dict[str, Any]:
    """Combine the required result with optional ones (``None`` when skipped)."""
    return {**sentiment, "enrichment": extra, "keywords": words}
