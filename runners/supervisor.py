"""Worker processes: start one (READY handshake), watch it, replace it when it dies.

Each worker slot is supervised by one plain loop (``Supervisor.run_slot``): wait
until the worker is gone, reap it, restart it after an exponential backoff.
Consecutive start-up failures stop the restarts and mark the runner unhealthy.
Every line a worker writes is logged, prefixed with its runner and worker id
(``runners.worker_log``); a worker still starting says so every
``STARTUP_NOTICE_S`` seconds.
A worker that died while running a call is restarted without growing the
backoff: the call is to blame (the pool fails it for good after a second
crash), not the runner, and the runner's other calls should not wait for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from runners import codec, worker_log
from runners.config import RunnerConfig, SupervisionConfig
from runners.errors import ProtocolError, RunnerStartupError

logger = logging.getLogger("runners.worker")

SHORT_LIFE_S = 2.0  # a worker dying sooner than this counts toward a crash loop
# Kernel socket buffers (capped by net.core.wmem_max): 64 MiB arrays cross in
# ~21 ms instead of ~36 ms with the default 208 KiB.
SOCKET_BUFFER_BYTES = 4 << 20
STARTUP_NOTICE_S = 10.0  # a worker still loading is named in the log this often

OnMessage = Callable[["Worker", Any], None]
OnLost = Callable[["Worker"], None]


class WorkerLink(asyncio.BufferedProtocol):
    """The pool's end of a worker socket: frames are received in place, decoded,
    and handed to the owner synchronously (no task per message)."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._assembler = codec.FrameAssembler()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._assembler.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        try:
            for header, buffers in self._assembler.advance(nbytes):
                self._worker.deliver(codec.decode(header, buffers))
        except ProtocolError as exc:  # a worker that breaks the protocol is killed
            logger.error("[%s] %s", self._worker.label, exc)
            self._worker.kill()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker.lost()


