"""Shared test helpers: run a coroutine with a bound, wait for a condition with a
bound (never a fixed sleep), runner configs for the test Runnables in
``tests/runnables``, the two kinds of pool and the two event loops a test runs
under, a stream's chunks and the records of a JSON log."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable, Coroutine
from contextlib import aclosing
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from runners import LocalClient, RunnerClient, RunnerConfig, WorkerPool

T = TypeVar("T")
RUNNABLES = Path(__file__).parent / "runnables"
# Worker processes, or the in-process worker of ``--local``: the same answers from both.
POOL_KINDS: dict[str, Callable[[RunnerConfig], WorkerPool]] = {
    "process": WorkerPool,
    "local": LocalClient,
}
LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None
LOOPS = pytest.mark.parametrize(
    "loop_factory", [None, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)


def run(
    coro: Coroutine[Any, Any, T],
    timeout_s: float = 60.0,
    loop_factory: LoopFactory = None,
) -> T:
    """``asyncio.run`` with a deadline, so no test can hang; ``loop_factory`` picks
    the event loop (e.g. ``uvloop.new_event_loop``)."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout_s):
            return await coro

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(bounded())


def wait_until(
    condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition"
) -> None:
    """Poll ``condition`` from sync code until it holds; fail past ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


async def until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Poll ``condition`` from a coroutine until it holds; fail past ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the condition is another process's state
            await asyncio.sleep(0.01)


def runner_config(runnable: str = "runner_models:Sleepy", **overrides: Any) -> RunnerConfig:
    """A RunnerConfig for a test Runnable (``tests/runnables/models.py``)."""
    settings: dict[str, Any] = {"name": "test", "runnable": runnable, "search_path": RUNNABLES}
    settings.update(overrides)
    return RunnerConfig(**settings)


async def collect(pool: RunnerClient, method: str, *args: Any) -> list[Any]:
    """Every chunk of one call of a streaming method (the stream closed after)."""
    async with aclosing(pool.stream(method, args, {})) as chunks:
        return [chunk async for chunk in chunks]


def json_lines(buffer: io.StringIO) -> list[dict[str, object]]:
    """The records a JSON-lines log wrote to ``buffer``."""
    return [json.loads(line) for line in buffer.getvalue().splitlines()]
