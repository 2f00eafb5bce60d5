"""Batchable calls that carry their batch dimension, through a real worker pool and
the in-process client alike: concatenated along ``batch_dim``, split back by rows."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from runners import BatchingConfig, RunnerClient
from tests.conftest import POOL_KINDS, run, runner_config


def _client(kind: str, max_batch_size: int = 32) -> RunnerClient:
    batching = BatchingConfig(max_batch_size=max_batch_size)
    return POOL_KINDS[kind](runner_config(init={"delay_s": 0.05}, batching=batching))


async def _busy_then(client: RunnerClient, calls: list[tuple[Any, ...]], method: str) -> list[Any]:
    """Occupy the one worker, queue ``calls`` meanwhile, and return their answers."""
    first = asyncio.ensure_future(client.submit(method, (np.zeros((1, 2)),), {}))
    await asyncio.sleep(0)  # the first call is dispatched before the others queue
    try:
        return list(await asyncio.gather(*(client.submit(method, a, {}) for a in calls)))
    finally:
        await first


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_calls_of_different_lengths_share_one_batch_and_get_their_own_rows(kind: str) -> None:
    sizes = [1, 3, 2, 5, 1, 4, 2, 1, 3, 2, 1, 4]  # 29 rows in 12 calls

    async def scenario() -> None:
        async with _client(kind) as client:
            calls = [(np.full((n, 2), n, np.float64),) for n in sizes]
            results = await _busy_then(client, calls, "rows")
            for n, result in zip(sizes, results, strict=True):
                assert result.value.shape == (n, 2)
                assert (result.value[:, 0] == 2 * n).all()  # each row's sum: its own rows
                assert (result.value[:, 1] == 29).all()  # all ran in one batch of 29 rows
                assert result.batch_size == 29
            stats = client.stats().methods["rows"]
            assert stats.batches == 2 and stats.batch_sizes == {1: 1, 29: 1}

    run(scenario())


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_rows_count_toward_max_batch_size_and_a_larger_call_still_runs(kind: str) -> None:
    async def scenario() -> None:
        async with _client(kind, max_batch_size=8) as client:
            sizes = [3, 4, 20, 2]
            results = await _busy_then(client, [(np.ones((n, 2)),) for n in sizes], "rows")
            assert [r.value.shape[0] for r in results] == sizes
            assert [r.batch_size for r in results] == [7, 7, 20, 2]  # 3+4, then 20 alone

    run(scenario())


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_calls_of_other_trailing_shapes_are_grouped_by_shape(kind: str) -> None:
    async def scenario() -> None:
        async with _client(kind) as client:
            widths = [2, 3, 2, 3, 2, 3]
            results = await _busy_then(client, [(np.ones((1, w)),) for w in widths], "rows")
            assert [float(r.value[0, 0]) for r in results] == widths
            assert {r.batch_size for r in results} == {3}  # two batches, not six
            assert client.stats().methods["rows"].batches == 3

    run(scenario())


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_lists_are_joined_and_split_back(kind: str) -> None:
    async def scenario() -> None:
        async with _client(kind) as client:
            results = await _busy_then(client, [(["a", "b"],), (["c"],)], "words")
            assert [r.value for r in results] == [["a/3", "b/3"], ["c/3"]]

    run(scenario())
