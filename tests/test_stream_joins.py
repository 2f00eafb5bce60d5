"""Continuous batching: a call joins a streaming batch already running when the
method declares ``joins=True``, within ``max_batch_size`` items running; leaving,
deadlines, a worker crash and a join that comes too late all cover joined items."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from runners import BatchingConfig, CallTimeout, StreamInterrupted, WorkerPool
from tests.conftest import POOL_KINDS, run, runner_config, until

Log = list[tuple[str, Any]]


def _pool(kind: str, step_s: float, max_batch_size: int = 16) -> WorkerPool:
    config = runner_config(
        "stream_models:Joining",
        init={"step_s": step_s},
        batching=BatchingConfig(max_batch_size=max_batch_size, max_latency_ms=30_000),
    )
    return POOL_KINDS[kind](config)


async def _follow(
    pool: WorkerPool, name: str, method: str, value: Any, log: Log, **options: Any
) -> list[Any]:
    """A stream's chunks; each chunk and its end are logged as ``(name, chunk)``."""
    chunks = []
    async with aclosing(pool.stream(method, (value,), {}, **options)) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            log.append((name, chunk))
    log.append((name, "end"))
    return chunks


async def _first(log: Log, name: str) -> None:
    await until(lambda: any(who == name for who, _ in log))


def _tokens(n: int) -> list[str]:
    return [f"t{i}" for i in range(n)]


async def _second_while_first_runs(kind: str, method: str) -> tuple[Log, Any, Any, Any]:
    log: Log = []
    async with _pool(kind, step_s=0.05) as pool:
        first = asyncio.ensure_future(_follow(pool, "A", method, 8, log))
        await _first(log, "A")
        second = await _follow(pool, "B", method, 3, log)
        waits = sum(pool.stats().methods[method].queue_waits)
        assert waits == 2  # each call's, once: when its batch was sent or it joined
        return log, await first, second, await pool.call("seen")


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_call_joins_a_running_stream_and_streams_before_it_ends(kind: str) -> None:
    log, first, second, seen = run(_second_while_first_runs(kind, "joining"))
    assert first == _tokens(8) and second == _tokens(3)
    assert log.index(("B", "t0")) < log.index(("A", "end"))
    assert log.index(("B", "end")) < log.index(("A", "end"))
    assert seen["sizes"] == [2]  # one batch, which B joined


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_streams_started_together_share_one_batch(kind: str) -> None:
    """The second call joins the batch the first was just sent in, before that batch
    starts running: its join is read with the batch's first step, not dropped."""

    async def main() -> tuple[Log, list[list[Any]], Any]:
        log: Log = []
        async with _pool(kind, step_s=0.05) as pool:
            streams = await asyncio.gather(
                _follow(pool, "A", "joining", 8, log), _follow(pool, "B", "joining", 3, log)
            )
            return log, list(streams), await pool.call("seen")

    log, streams, seen = run(main())
    assert streams == [_tokens(8), _tokens(3)]
    assert log.index(("B", "end")) < log.index(("A", "end"))
    assert seen["sizes"] == [2]


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_without_joins_a_call_waits_for_the_next_batch(kind: str) -> None:
    log, first, second, seen = run(_second_while_first_runs(kind, "waiting"))
    assert first == _tokens(8) and second == _tokens(3)
    assert log.index(("A", "end")) < log.index(("B", "t0"))
    assert seen["sizes"] == [1, 1]


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_joining_never_runs_more_than_max_batch_size_items(kind: str) -> None:
    async def main() -> tuple[Log, list[list[Any]], Any]:
        log: Log = []
        async with _pool(kind, step_s=0.03, max_batch_size=2) as pool:
            a = asyncio.ensure_future(_follow(pool, "A", "joining", 4, log))
            await _first(log, "A")
            b = asyncio.ensure_future(_follow(pool, "B", "joining", 12, log))
            await _first(log, "B")
            c = await _follow(pool, "C", "joining", 3, log)
            return log, [await a, await b, c], await pool.call("seen")

    log, streams, seen = run(main())
    assert streams == [_tokens(4), _tokens(12), _tokens(3)]
    assert log.index(("A", "end")) < log.index(("C", "t0"))  # C waited for room
    assert log.index(("C", "end")) < log.index(("B", "end"))  # then joined B's batch
    assert seen["sizes"] == [3] and seen["peak"] == 2


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_caller_that_leaves_stops_only_its_joined_item(kind: str) -> None:
    async def leave_early(pool: WorkerPool) -> list[Any]:
        async with aclosing(pool.stream("joining", (100_000,), {})) as chunks:
            return [await anext(chunks), await anext(chunks)]

    async def main() -> tuple[list[Any], list[Any], Any]:
        log: Log = []
        async with _pool(kind, step_s=0.02) as pool:
            stays = asyncio.ensure_future(_follow(pool, "A", "joining", 20, log))
            await _first(log, "A")
            left = await leave_early(pool)
            return left, await stays, await pool.call("seen")

    left, stayed, seen = run(main())
    assert left == ["t0", "t1"]
    assert stayed == _tokens(20)
    assert seen["stopped"] == [1] and seen["sizes"] == [2]


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_deadlines_end_joined_items_and_calls_waiting_to_join(kind: str) -> None:
    async def main() -> tuple[list[Any], BaseException, Log, Any]:
        log: Log = []
        async with _pool(kind, step_s=0.02, max_batch_size=2) as pool:
            stays = asyncio.ensure_future(_follow(pool, "A", "joining", 100, log))  # >= 2 s
            await _first(log, "A")
            with pytest.raises(TimeoutError):  # the caller's deadline, as a graph node has
                async with asyncio.timeout(1.0):
                    joined = asyncio.ensure_future(_follow(pool, "B", "joining", 10**6, log))
                    await _first(log, "B")
                    deadline = time.monotonic() + 0.1
                    with pytest.raises(CallTimeout) as waited:  # the batch is full
                        await _follow(pool, "C", "joining", 1, log, deadline=deadline)
                    await joined
            return await stays, waited.value, log, await pool.call("seen")

    stayed, waited, log, seen = run(main())
    assert stayed == _tokens(100)
    assert "deadline" in str(waited) and ("C", "t0") not in log
    assert seen["stopped"] == [1] and seen["sizes"] == [2]


