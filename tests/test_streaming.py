"""Streaming methods through a pool: chunks reach each caller as they are made,
batched streams share one generator, a caller that leaves stops its item, and a
failure mid-stream reaches the callers after their first chunks."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing
from typing import Any

import pytest

from runners import BatchingConfig, MethodError, RunnerError, UnsupportedValue, WorkerPool
from tests.conftest import POOL_KINDS, collect, run, runner_config, until


def _pool(kind: str, step_s: float = 0.0, **batching: Any) -> WorkerPool:
    config = runner_config(
        "stream_models:Counter",
        init={"step_s": step_s},
        batching=BatchingConfig(max_batch_size=16, **batching),
    )
    return POOL_KINDS[kind](config)


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_an_unbatched_generator_streams_its_chunks_in_order(kind: str) -> None:
    async def main() -> list[Any]:
        async with _pool(kind) as pool:
            return await collect(pool, "count", 5)

    assert run(main()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_generator_from_a_method_not_declared_a_stream_is_refused(kind: str) -> None:
    async def main() -> list[Any]:
        async with _pool(kind) as pool:
            with pytest.raises(UnsupportedValue, match=r"declare it @method\(stream=True\)"):
                await pool.call("undeclared", 3)
            return await collect(pool, "count", 2)  # the worker serves on

    assert run(main()) == [0, 1]


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_the_first_chunk_arrives_while_the_stream_still_runs(kind: str) -> None:
    async def main() -> tuple[Any, list[Any]]:
        async with _pool(kind) as pool, aclosing(pool.stream("count", (5, 0.05), {})) as chunks:
            first = await anext(chunks)
            stats = pool.stats().methods["count"]
            return first, [stats.in_flight, *[c async for c in chunks]]

    first, rest = run(main())
    assert first == 0
    assert rest == [1, 1, 2, 3, 4]  # in flight when the first chunk came


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_concurrent_streams_share_a_batch_and_finish_at_their_own_step(kind: str) -> None:
    lengths = [3, 1, 5, 2, 4, 0]

    async def main() -> tuple[list[list[Any]], dict[str, Any]]:
        async with _pool(kind, step_s=0.02, max_latency_ms=5000) as pool:
            streams = await asyncio.gather(*(collect(pool, "tokens", n) for n in lengths))
            return streams, await pool.call("seen")

    streams, seen = run(main())
    assert streams == [[f"t{i}" for i in range(n)] for n in lengths]
    assert max(seen["sizes"]) > 1


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_an_async_generator_streams_in_batches(kind: str) -> None:
    async def main() -> list[list[Any]]:
        async with _pool(kind, step_s=0.01) as pool:
            return list(await asyncio.gather(*(collect(pool, "atokens", n) for n in (2, 3))))

    assert run(main()) == [["a0", "a1"], ["a0", "a1", "a2"]]


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_caller_that_leaves_stops_its_item_and_frees_the_worker(kind: str) -> None:
    async def main() -> tuple[list[Any], list[Any], dict[str, Any]]:
        async with _pool(kind, step_s=0.01) as pool:
            async with aclosing(pool.stream("tokens", (100_000,), {})) as chunks:
                taken = [await anext(chunks), await anext(chunks)]
            after = await collect(pool, "tokens", 2)  # one worker: free again
            return taken, after, await pool.call("seen")

    taken, after, seen = run(main(), timeout_s=30)
    assert taken == ["t0", "t1"]
    assert after == ["t0", "t1"]
    assert seen["closed_at"][0] < 1000  # closed when its one caller left


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_caller_that_leaves_a_batch_is_stopped_and_the_others_go_on(kind: str) -> None:
    async def leave_early(pool: WorkerPool) -> list[Any]:
        async with aclosing(pool.stream("tokens", (100_000,), {})) as chunks:
            return [await anext(chunks), await anext(chunks)]

    async def main() -> tuple[list[Any], list[Any], dict[str, Any]]:
        async with _pool(kind, step_s=0.01, max_latency_ms=5000) as pool:
            busy = asyncio.ensure_future(collect(pool, "count", 3, 0.05))
            await until(lambda: pool.stats().methods["count"].in_flight == 1)
            left, stayed = await asyncio.gather(leave_early(pool), collect(pool, "tokens", 6))
            await busy
            return left, stayed, await pool.call("seen")

    left, stayed, seen = run(main(), timeout_s=30)
    assert left == ["t0", "t1"]
    assert stayed == [f"t{i}" for i in range(6)]
    assert seen["sizes"] == [2]
    assert seen["stopped"] == [0]  # the method was told, and went on for item 1


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_failure_mid_stream_follows_the_chunks_already_sent(kind: str) -> None:
    async def main() -> tuple[list[Any], BaseException | None]:
        received: list[Any] = []
        async with _pool(kind) as pool:
            try:
                async with aclosing(pool.stream("tokens", (-1,), {})) as chunks:
                    async for chunk in chunks:
                        received.append(chunk)
            except MethodError as exc:
                return received, exc
        return received, None

    received, error = run(main())
    assert received == ["t0", "t1"]
    assert isinstance(error, MethodError) and "broke at step 2" in str(error)


def test_a_method_that_does_not_stream_is_refused_as_a_stream() -> None:
    async def main() -> None:
        async with _pool("local") as pool:
            with pytest.raises(RunnerError, match="not a streaming method"):
                await collect(pool, "seen")

    run(main())


@pytest.mark.parametrize("method", ["joining", "waiting"])
def test_a_lone_stream_after_bursts_of_streams_starts_at_once(method: str) -> None:
    """Bursts of concurrent streams teach the pool a batch time of a whole stream
    and a high arrival rate; a lone stream then sent to the free worker is not
    held for a fuller batch: its first chunk comes within a couple of steps (the
    step measured on the lone stream itself)."""
    config = runner_config(
        "stream_models:Joining",
        init={"step_s": 0.02},
        batching=BatchingConfig(max_batch_size=16, max_latency_ms=30_000),
    )

    async def main() -> tuple[float, list[float], int]:
        async with WorkerPool(config) as pool:
            for burst in (12, 4, 8):
                await asyncio.gather(*(collect(pool, method, 30) for _ in range(burst)))
            await collect(pool, method, 1)  # a call just before: arrivals look frequent
            sent, arrivals = time.monotonic(), []
            async with aclosing(pool.stream(method, (6,), {})) as chunks:
                async for _ in chunks:
                    arrivals.append(time.monotonic())
            return sent, arrivals, pool.stats().methods[method].waits

    sent, arrivals, waits = run(main(), timeout_s=60)
    step = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
    assert len(arrivals) == 6
    assert arrivals[0] - sent < 3 * step, (arrivals[0] - sent, step)
    assert waits == 0  # no free worker ever held a stream's queue


def test_a_pool_closed_mid_stream_stops_its_worker_without_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Shutting down while a stream runs is not the method's failure: the worker
    leaves quietly, with no error or traceback in the operator's log."""

    async def main() -> None:
        config = runner_config("stream_models:Counter", init={"step_s": 0.0})
        async with WorkerPool(config, drain_timeout_s=0.2) as pool:
            chunks = pool.stream("count", (100_000, 0.01), {})
            await anext(chunks)  # running in the worker when the pool closes
        await chunks.aclose()

    with caplog.at_level(logging.WARNING):
        run(main())
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == ["runner 'test': calls still pending at shutdown"]
