"""The worker process on its own: the handshake and the call protocol."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from runners.codec import FrameAssembler, decode, encode, recv_frames, send_frame
from tests.conftest import RUNNABLES

ROOT = Path(__file__).resolve().parent.parent


class WorkerUnderTest:
    def __init__(self, runnable: str, init: dict[str, Any] | None = None) -> None:
        ours, theirs = socket.socketpair()
        settings = {
            "runner": "w",
            "runnable": runnable,
            "search_path": str(RUNNABLES),
            "init": init or {},
            "worker": 0,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runners.worker",
                "--fd",
                str(theirs.fileno()),
                "--config",
                json.dumps(settings),
            ],
            pass_fds=(theirs.fileno(),),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        theirs.close()
        ours.settimeout(30)
        self.sock = ours
        self.assembler = FrameAssembler()
        self.pending: list[Any] = []

    def receive(self) -> Any:
        if not self.pending:
            self.pending = [decode(*f) for f in recv_frames(self.sock, self.assembler)]
        return self.pending.pop(0) if self.pending else None

    def call(self, batch_id: int, method: str, *args: Any, **kwargs: Any) -> Any:
        send_frame(self.sock, encode(["call", batch_id, method, list(args), kwargs]))
        return self.receive()

    def close(self) -> int:
        self.sock.close()
        return self.process.wait(timeout=30)


@pytest.fixture
def worker() -> Iterator[WorkerUnderTest]:
    under_test = WorkerUnderTest("runner_models:Sleepy", {"delay_s": 0.0, "offset": 1.0})
    try:
        yield under_test
    finally:
        under_test.close()


def test_ready_lists_the_methods(worker: WorkerUnderTest) -> None:
    kind, pid, methods = worker.receive()
    assert kind == "ready" and pid == worker.process.pid
    assert methods["predict"] == [True, 0, True, False, False]
    assert methods["columns"] == [True, 1, True, False, False]
    assert methods["rows"] == [True, 0, False, False, False]
    assert methods["describe"] == [False, 0, False, False, False]


def test_calls_are_answered_with_their_batch_id(worker: WorkerUnderTest) -> None:
    worker.receive()
    kind, batch_id, value = worker.call(7, "predict", np.ones((2, 3), np.float32))
    assert (kind, batch_id) == ("ok", 7)
    np.testing.assert_array_equal(value, np.full((2, 3), 3.0))
    assert worker.call(8, "describe", "x", repeat=3)[2]["text"] == "xxx"


def test_a_raising_method_is_answered_and_the_worker_lives(worker: WorkerUnderTest) -> None:
    worker.receive()
    assert worker.call(1, "maybe_fail", [-1]) == [
        "error",
        1,
        "ValueError",
        "negative input in [-1]",
    ]
    assert worker.call(2, "nope")[:3] == ["error", 2, "LookupError"]
    assert worker.call(3, "maybe_fail", [1]) == ["ok", 3, [2]]


def test_pings_are_answered_also_when_sent_with_a_call(worker: WorkerUnderTest) -> None:
    worker.receive()
    two = encode(["ping", 5])[0] + encode(["call", 9, "echo", ["x"], {}])[0]
    worker.sock.sendall(two)  # one write: the worker receives both frames at once
    assert worker.receive() == ["pong", 5]
    assert worker.receive() == ["ok", 9, "x"]


def test_the_worker_exits_at_end_of_stream(worker: WorkerUnderTest) -> None:
    worker.receive()
    assert worker.close() == 0


def test_a_failing_constructor_is_reported_then_the_worker_exits() -> None:
    broken = WorkerUnderTest("runner_models:Broken")
    assert broken.receive() == ["failed", "RuntimeError", "weights file missing"]
    assert broken.receive() is None
    broken.close()


def test_an_unknown_class_is_reported() -> None:
    missing = WorkerUnderTest("runner_models:Nope")
    kind, error_type, _ = missing.receive()
    assert (kind, error_type) == ("failed", "AttributeError")
    missing.close()


def _wait_gone(pids: list[int], timeout_s: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [
            p
            for p in alive
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        time.sleep(0.02)
    return alive


def test_workers_die_with_a_killed_parent() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-m", "tests._runner_parent"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        assert _wait_gone(pids) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
        if parent.stdout is not None:
            parent.stdout.close()


def test_a_join_grows_a_running_stream_and_a_late_one_is_left_unanswered() -> None:
    worker = WorkerUnderTest("stream_models:Joining", {"step_s": 0.01})
    try:
        assert worker.receive()[0] == "ready"
        send_frame(worker.sock, encode(["call", 1, "joining", [[10**6]], {}]))
        assert worker.receive() == ["chunk", 1, ["t0"]]
        send_frame(worker.sock, encode(["join", 1, [[2]], {}]))
        while (frame := worker.receive())[0] == "chunk":
            assert len(frame[2]) == 1
        assert frame == ["joined", 1, 2]
        send_frame(worker.sock, encode(["stop", 1, 0]))
        frames = []
        while (frame := worker.receive())[0] != "ok":
            frames.append(frame)
        assert frame == ["ok", 1, None]
        assert all(len(f[2]) == 2 for f in frames if f[0] == "chunk")
        assert [f[2][1] for f in frames if f[0] == "chunk" and f[2][1]] == ["t0", "t1"]
        assert frames[-1] == ["end", 1, 1]
        send_frame(worker.sock, encode(["join", 1, [[2]], {}]))  # the batch is over
        assert worker.call(2, "seen") == ["ok", 2, {"sizes": [2], "peak": 2, "stopped": [0]}]
    finally:
        worker.close()
