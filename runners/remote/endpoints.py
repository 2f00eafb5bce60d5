"""The workers of a runner with ``endpoints``: one connection per worker host, kept
up (``runners.transport.Workers``); no local process is started.

    pool = WorkerPool(config, workers=functools.partial(RemoteWorkers, config, token=token))

Each address has its own task: connect, serve until the connection ends,
reconnect after a jittered exponential backoff. A ``dns:NAME:PORT`` endpoint is
resolved every ``dns_refresh_s`` and right after a failure: a new address gets a
task, one gone from the answer is dropped once its connection ends; while the
name cannot be resolved, the addresses it had are kept. ``start()``
tries every address once, fails at once on a configuration error (wrong token,
protocol version, runner spec), and waits up to ``startup_timeout_s`` for a first
worker host if none answered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runners.config import Endpoint, RunnerConfig
from runners.errors import RunnerStartupError, WorkerRefused
from runners.remote import protocol
from runners.remote.client import Address, RemoteWorker, connect
from runners.transport import WorkerEvents, until_closed_or
from runners.types import EndpointStats

logger = logging.getLogger("runners.remote")

REACHABILITY_ERRORS = (OSError, TimeoutError, ConnectionError)


@dataclass(eq=False)
class Host:
    """What is known of one address: its connection, if any, and its counters."""

    address: Address
    worker: RemoteWorker | None = None
    connections: int = 0
    failures: int = 0
    last_error: str = "not tried yet"
    retired: bool = False  # gone from its DNS answer: dropped once disconnected
    refused: bool = False  # the last attempt was a configuration error


class RemoteWorkers:
    """Connections to a runner's worker hosts (``runners.transport.Workers``)."""

    def __init__(self, config: RunnerConfig, events: WorkerEvents, *, token: str = "") -> None:
        self.config = config
        self._remote = config.remote
        self._events = events
        self._token = token
        self._spec_hash = protocol.spec_hash(protocol.runner_spec(config))
        self._hosts: dict[Address, Host] = {}
        self._next_id = 0
        self._closing = asyncio.Event()
        self._resolve_now = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._tls: ssl.SSLContext | None = None  # built once, in start()
        self._rng = random.Random()  # reconnection jitter

    # -- Workers -------------------------------------------------------------------

    @property
    def slots(self) -> int:
        return sum(not h.retired for h in self._hosts.values())

    @property
    def live(self) -> int:
        return sum(h.worker is not None and h.worker.serving for h in self._hosts.values())

    @property
    def starting(self) -> int:
        return self.slots - self.live

    @property
    def restarts(self) -> int:
        return sum(max(0, h.connections - 1) for h in self._hosts.values())

    @property
    def healthy(self) -> bool:
        """False while every known host refuses us (a configuration error)."""
        hosts = [h for h in self._hosts.values() if not h.retired]
        return not hosts or not all(h.refused for h in hosts)

    async def start(self) -> None:
        """Connect to every address once; wait for a first host if none answered."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        self._tls = await self._client_tls()
        attempt = 0
        while True:
            self._add_hosts(await self._resolve_all())
            await asyncio.gather(*(self._connect(h) for h in self._hosts.values()))
            refused = [h for h in self._hosts.values() if h.refused]
            if refused:
                self.close()
                raise WorkerRefused(refused[0].last_error, runner=self.config.name)
            if self.live or time.monotonic() >= deadline:
                break
            attempt += 1
            await asyncio.sleep(
                min(
                    self._remote.reconnect_delay_s(attempt, self._rng),
                    max(0.0, deadline - time.monotonic()),
                )
            )
        if not self.live:
            self.close()
            raise RunnerStartupError(
                f"no worker host answered within {self.config.startup_timeout_s:g} s: "
                + self._errors(),
                runner=self.config.name,
            )

    async def _client_tls(self) -> ssl.SSLContext | None:
        """The TLS context every connection uses, its CA file read off the loop."""
        try:
            return await asyncio.to_thread(protocol.client_tls, self._remote.tls_ca)
        except OSError as exc:  # ssl.SSLError is an OSError
            raise RunnerStartupError(
                f"remote.tls_ca {self._remote.tls_ca}: {_reason(exc)}", runner=self.config.name
            ) from None

    async def run(self) -> None:
        """Keep every host connected until ``close()``."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            for host in list(self._hosts.values()):
                self._spawn(self._keep(host), f"{self.config.name}/{host.address}")
            if any(e.dns for e in self.config.endpoints):
                self._spawn(self._refresh_dns(), f"{self.config.name}/dns")
            await self._closing.wait()
            for task in self._tasks:  # a connection attempt in progress is abandoned
                task.cancel()
        self._group = None

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        assert self._group is not None
        task = self._group.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Stop reconnecting and close every connection."""
        self._closing.set()
        self._resolve_now.set()
        for host in self._hosts.values():
            if host.worker is not None:
                host.worker.link.close()

    def endpoints(self, in_flight: Mapping[int, int]) -> list[EndpointStats]:
        return [
            EndpointStats(
                endpoint=str(host.address),
                connected=host.worker is not None
                and host.worker.serving
                and not host.worker.draining,
                in_flight=in_flight.get(host.worker.id, 0) if host.worker is not None else 0,
                batches=host.worker.batches if host.worker is not None else 0,
                failures=host.failures,
                reconnects=max(0, host.connections - 1),
            )
            for host in self._hosts.values()
            if not host.retired
        ]

    # -- connections ---------------------------------------------------------------------

    async def _connect(self, host: Host) -> None:
        """One attempt; the outcome is recorded on ``host``."""
        worker_id, self._next_id = self._next_id, self._next_id + 1
        try:
            worker = await connect(
                self.config.name,
                worker_id,
                host.address,
                self._events,
                token=self._token,
                spec_hash=self._spec_hash,
                remote=self._remote,
                tls=self._tls,
            )
        except WorkerRefused as exc:
            host.refused, host.failures, host.last_error = True, host.failures + 1, exc.message
            logger.error("runner %r: %s", self.config.name, exc.message)
            return
        except REACHABILITY_ERRORS as exc:
            host.failures += 1
            host.last_error = f"{host.address}: {_reason(exc)}"
            self._resolve_now.set()
            return
        host.refused, host.worker = False, worker
        host.connections += 1
        logger.info("[%s] connected", worker.label)
        self._events.on_ready(worker)

    async def _keep(self, host: Host) -> None:
        """Reconnect ``host`` whenever its connection ends, until closing or retired."""
        failed = 0
        while not self._closing.is_set():
            worker = host.worker
            if worker is not None:
                await until_closed_or(self._closing, worker.closed)
                host.worker = None
                if self._closing.is_set():
                    return
                if worker.close_reason is not None or not worker.draining:
                    host.failures += 1
                self._resolve_now.set()
                failed = 0
            if host.retired:
                self._hosts.pop(host.address, None)
                return
            if failed:
                delay_s = self._remote.reconnect_delay_s(failed, self._rng)
                await until_closed_or(self._closing, None, delay_s)
                if self._closing.is_set():
                    return
            await self._connect(host)
            failed = 0 if host.worker is not None else failed + 1

    # -- addresses -------------------------------------------------------------------------

    async def _resolve_all(self) -> list[Address]:
        """Every endpoint's addresses; a name that cannot be resolved now keeps the
        addresses it had (a DNS hiccup must not retire every host behind it)."""
        found: list[Address] = []
        for endpoint in self.config.endpoints:
            addresses = await self._resolve(endpoint)
            found.extend(self._known(endpoint) if addresses is None else addresses)
        return found

    async def _resolve(self, endpoint: Endpoint) -> list[Address] | None:
        """The addresses of ``endpoint``; ``None`` when its name cannot be resolved."""
        if not endpoint.dns:
            return [Address(endpoint.host, endpoint.port, endpoint.host)]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            logger.warning("runner %r: cannot resolve %s: %s", self.config.name, endpoint, exc)
            return None
        ips = sorted({str(info[4][0]) for info in infos})
        return [Address(ip, endpoint.port, endpoint.host) for ip in ips]

    def _known(self, endpoint: Endpoint) -> list[Address]:
        """The addresses ``endpoint`` last resolved to, not yet retired."""
        return [
            address
            for address, host in self._hosts.items()
            if not host.retired
            and (address.server_name, address.port) == (endpoint.host, endpoint.port)
        ]

    def _add_hosts(self, addresses: Iterable[Address]) -> list[Host]:
        added = []
        for address in addresses:
            host = self._hosts.get(address)
            if host is None:
                host = self._hosts[address] = Host(address)
                added.append(host)
            host.retired = False
        return added

    async def _refresh_dns(self) -> None:
        """Resolve ``dns:`` endpoints every ``dns_refresh_s`` and after each failure."""
        while not self._closing.is_set():
            await until_closed_or(self._closing, self._resolve_now, self._remote.dns_refresh_s)
            self._resolve_now.clear()
            if self._closing.is_set():
                return
            current = set(await self._resolve_all())
            for address, host in self._hosts.items():
                host.retired = address not in current
            for host in self._add_hosts(current):
                logger.info("runner %r: new worker host %s", self.config.name, host.address)
                self._spawn(self._keep(host), f"{self.config.name}/{host.address}")
            # hosts gone from DNS keep their live connection; their task ends with it

    def _errors(self) -> str:
        hosts = self._hosts.values()
        if not hosts:
            return "no address found for " + ", ".join(str(e) for e in self.config.endpoints)
        return "; ".join(h.last_error for h in hosts)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    return str(exc) or type(exc).__name__
