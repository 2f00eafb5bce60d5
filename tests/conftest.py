"""Shared test helpers: run a coroutine with a bound, and runner configs for the
test Runnables in ``tests/runnables``."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from runners import RunnerConfig

T = TypeVar("T")
RUNNABLES = Path(__file__).parent / "runnables"


def run(coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
    """``asyncio.run`` with a deadline, so no test can hang."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout_s):
            return await coro

    return asyncio.run(bounded())


def runner_config(runnable: str = "runner_models:Sleepy", **overrides: Any) -> RunnerConfig:
    """A RunnerConfig for a test Runnable (``tests/runnables/models.py``)."""
    settings: dict[str, Any] = {"name": "test", "runnable": runnable, "search_path": RUNNABLES}
    settings.update(overrides)
    return RunnerConfig(**settings)