def _new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class Worker:
    """One worker process and its socket. ``batch`` is the call it holds, if any."""

    runner: str
    id: int
    on_message: OnMessage
    on_lost: OnLost
    process: asyncio.subprocess.Process | None = None
    link: WorkerLink | None = None
    ready: asyncio.Future[Any] = field(default_factory=_new_future)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: float = field(default_factory=time.monotonic)
    batch: Any = None
    hang_timer: asyncio.TimerHandle | None = None
    ping_timer: asyncio.TimerHandle | None = None  # set while a ping awaits its pong
    pongs: int = 0
    hung: bool = False  # killed for holding a batch past its hang limit
    died_holding_call: bool = False  # set by the pool when it loses a batch with it
    log_task: asyncio.Task[None] | None = None
    log_pipe: asyncio.BaseTransport | None = None

    @property
    def label(self) -> str:
        return f"{self.runner}/worker-{self.id}"

    def deliver(self, message: Any) -> None:
        if not self.ready.done():
            self.ready.set_result(message)
        elif isinstance(message, list) and message and message[0] == "pong":
            self.pongs += 1
            if self.ping_timer is not None:
                self.ping_timer.cancel()
                self.ping_timer = None
        else:
            self.on_message(self, message)

    def ping(self, timeout_s: float) -> None:
        """Ask an idle worker for a pong; kill it if none comes within ``timeout_s``."""
        if self.ping_timer is None and not self.closed.is_set():
            self.ping_timer = asyncio.get_running_loop().call_later(timeout_s, self._unanswered)
            self.send(codec.encode(["ping", 0]))

    def _unanswered(self) -> None:
        self.ping_timer = None
        logger.error("[%s] did not answer a ping while idle; stopping it", self.label)
        self.kill()

    def send(self, chunks: list[Any]) -> None:
        assert self.link is not None and self.link.transport is not None
        if len(chunks) == 1:
            self.link.transport.write(chunks[0])
        else:
            self.link.transport.writelines(chunks)

    def lost(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        if self.ping_timer is not None:
            self.ping_timer.cancel()
            self.ping_timer = None
        if not self.ready.done():
            self.ready.set_result(None)
        self.on_lost(self)

    def kill(self) -> None:
        """Stop a dead, hung or misbehaving worker now; ``lost()`` follows."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
        if self.link is not None and self.link.transport is not None:
            self.link.transport.abort()

    async def reap(self, timeout_s: float) -> None:
        """Close the socket (the worker exits at EOF), wait for it, kill it if it lingers."""
        if self.link is not None and self.link.transport is not None:
            self.link.transport.close()
        if self.process is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.log_task is not None and self.log_pipe is not None:
            await worker_log.finish(self.log_task, self.log_pipe, timeout_s)


def _worker_argv(config: RunnerConfig, worker_id: int, fd: int) -> list[str]:
    settings = {
        "runner": config.name,
        "runnable": config.runnable,
        "search_path": str(config.search_path) if config.search_path else None,
        "init": dict(config.init),
        "worker": worker_id,
        "log_level": logger.getEffectiveLevel(),  # records below it are not even sent
    }
    try:
        encoded = json.dumps(settings)
    except TypeError as exc:
        raise RunnerStartupError(f"init parameters must be plain data: {exc}") from None
    return [
        sys.executable,
        "-m",
        "runners.worker",
        "--fd",
        str(fd),
        "--config",
        encoded,
        "--parent",
        str(os.getpid()),
    ]


async def spawn(
    config: RunnerConfig,
    worker_id: int,
    env: dict[str, str],
    on_message: OnMessage,
    on_lost: OnLost,
    *,
    notice_every_s: float = STARTUP_NOTICE_S,
) -> Worker:
    """Start one worker and wait for its READY (or its start-up error), logging a
    notice every ``notice_every_s`` seconds while it is still starting."""
    worker = Worker(config.name, worker_id, on_message, on_lost)
    parent_end, child_end = socket.socketpair()
    for end in (parent_end, child_end):  # large arrays in fewer, bigger copies
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
    log_fd, child_log = os.pipe()
    try:
        worker.process = await asyncio.create_subprocess_exec(
            *_worker_argv(config, worker_id, child_end.fileno()),
            pass_fds=(child_end.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=child_log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )
    except BaseException:
        os.close(log_fd)
        parent_end.close()
        raise
    finally:
        child_end.close()
        os.close(child_log)
    try:
        worker.log_task, worker.log_pipe = await worker_log.read(log_fd, worker.label)
        hello = await _handshake(worker, parent_end, config.startup_timeout_s, notice_every_s)
    except BaseException:  # cancelled while starting: leave no process behind
        if worker.link is None:
            parent_end.close()
        worker.kill()
        await worker.reap(1.0)
        raise
    if isinstance(hello, list) and hello and hello[0] == "ready":
        return worker
    worker.kill()
    await worker.reap(1.0)
    raise _startup_error(config, worker, hello)


async def _handshake(
    worker: Worker, sock: socket.socket, timeout_s: float, notice_every_s: float
) -> Any:
    """Connect to the worker's socket and wait for its first frame, within ``timeout_s``."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            _, worker.link = await loop.create_unix_connection(
                lambda: WorkerLink(worker), sock=sock
            )
            while not worker.ready.done():
                await asyncio.wait([worker.ready], timeout=notice_every_s)
                if not worker.ready.done():
                    _still_starting(worker, timeout_s)
            return worker.ready.result()
    except TimeoutError:
        return ["failed", "TimeoutError", f"no READY within {timeout_s:g} s"]


def _still_starting(worker: Worker, timeout_s: float) -> None:
    waited = time.monotonic() - worker.started_at
    logger.warning(
        "[%s] still starting after %.1f s (no READY yet; start-up timeout %g s)",
        worker.label,
        waited,
        timeout_s,
    )


def _startup_error(config: RunnerConfig, worker: Worker, hello: Any) -> RunnerStartupError:
    if isinstance(hello, list) and len(hello) == 3 and hello[0] == "failed":
        detail = f"{hello[1]}: {hello[2]}"
    else:
        detail = (
            f"the worker exited during start-up (exit code {worker.process.returncode})"
            if worker.process
            else "the worker did not start"
        )
    return RunnerStartupError(
        f"worker {worker.id} could not start {config.runnable}: {detail}", runner=config.name
    )


