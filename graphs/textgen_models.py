"""A word n-gram language model, trained when its worker starts on a bundled story
(``graphs/data/lighthouse.txt``), that streams its tokens in batches.

The model is a table: for every context (the last ``order - 1`` words) the words
that follow it in the story, with their frequencies. A step samples one word per
item of the batch with one vectorised lookup (``NGramTable.sample``), which is
what makes serving many streams in one batch cheaper than one at a time. A
request that comes while a batch runs joins it at its next step (continuous
batching, ``joins=True``). Each item draws from its own ``numpy`` generator
seeded by its request, so a prompt and a seed always give the same text,
whatever batch the request rode in and whenever it joined.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from runners import END, Runnable, method

DATA = Path(__file__).resolve().parent / "data"
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Context = tuple[str, ...]


def _key(word: str) -> str:
    """A word as a prompt may spell it: lower case, without punctuation around it."""
    return word.strip(".,;:!?\"'()").lower()


@dataclass(frozen=True)
class NGramTable:
    """Every (context, next word) pair of the training text, grouped by context.

    ``starts[p]`` is the pair's context id plus the probability of the pairs of
    that context before it, so sampling a context ``c`` with a uniform ``u`` is a
    sorted search for ``c + u``, for a whole batch at once.
    """

    width: int  # words per context: the order minus one
    words: list[str]  # the vocabulary, by word id
    starts: FloatArray  # per pair, sorted
    successor: IntArray  # per pair: the next word's id
    next_context: IntArray  # per pair: the context id after that word
    contexts: dict[Context, int]
    by_last_word: dict[str, int]  # a context id per last word (``_key``)

    def start(self, prompt: str) -> int:
        """The context to continue ``prompt`` from: its last words when the text has
        them, else a context ending with its last word, else the text's beginning."""
        tail = tuple(prompt.split()[-self.width :])
        if tail in self.contexts:
            return self.contexts[tail]
        return self.by_last_word.get(_key(tail[-1]) if tail else "", 0)

    def sample(self, context: IntArray, uniform: FloatArray) -> IntArray:
        """The pair drawn for each context, given one uniform in [0, 1) per context."""
        found: IntArray = np.searchsorted(self.starts, context + uniform, side="right") - 1
        return found


def train(text: str, order: int) -> NGramTable:
    """Count the text's ``order``-grams; the text wraps around, so that every
    context has a next word."""
    if order < 2:
        raise ValueError(f"order must be at least 2, got {order}")
    words = text.split()
    if len(words) < order:
        raise ValueError(f"the training text has {len(words)} words, fewer than order {order}")
    width = order - 1
    ring = words + words[:width]
    contexts: dict[Context, int] = {}
    for i in range(len(words)):
        contexts.setdefault(tuple(ring[i : i + width]), len(contexts))
    vocabulary = {word: i for i, word in enumerate(dict.fromkeys(words))}
    pairs = Counter(
        (contexts[tuple(ring[i : i + width])], ring[i + width]) for i in range(len(words))
    )
    ordered = sorted(pairs, key=lambda pair: (pair[0], vocabulary[pair[1]]))
    totals = Counter[int]()
    for (context, _), count in pairs.items():
        totals[context] += count
    starts, seen = [], Counter[int]()
    for context, word in ordered:
        starts.append(context + seen[context] / totals[context])
        seen[context] += pairs[context, word]
    names = list(contexts)
    return NGramTable(
        width=width,
        words=list(vocabulary),
        starts=np.asarray(starts, dtype=np.float64),
        successor=np.asarray([vocabulary[word] for _, word in ordered], dtype=np.int64),
        next_context=np.asarray(
            [contexts[(*names[context][1:], word)] for context, word in ordered], dtype=np.int64
        ),
        contexts=contexts,
        by_last_word={_key(context[-1]): i for context, i in reversed(contexts.items())},
    )


class TextGenerator(Runnable):
    """Continues prompts with words of ``corpus`` (a file of ``graphs/data/``)."""

    SUPPORTED_RESOURCES = ("cpu",)

    def __init__(self, order: int = 3, corpus: str = "lighthouse.txt") -> None:
        self.table = train((DATA / corpus).read_text(encoding="utf-8"), order)

    @method(batchable=True, stream=True, joins=True)
    def generate(
        self,
        prompt: list[str],
        max_tokens: list[int],
        seed: list[int],
        step_ms: list[float],
    ) -> Iterator[list[Any]]:
        """Item ``i`` streams ``max_tokens[i]`` tokens (words, each after a space).
        Requests join the running batch between steps: the argument lists grow in
        place, and each new item starts from its own prompt and seed at the next
        step. One step samples a token for every item still running, then sleeps
        the largest ``step_ms`` of them: a stand-in for a real model's cost per step."""
        items = _Items(self.table)
        done: set[int] = set()
        while True:
            items.admit(prompt, seed)
            live = [i for i in range(len(prompt)) if i not in done]
            running = [i for i in live if items.made[i] < max_tokens[i]]
            if not running:
                return  # the items left end with the batch
            finished = [i for i in live if items.made[i] >= max_tokens[i]]
            chunks = self._step(running, items)
            for i in finished:
                chunks[i] = END
            done.update(finished)
            time.sleep(max(step_ms[i] for i in running) / 1000)
            done |= (yield chunks) or frozenset()

    def _step(self, running: Sequence[int], items: _Items) -> list[Any]:
        """One token for each running item (``None`` for the others); moves their
        contexts on, in place."""
        chunks: list[Any] = [None] * len(items.made)
        rows = np.asarray(running, dtype=np.int64)
        uniform = np.asarray([items.generators[i].random() for i in running])
        pairs = self.table.sample(items.context[rows], uniform)
        items.context[rows] = self.table.next_context[pairs]
        for i, word in zip(running, self.table.successor[pairs].tolist(), strict=True):
            chunks[i] = " " + self.table.words[word]
            items.made[i] += 1
        return chunks


@dataclass
class _Items:
    """Each item's generation state: its context, its own random generator (seeded
    by its request) and the tokens it made. Grows as items join the batch."""

    table: NGramTable
    context: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    generators: list[np.random.Generator] = field(default_factory=list)
    made: list[int] = field(default_factory=list)

    def admit(self, prompt: Sequence[str], seed: Sequence[int]) -> None:
        """Start the items that joined since the last step (indices ``len(made)`` on)."""
        new = range(len(self.made), len(prompt))
        if not new:
            return
        starts = np.asarray([self.table.start(prompt[i]) for i in new], dtype=np.int64)
        self.context = np.concatenate([self.context, starts])
        self.generators.extend(np.random.default_rng(seed[i]) for i in new)
        self.made.extend(0 for _ in new)
