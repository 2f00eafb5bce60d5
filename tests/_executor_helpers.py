"""Shared by the executor's tests: paths of the test graphs, running a coroutine,
and waiting on a condition with a bounded deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
TEST_GRAPHS = Path(__file__).resolve().parent / "graphs"
EXAMPLES = ROOT / "graphs"

T = TypeVar("T")

if str(TEST_GRAPHS) not in sys.path:  # so tests can build the Probe the graphs expect
    sys.path.insert(0, str(TEST_GRAPHS))

from exec_kit import Probe  # noqa: E402

__all__ = ["EXAMPLES", "ROOT", "TEST_GRAPHS", "Probe", "run", "wait_for"]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail the test past ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)
