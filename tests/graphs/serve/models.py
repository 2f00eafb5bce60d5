"""Runnables and functions of the serving tests.

``Scale`` can be held back from the test: with ``SERVE_TEST_GATE`` set, its
``__init__`` waits until that file exists (so a test controls when the pool
becomes ready); with the variable named ``release_env`` set, ``hold`` waits until that
file exists (so a test controls how long requests stay in flight). Both waits are
bounded.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from runners.runnable import Runnable, method

WAIT_LIMIT_S = 60.0


def _wait_for_file(variable: str) -> None:
    path = os.environ.get(variable)
    deadline = time.monotonic() + WAIT_LIMIT_S
    while path and not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)


class Scale(Runnable):
    """Multiplies by ``factor``."""

    def __init__(self, factor: float = 2.0, release_env: str = "SERVE_TEST_RELEASE") -> None:
        _wait_for_file("SERVE_TEST_GATE")
        self.factor = np.float32(factor)
        self.release_env = release_env

    @method
    def scale(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(x, dtype=np.float32) * self.factor

    @method
    def scale_or_die(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Kills its worker process when ``x`` starts with a negative number."""
        if len(x) and x[0] < 0:
            os._exit(1)
        return np.asarray(x, dtype=np.float32) * self.factor

    @method
    def leak(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Fails with a text an operator would not show to clients."""
        raise PermissionError("cannot open secret=/etc/app/key")

    @method
    def rotate(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.complex64]:
        """Returns complex numbers, which neither JSON nor the OIP carries."""
        return np.asarray(x, dtype=np.complex64) * 1j

    @method
    def hold(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        _wait_for_file(self.release_env)
        return np.asarray(x, dtype=np.float32)


class Gate(Runnable):
    """Each call waits until the file its request names exists (bounded), so a test
    holds and releases requests one by one."""

    @method
    def wait(self, x: npt.NDArray[np.float32], gate: str) -> npt.NDArray[np.float32]:
        deadline = time.monotonic() + WAIT_LIMIT_S
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return np.asarray(x, dtype=np.float32)


def describe(x: npt.NDArray[np.float32], label: str) -> dict[str, Any]:
    """A text and a number computed from the inputs."""
    return {"text": label.upper(), "total": float(np.sum(x))}


def explode(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Always fails, as a buggy user function would."""
    raise ValueError("explode() always fails")


class RowSums(Runnable):
    """Each call brings its own rows; answers every row's sum and the rows of the
    batch it ran in. A batch takes ``delay_s``, so concurrent requests queue."""

    def __init__(self, delay_s: float = 0.2) -> None:
        self.delay_s = delay_s

    @method(batchable=True, batch_dim=0)
    def sums(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        time.sleep(self.delay_s)
        rows = np.full(x.shape[0], x.shape[0], dtype=np.float32)
        return np.stack([x.sum(axis=1), rows], axis=1)


class Latch(Runnable):
    """A batch waits until the file its calls name exists (bounded): a test holds
    the worker busy with one request while others queue and share the next batch."""

    @method(batchable=True, batch_dim=0)
    def hold(self, x: npt.NDArray[np.float32], gate: str) -> npt.NDArray[np.float32]:
        deadline = time.monotonic() + WAIT_LIMIT_S
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return np.asarray(x, dtype=np.float32)


def collector_state() -> dict[str, int]:
    """This process's garbage collector settings (``runners.heap``), for the tests."""
    import gc

    return {"young_threshold": gc.get_threshold()[0], "frozen": gc.get_freeze_count()}


class CollectorState(Runnable):
    """Reports its worker process's garbage collector settings."""

    @method()
    def state(self) -> dict[str, int]:
        return collector_state()
