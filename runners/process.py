"""A worker process over a socketpair: the ``runners.transport.Worker`` of a pool's
local processes. ``spawn`` starts one and waits for its READY (or its start-up
error); ``runners.supervisor`` keeps them alive.

Every line a worker writes is logged, prefixed with its runner and worker id
(``runners.worker_log``); a worker still starting says so every
``STARTUP_NOTICE_S`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from runners import codec, worker_log
from runners.call_context import CallContext
from runners.config import RunnerConfig
from runners.errors import ProtocolError, RunnerStartupError
from runners.replies import runnable_settings
from runners.runnable import MethodSpec
from runners.streaming import is_progress
from runners.transport import WorkerEvents

logger = logging.getLogger("runners.worker")

# Kernel socket buffers (capped by net.core.wmem_max): 64 MiB arrays cross in
# ~21 ms instead of ~36 ms with the default 208 KiB.
SOCKET_BUFFER_BYTES = 4 << 20
STARTUP_NOTICE_S = 10.0  # a worker still loading is named in the log this often


class WorkerLink(asyncio.BufferedProtocol):
    """The pool's end of a worker socket: frames are received in place, decoded,
    and handed to the owner synchronously (no task per message)."""

    def __init__(self, worker: ProcessWorker) -> None:
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
class ProcessWorker:
    """One worker process and its socket. ``batch_id`` is the batch it holds, if any."""

    runner: str
    id: int
    events: WorkerEvents
    process: asyncio.subprocess.Process | None = None
    link: WorkerLink | None = None
    ready: asyncio.Future[Any] = field(default_factory=_new_future)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: float = field(default_factory=time.monotonic)
    methods: Mapping[str, MethodSpec] = field(default_factory=dict)
    batch_id: int | None = None  # sent and not yet answered
    ping_timer: asyncio.TimerHandle | None = None  # set while a ping awaits its pong
    pongs: int = 0
    load: int = 0  # only its pool uses it
    log_task: asyncio.Task[None] | None = None
    log_pipe: asyncio.BaseTransport | None = None

    @property
    def label(self) -> str:
        return f"{self.runner}/worker-{self.id}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def takes_joins(self) -> bool:
        return not self.closed.is_set()

    def deliver(self, message: Any) -> None:
        if not self.ready.done():
            self.ready.set_result(message)
        elif isinstance(message, list) and message and message[0] == "pong":
            self.pongs += 1
            if self.ping_timer is not None:
                self.ping_timer.cancel()
                self.ping_timer = None
        else:
            if not is_progress(message):
                self.batch_id = None
            self.events.on_reply(self, message)

    def send_batch(
        self,
        batch_id: int,
        method: str,
        args: list[Any],
        kwargs: Any,
        contexts: Sequence[CallContext] = (),
    ) -> None:
        chunks = codec.call_frame(batch_id, method, args, kwargs, contexts, runner=self.runner)
        self.batch_id = batch_id
        self.send(chunks)

    def stop_item(self, batch_id: int, index: int) -> None:
        if self.batch_id == batch_id and not self.closed.is_set():
            self.send(codec.encode(["stop", batch_id, index]))

    def join_items(self, batch_id: int, args: list[Any], kwargs: Any) -> None:
        frame = codec.encode(["join", batch_id, args, kwargs], runner=self.runner)
        if self.batch_id == batch_id and not self.closed.is_set():
            self.send(frame)

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
        self.events.on_lost(self)

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
        **runnable_settings(config),
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
    events: WorkerEvents,
    *,
    notice_every_s: float = STARTUP_NOTICE_S,
) -> ProcessWorker:
    """Start one worker and wait for its READY (or its start-up error), logging a
    notice every ``notice_every_s`` seconds while it is still starting."""
    worker = ProcessWorker(config.name, worker_id, events)
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
    if isinstance(hello, list) and len(hello) == 3 and hello[0] == "ready":
        worker.methods = {
            name: MethodSpec.from_wire(name, fields) for name, fields in hello[2].items()
        }
        return worker
    worker.kill()
    await worker.reap(1.0)
    raise _startup_error(config, worker, hello)


async def _handshake(
    worker: ProcessWorker, sock: socket.socket, timeout_s: float, notice_every_s: float
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


def _still_starting(worker: ProcessWorker, timeout_s: float) -> None:
    waited = time.monotonic() - worker.started_at
    logger.warning(
        "[%s] still starting after %.1f s (no READY yet; start-up timeout %g s)",
        worker.label,
        waited,
        timeout_s,
    )


def _startup_error(config: RunnerConfig, worker: ProcessWorker, hello: Any) -> RunnerStartupError:
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
