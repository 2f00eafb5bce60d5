"""Worker start-up failures end within their bounds, under both event loops, and
leave no process behind."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from pathlib import Path

import psutil
import pytest

from runners import RunnerStartupError, WorkerPool
from runners.process import ProcessWorker, spawn
from tests._worker_events import RecordedEvents
from tests.conftest import LOOPS, LoopFactory, run, runner_config

MODELS = '''
import subprocess
import sys
import time
from pathlib import Path

from runners import Runnable, method


class Hangs(Runnable):
    """A constructor that never returns (a download that stalls)."""

    def __init__(self) -> None:
        time.sleep(3600)

    @method
    def f(self, x: int) -> int:
        return x


class Slow(Runnable):
    """A constructor that takes ``delay_s`` (weights that load slowly)."""

    def __init__(self, delay_s: float) -> None:
        time.sleep(delay_s)

    @method
    def f(self, x: int) -> int:
        return x


class ForksThenRaises(Runnable):
    """Starts a process that keeps the worker's output open, then fails."""

    def __init__(self, pid_file: str) -> None:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        Path(pid_file).write_text(str(child.pid))
        raise RuntimeError("no weights")

    @method
    def f(self, x: int) -> int:
        return x
'''


@pytest.fixture
def models(tmp_path: Path) -> Path:
    (tmp_path / "startup_models.py").write_text(MODELS)
    return tmp_path


def _no_worker_left() -> bool:
    return not psutil.Process().children(recursive=True)


@LOOPS
def test_a_constructor_that_never_returns_fails_at_the_startup_timeout(
    models: Path, loop_factory: LoopFactory
) -> None:
    config = runner_config(
        "startup_models:Hangs", search_path=models, workers=2, startup_timeout_s=0.5
    )

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(RunnerStartupError, match=r"no READY within 0\.5 s"):
            await WorkerPool(config).start()
        assert _no_worker_left()
        return time.monotonic() - started

    assert run(main(), timeout_s=30.0, loop_factory=loop_factory) < 20.0


@LOOPS
def test_a_failed_start_ends_even_when_a_child_keeps_the_output_open(
    models: Path, loop_factory: LoopFactory
) -> None:
    pid_file = models / "child.pid"
    config = runner_config(
        "startup_models:ForksThenRaises",
        search_path=models,
        init={"pid_file": str(pid_file)},
        startup_timeout_s=20.0,
    )

    async def main() -> None:
        with pytest.raises(RunnerStartupError, match="RuntimeError: no weights"):
            await WorkerPool(config).start()

    try:
        run(main(), timeout_s=30.0, loop_factory=loop_factory)
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@LOOPS
def test_cancelling_a_start_leaves_no_worker(models: Path, loop_factory: LoopFactory) -> None:
    config = runner_config("startup_models:Hangs", search_path=models, workers=2)

    async def main() -> None:
        pool = WorkerPool(config)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await pool.start()
        assert _no_worker_left()

    run(main(), timeout_s=30.0, loop_factory=loop_factory)


def test_a_slow_constructor_is_named_in_the_log_while_it_loads(
    models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = runner_config(
        "startup_models:Slow", search_path=models, init={"delay_s": 0.7}, startup_timeout_s=30.0
    )

    async def main() -> ProcessWorker:
        worker = await spawn(config, 3, {}, RecordedEvents(), notice_every_s=0.2)
        await worker.reap(5.0)
        return worker

    caplog.set_level(logging.WARNING, logger="runners.worker")
    worker = run(main(), timeout_s=30.0)
    notices = [r.message for r in caplog.records if "still starting" in r.message]
    assert notices, "no notice while the constructor ran"
    assert re.fullmatch(
        r"\[test/worker-3\] still starting after \d+\.\d s \(no READY yet; start-up timeout 30 s\)",
        notices[0],
    )
    assert worker.ready.done()