class Supervisor:
    """Keeps ``len(envs)`` workers alive. ``on_ready`` receives each worker that
    answered READY; ``on_gave_up`` is called when a slot stops restarting."""

    def __init__(
        self,
        config: RunnerConfig,
        envs: list[dict[str, str]],
        *,
        on_message: OnMessage,
        on_lost: OnLost,
        on_ready: Callable[[Worker], None],
        on_gave_up: Callable[[], None],
        stop_timeout_s: float = 5.0,
    ) -> None:
        self.config = config
        self.envs = envs
        self.restarts = 0
        self.healthy = True
        self.starting = 0  # slots between a death and their next READY
        self.workers: dict[int, Worker] = {}  # live workers by id
        self._callbacks = (on_message, on_lost, on_ready, on_gave_up)
        self._timings: SupervisionConfig = config.supervision
        self._stop_timeout_s = stop_timeout_s
        self._next_id = 0
        self._closing = asyncio.Event()

    async def start_worker(self, slot: int) -> Worker:
        worker_id, self._next_id = self._next_id, self._next_id + 1
        on_message, on_lost, on_ready, _ = self._callbacks
        worker = await spawn(self.config, worker_id, self.envs[slot], on_message, on_lost)
        self.workers[worker.id] = worker
        on_ready(worker)
        return worker

    async def run_slot(self, slot: int, worker: Worker) -> None:
        """The supervision loop of one slot, until ``close()``."""
        crash_streak = 0
        while True:
            await self._watch(worker)
            await worker.reap(self._stop_timeout_s)
            self.workers.pop(worker.id, None)
            if self._closing.is_set():
                return
            lived = time.monotonic() - worker.started_at
            early = lived < SHORT_LIFE_S and not worker.died_holding_call
            crash_streak = crash_streak + 1 if early else 0
            logger.warning(
                "[%s] exited (code %s); restarting",
                worker.label,
                worker.process.returncode if worker.process else None,
            )
            replacement = await self._restart(slot, crash_streak)
            if replacement is None:
                return
            worker = replacement

    async def _watch(self, worker: Worker) -> None:
        """Until the worker is gone or the pool closes: ping it whenever it holds no
        batch (a batch is bounded by the pool's per-batch limit instead)."""
        timings = self._timings
        while not await self._until_closed_or(worker.closed, timings.ping_interval_s):
            if worker.closed.is_set():
                return
            if worker.batch is None:
                worker.ping(timings.ping_timeout_s)

    async def _restart(self, slot: int, crash_streak: int) -> Worker | None:
        self.starting += 1
        try:
            for failures in range(self._timings.max_start_failures):
                delay = self._timings.restart_delay_s(crash_streak + failures)
                if await self._until_closed_or(None, delay):
                    return None
                try:
                    worker = await self.start_worker(slot)
                except RunnerStartupError as exc:
                    logger.error("%s", exc)
                    continue
                self.restarts += 1
                return worker
        finally:
            self.starting -= 1
        self.healthy = False
        logger.error("runner %r: workers keep failing to start; giving up", self.config.name)
        self._callbacks[3]()
        return None

    async def _until_closed_or(self, event: asyncio.Event | None, delay_s: float = 0.0) -> bool:
        """Wait for ``close()`` or ``event`` (or ``delay_s`` seconds); True if closing."""
        waits = [asyncio.ensure_future(self._closing.wait())]
        if event is not None:
            waits.append(asyncio.ensure_future(event.wait()))
        try:
            await asyncio.wait(waits, timeout=delay_s or None, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waits:
                waiter.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return self._closing.is_set()

    def close(self) -> None:
        """Stop restarting; close every worker's socket so it exits at EOF."""
        self._closing.set()
        for worker in list(self.workers.values()):
            if worker.link is not None and worker.link.transport is not None:
                worker.link.transport.close()
