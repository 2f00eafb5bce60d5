"""``graphctl serve`` as a child process on a free loopback port: started, waited
on until ``/readyz`` answers 200, and stopped (gracefully first) on exit.

``graphctl bench --serve`` and the benchmark suite use it to measure a real
server from the outside, exactly as a user would run it.

    async with ServeProcess("graphs/diamond.yaml") as server:
        print(server.url, server.ready_after_s)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx

from orchestrator.loadgen._errors import BenchError
from runners.lifecycle import AsyncLifecycle

DEFAULT_READY_TIMEOUT_S = 60.0
READY_POLL_S = 0.02
STOP_GRACE_S = 10.0
LOG_TAIL_CHARS = 2000


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def graphctl_command() -> list[str]:
    """How to launch ``graphctl`` with this interpreter: the console script installed
    beside it, else the same entry point through ``python -c``."""
    script = Path(sys.executable).with_name("graphctl")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "import sys; from orchestrator.cli import main; sys.exit(main())"]


class ServeProcess(AsyncLifecycle):
    """A ``graphctl serve FILE`` child process; ``async with`` starts and stops it."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_after_s: float | None = None  # launch to the first /readyz 200
        self._extra_args = tuple(extra_args)
        self._ready_timeout_s = ready_timeout_s
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process id; ``BenchError`` when it is not running."""
        if self._process is None:
            raise BenchError("the server process is not running")
        return self._process.pid

    async def start(self) -> None:
        """Launch the server and wait until it is ready; raises ``BenchError``
        with the end of its log when it exits or does not become ready in time."""
        args = ["serve", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        launched = time.monotonic()
        self._process = await asyncio.create_subprocess_exec(
            *graphctl_command(),
            *args,
            *self._extra_args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        self.ready_after_s = time.monotonic() - launched

    async def _wait_ready(self) -> None:
        process = self._process
        assert process is not None
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            try:
                async with asyncio.timeout(self._ready_timeout_s):
                    while not await _is_ready(client, f"{self.url}/readyz"):
                        if process.returncode is not None:
                            raise BenchError(
                                f"graphctl serve exited with code {process.returncode} "
                                f"before it was ready:\n{self.log_tail()}"
                            )
                        await asyncio.sleep(READY_POLL_S)
            except TimeoutError:
                raise BenchError(
                    f"graphctl serve was not ready after {self._ready_timeout_s:g} s:\n"
                    f"{self.log_tail()}"
                ) from None

    async def stop(self) -> None:
        """SIGINT (graceful drain), then SIGTERM, then SIGKILL, each bounded."""
        process, self._process = self._process, None
        try:
            if process is not None and process.returncode is None:
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                    with contextlib.suppress(ProcessLookupError):
                        process.send_signal(sig)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(STOP_GRACE_S):
                            await process.wait()
                            break
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_tail(self) -> str:
        """The end of the server's combined output (for error messages)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - LOG_TAIL_CHARS))
        return self._log.read().decode(errors="replace").strip()


async def _is_ready(client: httpx.AsyncClient, url: str) -> bool:
    try:
        response = await client.get(url)
    except httpx.TransportError:
        return False
    return response.status_code == 200
