"""The Python API: ``load``, the ``Graph`` lifecycle, ``run_sync``, local mode."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

import orchestrator
from graphs.models import MLP, average_softmax, normalize
from orchestrator import Graph, GraphState
from orchestrator.errors import GraphClosed, RequestError
from runners.errors import RunnerStartupError
from runners.local import LocalClient
from tests._executor_helpers import EXAMPLES, TEST_GRAPHS, run

DIAMOND = EXAMPLES / "diamond.yaml"


def expected_diamond(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The diamond computed directly with the same numpy models."""
    pre = normalize(x)
    a = MLP(hidden=256, seed=0).predict(pre[None])[0]
    b = MLP(hidden=512, seed=1).predict(pre[None])[0]
    return average_softmax(a, b)


def test_lifecycle_and_concurrent_requests_match_direct_computation() -> None:
    xs = np.random.default_rng(7).standard_normal((48, 64)).astype(np.float32)

    async def main() -> list[dict[str, Any]]:
        graph = orchestrator.load(DIAMOND)
        assert graph.state is GraphState.NEW and not graph.ready
        with pytest.raises(GraphClosed, match="inside 'async with'"):
            await graph.run({"x": xs[0]})
        async with graph:
            assert graph.state is GraphState.READY and graph.ready
            assert graph.name == "diamond" and graph.plan.name == "diamond"
            outs = await asyncio.gather(*(graph.run({"x": x}) for x in xs))
            stats = graph.stats()
            assert set(stats) == {"mlp_a", "mlp_b"}
            assert stats["mlp_a"].methods["predict"].calls == len(xs)
        assert graph.state is GraphState.CLOSED and not graph.ready
        with pytest.raises(GraphClosed):
            await graph.run({"x": xs[0]})
        with pytest.raises(GraphClosed, match="already started"):
            await graph.__aenter__()
        return outs

    outs = run(main())
    for x, out in zip(xs, outs, strict=True):
        np.testing.assert_allclose(out["y"], expected_diamond(x), rtol=1e-4, atol=1e-6)


def test_bad_input_is_a_request_error_naming_the_field() -> None:
    async def main() -> None:
        async with orchestrator.load(DIAMOND) as graph:
            with pytest.raises(RequestError) as caught:
                await graph.run({"x": [1.0, 2.0]})
            assert caught.value.field == "x"

    run(main())


def test_run_sync() -> None:
    out = orchestrator.run_sync(EXAMPLES / "pipeline.yaml", {"text": "awful, just awful"})
    assert out == {"label": "negative", "score": -2.0}


def test_a_runner_that_cannot_start_fails_the_start_and_closes_the_graph() -> None:
    async def main() -> Graph:
        graph = orchestrator.load(TEST_GRAPHS / "broken_runner.yaml")
        with pytest.raises(RunnerStartupError, match="weights file missing"):
            async with graph:
                raise AssertionError("the graph must not start")
        return graph

    graph = run(main())
    assert graph.state is GraphState.CLOSED
    assert all(not client.ready for client in graph.clients.values())


def test_local_mode_gives_the_same_outputs_in_process() -> None:
    x = json.loads((EXAMPLES / "diamond.input.json").read_text())["x"]

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with orchestrator.load(DIAMOND, local=True) as local:
            assert all(isinstance(c, LocalClient) for c in local.clients.values())
            local_out = await local.run({"x": x})
        async with orchestrator.load(DIAMOND) as pooled:
            return local_out, await pooled.run({"x": x})

    local_out, pooled_out = run(main())
    np.testing.assert_allclose(local_out["y"], pooled_out["y"], rtol=1e-6)
