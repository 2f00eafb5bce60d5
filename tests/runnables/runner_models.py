"""Runnables for the runner tests: each exercises one behaviour of the pool."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import numpy as np

from runners import Runnable, method


class Sleepy(Runnable):
    """Every batch takes ``delay_s``; records the batch sizes it saw."""

    def __init__(self, delay_s: float = 0.02, offset: float = 0.0) -> None:
        self.delay_s = delay_s
        self.offset = offset
        self.sizes: list[int] = []

    @method(batchable=True, batch_dim=0, stack=True)
    def predict(self, x: np.ndarray) -> np.ndarray:
        """One item per call, stacked."""
        time.sleep(self.delay_s)
        self.sizes.append(int(x.shape[0]))
        return x * 2.0 + self.offset

    @method(batchable=True, batch_dim=0)
    def rows(self, x: np.ndarray) -> np.ndarray:
        """Each call brings its own rows (concatenated); answers each row's sum and the
        number of rows of the batch it ran in."""
        time.sleep(self.delay_s)
        self.sizes.append(int(x.shape[0]))
        sums = x.reshape(x.shape[0], -1).sum(axis=1)
        return np.stack([sums, np.full(x.shape[0], float(x.shape[0]))], axis=1)

    @method(batchable=True)
    def words(self, x: list[str]) -> list[str]:
        """A list per call: the lists are joined, and the answer split back."""
        return [f"{w}/{len(x)}" for w in x]

    @method(batchable=True, batch_dim=1, stack=True)
    def columns(self, x: np.ndarray) -> np.ndarray:
        total: np.ndarray = x.sum(axis=1, keepdims=True) + x  # each item plus the sum of all
        return total

    @method
    def seen_sizes(self) -> list[int]:
        return list(self.sizes)

    @method
    def describe(self, text: str, *, repeat: int = 1) -> dict[str, Any]:
        return {"text": text * repeat, "pid": os.getpid()}

    @method(batchable=True, stack=True)
    def maybe_fail(self, x: list[int]) -> list[int]:  # one int per item
        if any(v < 0 for v in x):
            raise ValueError(f"negative input in {x}")
        return [v + 1 for v in x]

    @method(batchable=True, stack=True)
    def noop(self, x: np.ndarray) -> np.ndarray:
        return x

    @method
    def echo(self, value: Any) -> Any:
        return value

    @method
    def bad_value(self) -> Any:
        return object()

    @method
    def env(self, name: str) -> str | None:
        return os.environ.get(name)

    @method
    def thread_name(self) -> str:
        return threading.current_thread().name

    @method
    def crash(self) -> None:
        os._exit(3)

    @method
    def hang(self) -> None:
        while True:
            time.sleep(1.0)


class Broken(Runnable):
    """A constructor that raises."""

    def __init__(self) -> None:
        raise RuntimeError("weights file missing")

    @method
    def predict(self, x: Any) -> Any:
        return x


class Threaded(Runnable):
    SUPPORTS_CPU_MULTI_THREADING = True


class OnGpu(Runnable):
    SUPPORTED_RESOURCES = ("nvidia.com/gpu", "cpu")


class Flaky(Runnable):
    """Starts only while ``marker`` does not exist: lets a test break restarts."""

    def __init__(self, marker: str) -> None:
        if os.path.exists(marker):
            raise RuntimeError("marker present")

    @method
    def crash(self) -> None:
        os._exit(3)

    @method
    def ping(self) -> str:
        return "pong"


class GpuEnv(Runnable):
    SUPPORTED_RESOURCES = ("nvidia.com/gpu", "cpu")

    @method
    def env(self, name: str) -> str | None:
        return os.environ.get(name)


class Awaiting(Runnable):
    """``async def`` methods, batchable or not; remembers every event loop they ran on."""

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []  # kept alive: ids stay distinct

    async def _tick(self) -> None:
        await asyncio.sleep(0.001)
        self.loops.append(asyncio.get_running_loop())

    @method(batchable=True, stack=True)
    async def double(self, x: list[int]) -> list[int]:  # one int per item
        await self._tick()
        return [2 * v for v in x]

    @method
    async def greet(self, name: str) -> str:
        await self._tick()
        return f"hello {name}"

    @method
    async def refuse(self, reason: str) -> None:
        await self._tick()
        raise PermissionError(reason)

    @method
    def loop_count(self) -> int:
        return len({id(loop) for loop in self.loops})


class Fields(Runnable):
    """Answers the log fields bound while its batch runs (``runners.log_context``)."""

    @method(batchable=True)
    def fields(self, x: list[int]) -> list[dict[str, Any]]:
        from runners import log_context

        bound = dict(log_context.current())
        return [bound for _ in x]

    @method
    async def fields_async(self, x: int) -> dict[str, Any]:
        from runners import log_context

        return dict(log_context.current())
