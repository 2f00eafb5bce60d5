"""Runnables and functions of the executor's test graphs: sleeps, failures, and a
``Probe`` object (passed as an input from Python) that records what happened."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from runners.errors import Overloaded
from runners.runnable import Runnable, method


@dataclass
class Probe:
    """Shared with the test: when nodes started, finished or were cancelled."""

    events: list[tuple[str, str, float]] = field(default_factory=list)
    attempts: int = 0
    started: threading.Event = field(default_factory=threading.Event)

    def record(self, name: str, what: str) -> None:
        self.events.append((name, what, time.monotonic()))

    def times(self, name: str, what: str) -> list[float]:
        return [t for n, w, t in self.events if n == name and w == what]


class Sleeper(Runnable):
    """A model whose call takes ``ms`` milliseconds, one call at a time."""

    @method
    def nap(self, x: Any, ms: float) -> Any:
        time.sleep(ms / 1000)
        return x


class Tagger(Runnable):
    """A batched model that tells each caller the size of the batch it was served in."""

    @method(batchable=True, stack=True)
    def tag(self, x: list[Any]) -> list[dict[str, Any]]:
        time.sleep(0.02)
        return [{"x": value, "batch": len(x)} for value in x]


async def wait_ms(ms: float, name: str, probe: Probe | None = None, x: Any = None) -> Any:
    """Sleep on the event loop, recording start, end or cancellation."""
    if probe is not None:
        probe.record(name, "start")
        probe.started.set()
    try:
        await asyncio.sleep(ms / 1000)
    except asyncio.CancelledError:
        if probe is not None:
            probe.record(name, "cancelled")
        raise
    if probe is not None:
        probe.record(name, "end")
    return x if x is not None else name


def block_ms(ms: float, x: Any = None) -> Any:
    """A sync function that blocks its thread (never the event loop)."""
    time.sleep(ms / 1000)
    return x


async def fail_after(ms: float, message: str = "bad input") -> None:
    await asyncio.sleep(ms / 1000)
    raise ValueError(message)


def fail(x: Any = None) -> None:
    raise ValueError(f"cannot handle {x!r}")


def ident(x: Any) -> Any:
    return x


def join(*_: Any, **values: Any) -> dict[str, Any]:
    return values


async def flaky(probe: Probe, slow_attempts: int) -> str:
    """Slower than any timeout for the first ``slow_attempts`` attempts, then fast."""
    probe.attempts += 1
    probe.record("flaky", "start")
    if probe.attempts <= slow_attempts:
        await asyncio.sleep(30)
    return f"ok after {probe.attempts} attempts"


def count_and_fail(probe: Probe) -> None:
    """A non-retryable error: counts how often it was tried."""
    probe.attempts += 1
    raise ValueError("a user error is not retried")


class Exploder(Runnable):
    """A model whose method always raises (a user error inside a worker)."""

    @method
    def explode(self, x: Any) -> Any:
        raise RuntimeError(f"model cannot score {x!r}")


class Broken(Runnable):
    """A model that cannot load."""

    def __init__(self) -> None:
        raise OSError("weights file missing: /models/broken.bin")

    @method
    def predict(self, x: Any) -> Any:
        return x


def overloaded_once(probe: Probe, retry_after_s: float) -> str:
    """Refused as an overloaded pool would refuse it on the first attempt, then served."""
    probe.attempts += 1
    probe.record("overloaded", "start")
    if probe.attempts == 1:
        raise Overloaded("busy, come back later", retry_after_s=retry_after_s)
    return f"ok after {probe.attempts} attempts"


def fail_if(x: Any, fail: bool) -> Any:
    """``x``, or a ValueError when ``fail``."""
    if fail:
        raise ValueError("asked to fail")
    return x