def test_a_crash_fails_joined_items_that_streamed_and_retries_the_others() -> None:
    async def outcome(pool: WorkerPool, name: str, role: str, log: Log) -> Any:
        try:
            return await _follow(pool, name, "roles", role, log)
        except StreamInterrupted as exc:
            return exc

    async def main() -> list[Any]:
        log: Log = []
        async with _pool("process", step_s=0.02) as pool:
            lead = asyncio.ensure_future(outcome(pool, "A", "lead", log))
            await _first(log, "A")
            talk = asyncio.ensure_future(outcome(pool, "B", "talk", log))
            await _first(log, "B")
            quiet = await outcome(pool, "C", "quiet", log)  # joins; the worker dies
            return [await lead, await talk, quiet, pool.stats().restarts]

    lead, talk, quiet, restarts = run(main())
    assert isinstance(lead, StreamInterrupted) and isinstance(talk, StreamInterrupted)
    assert quiet == ["q"]  # no chunk before the crash: run again on the new worker
    assert restarts == 1


def test_joins_a_lost_worker_never_took_run_again_as_they_were() -> None:
    """The worker is paused, so the joins sent to its batch stay unread, then killed:
    those calls never ran, so they are not counted as crashed (which would run each
    alone): they share the next batch."""

    async def outcome(pool: WorkerPool, name: str, n: int, log: Log) -> Any:
        try:
            return await _follow(pool, name, "joining", n, log)
        except StreamInterrupted as exc:
            return exc

    async def main() -> tuple[list[Any], Any, int]:
        log: Log = []
        async with _pool("process", step_s=0.02) as pool:
            lead = asyncio.ensure_future(outcome(pool, "A", 10**6, log))
            await _first(log, "A")
            (pid,) = pool.stats().worker_pids.values()
            os.kill(pid, signal.SIGSTOP)
            joins = asyncio.gather(outcome(pool, "B", 2, log), outcome(pool, "C", 3, log))
            await until(lambda: pool.stats().methods["joining"].in_flight == 3)
            os.kill(pid, signal.SIGKILL)
            outcomes = [await lead, *await joins]
            return outcomes, await pool.call("seen"), pool.stats().restarts

    (lead, joined_b, joined_c), seen, restarts = run(main())
    assert isinstance(lead, StreamInterrupted)
    assert joined_b == _tokens(2) and joined_c == _tokens(3)
    assert seen["sizes"] == [2] and restarts == 1  # one batch on the new worker


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_join_that_reaches_a_finished_batch_runs_in_the_next(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "release"

    async def main() -> tuple[list[Any], list[Any], int, Any]:
        log: Log = []
        async with _pool(kind, step_s=0.0) as pool:
            first = asyncio.ensure_future(_follow(pool, "A", "gated", str(marker), log))
            await _first(log, "A")  # the batch now waits for the marker, then returns
            second = asyncio.ensure_future(_follow(pool, "B", "gated", str(marker), log))
            await until(lambda: pool.stats().methods["gated"].in_flight == 2)  # join sent
            marker.touch()
            streams = await first, await second
            waits = sum(pool.stats().methods["gated"].queue_waits)
            return *streams, waits, await pool.call("seen")

    first, second, waits, seen = run(main())
    assert first == ["g0"] and second == ["g0"]
    assert seen["sizes"] == [1, 1]  # B never ran in the first batch: it ran in its own
    assert waits == 2  # one queue wait per call: B's join that was not taken is not one


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_join_never_taken_keeps_its_deadline(kind: str, tmp_path: Path) -> None:
    """B is sent to join a batch that never reads it, and its deadline passes
    meanwhile: back in the queue, it times out instead of running late."""
    marker = tmp_path / "release"

    async def main() -> tuple[list[Any], BaseException, Log, Any]:
        log: Log = []
        async with _pool(kind, step_s=0.0) as pool:
            first = asyncio.ensure_future(_follow(pool, "A", "gated", str(marker), log))
            await _first(log, "A")  # the batch now waits for the marker, then returns
            deadline = time.monotonic() + 0.2
            late = asyncio.ensure_future(
                _follow(pool, "B", "gated", str(marker), log, deadline=deadline)
            )
            await until(lambda: pool.stats().methods["gated"].in_flight == 2)  # join sent
            await until(lambda: time.monotonic() > deadline)
            marker.touch()
            with pytest.raises(CallTimeout) as waited:
                await late
            return await first, waited.value, log, await pool.call("seen")

    first, waited, log, seen = run(main())
    assert first == ["g0"] and ("B", "g0") not in log
    assert "deadline" in str(waited) and seen["sizes"] == [1]


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_call_that_can_join_is_admitted_whatever_the_streams_last(kind: str) -> None:
    async def main() -> tuple[float, list[Any]]:
        log: Log = []
        async with _pool(kind, step_s=0.05) as pool:
            await _follow(pool, "warm", "joining", 8, log)  # streams are measured at 0.4 s
            stays = asyncio.ensure_future(_follow(pool, "A", "joining", 30, log))
            await _first(log, "A")
            deadline = time.monotonic() + 0.2  # shorter than a stream, not than a step
            joined = await _follow(pool, "B", "joining", 2, log, deadline=deadline)
            await stays
            return pool.stats().methods["joining"].batch_time_s_sum, joined

    measured, joined = run(main())
    assert measured > 0.4 and joined == _tokens(2)


def test_a_join_read_with_its_batch_s_call_is_taken_in_order() -> None:
    """The worker, paused, reads A's call and B's join in one read; C joins later.
    Each caller gets its own item's chunks: B's join is not skipped (which would
    give C's chunks to B)."""

    async def main() -> dict[str, list[Any]]:
        log: Log = []
        async with _pool("process", step_s=0.02) as pool:

            async def follow(name: str, n: int) -> list[Any]:
                chunks = []
                async with aclosing(pool.stream("tagged", (name, n), {})) as stream:
                    async for chunk in stream:
                        chunks.append(chunk)
                        log.append((name, chunk))
                return chunks

            def in_flight() -> int:
                return pool.stats().methods["tagged"].in_flight

            (pid,) = pool.stats().worker_pids.values()
            os.kill(pid, signal.SIGSTOP)
            try:
                first = asyncio.ensure_future(follow("A", 20))
                await until(lambda: in_flight() == 1)  # A's call sent
                second = asyncio.ensure_future(follow("B", 3))
                await until(lambda: in_flight() == 2)  # B's join sent
            finally:
                os.kill(pid, signal.SIGCONT)
            await _first(log, "A")
            third = await follow("C", 3)
            return {"A": await first, "B": await second, "C": third}

    got = run(main())
    sizes = {"A": 20, "B": 3, "C": 3}
    assert got == {name: [f"{name}:{k}" for k in range(n)] for name, n in sizes.items()}
