"""Real ``graphctl worker`` processes on loopback ports, for the worker-host tests:
each started on a free port (or a given one), waited for until it listens, and
stopped by the test or at the end of its ``with`` block."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runners import codec
from runners.remote import protocol
from tests._serve_helpers import CLI, ROOT, free_port
from tests.conftest import wait_until

REMOTE_GRAPHS = ROOT / "tests" / "graphs" / "remote"
REMOTE_GRAPH = REMOTE_GRAPHS / "remote.yaml"
TOKEN = "s3cret-for-tests"
# Short timeouts so that a lost host is noticed and a restarted one used again quickly.
FAST = [
    "runners.doubler.remote.reconnect_backoff_s=0.05",
    "runners.doubler.remote.reconnect_backoff_cap_s=0.2",
    "runners.doubler.remote.heartbeat_interval_s=0.2",
    "runners.doubler.remote.dead_peer_timeout_s=2",
]


def endpoints_set(ports: Sequence[int], runner: str = "doubler") -> str:
    """The ``--set`` string pointing ``runner`` at workers on these loopback ports."""
    listed = ", ".join(f'"127.0.0.1:{port}"' for port in ports)
    return f"runners.{runner}.endpoints=[{listed}]"


class WorkerProcess:
    """``graphctl worker GRAPH --runner NAME --listen 127.0.0.1:PORT`` as a child."""

    def __init__(
        self,
        *args: str,
        graph: Path = REMOTE_GRAPH,
        port: int | None = None,
        token: str | None = TOKEN,
        host: str = "127.0.0.1",
        runner: str = "doubler",
        wait: bool = True,
        prefix: Sequence[str] = (),  # e.g. `ip netns exec NS`, to run it on another host
    ) -> None:
        self.port = port or free_port()
        env = {k: v for k, v in os.environ.items() if k != protocol.TOKEN_ENV}
        if token is not None:
            env[protocol.TOKEN_ENV] = token
        command = [*prefix, sys.executable, "-c", CLI, "worker", str(graph), "--runner", runner]
        command += ["--listen", f"{host}:{self.port}", *args]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            self.wait_listening()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_listening(self) -> None:
        wait_until(
            lambda: "listening on" in self.output or self.process.poll() is not None,
            what="graphctl worker to listen",
        )
        assert self.process.poll() is None, self.output

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout_s: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=timeout_s)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawClient:
    """A hand-driven orchestrator end, to send what a real one never would."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.assembler = codec.FrameAssembler()
        self.backlog: list[Any] = []  # frames read along with an earlier one

    def send(self, message: Any) -> None:
        codec.send_frame(self.sock, codec.encode(message))

    def receive(self) -> Any:
        """The next message, or ``None`` once the worker closed the connection."""
        if not self.backlog:
            try:
                frames = codec.recv_frames(self.sock, self.assembler)
            except ConnectionResetError:
                return None
            self.backlog = [codec.decode(*frame) for frame in frames]
        return self.backlog.pop(0) if self.backlog else None

    def closed_by_worker(self) -> bool:
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not data:
                return True

    def authenticate(self, token: str, spec_hash: str) -> Any:
        """The whole handshake; the worker's last answer (welcome or refused)."""
        nonce = protocol.new_nonce()
        self.send(["hello", protocol.PROTOCOL_VERSION, spec_hash, nonce])
        challenge = self.receive()
        _, _, worker_spec, worker_nonce, _ = challenge
        self.send(
            ["proof", protocol.proof(token, "orchestrator", nonce, worker_nonce, worker_spec)]
        )
        return self.receive()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def kill(worker: WorkerProcess) -> None:
    os.kill(worker.process.pid, signal.SIGKILL)
