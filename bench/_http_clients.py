"""The HTTP benchmark's closed-loop load and what it counts: latency, and CPU of
the server process, of its workers and of the load generator itself.

Two clients send the same prebuilt POST over keep-alive HTTP/1.1 connections:

- ``RawClient``: one raw connection per simulated user, the request bytes
  prebuilt, the answer parsed by hand. It costs far less CPU than the servers it
  measures, which matters on a machine whose cores it shares: the headline.
- ``AiohttpClient``: aiohttp's client session, a common client whose cost is
  known and measured here too, so a reader can tell how much of a figure belongs
  to the load generator.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Protocol

import aiohttp
import httpx
import numpy as np
import psutil

Send = Callable[[], Awaitable[int]]  # one request; its HTTP status


class Client(Protocol):
    name: str

    def connection(self) -> AbstractAsyncContextManager[Send]:
        """One simulated user's connection, open for the whole point."""
        ...


@dataclass(frozen=True)
class Point:
    """One measured load level; CPU in microseconds per counted request."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float  # the server process alone (its event loop)
    workers_cpu_us: float  # its child processes (graphctl's worker pools)
    client_cpu_us: float  # this process: the load generator

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def total_cpu_us(self) -> float:
        """What the server costs in all: its process and its workers."""
        return self.server_cpu_us + self.workers_cpu_us

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": self.rps, "total_cpu_us": self.total_cpu_us}


@dataclass(frozen=True)
class CpuMark:
    """CPU seconds so far of a server process, of its descendants, and of this process."""

    server_s: float
    workers_s: float
    client_s: float

    @property
    def served_s(self) -> float:
        """The server's CPU in all: its process and its workers."""
        return self.server_s + self.workers_s


def cpu_mark(pid: int) -> CpuMark:
    """The CPU used so far by server ``pid``, by its descendants, and by this process."""
    root = psutil.Process(pid)
    server = sum(root.cpu_times()[:2])
    workers = 0.0
    for child in root.children(recursive=True):
        try:
            workers += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return CpuMark(server, workers, time.process_time())


def _request_bytes(url: str, body: dict[str, Any]) -> tuple[str, int, bytes]:
    parts = httpx.URL(url)
    payload = json.dumps(body).encode()
    head = (
        f"POST {parts.raw_path.decode()} HTTP/1.1\r\nhost: {parts.host}:{parts.port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n"
    )
    return parts.host, int(parts.port or 80), head.encode() + payload


class RawConnection:
    """One keep-alive HTTP/1.1 connection sending prebuilt requests, answers parsed
    by hand: a raw client costs far less CPU than the servers it measures."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.retry_after_s = 0.0  # the last answer's Retry-After (0: none)

    @classmethod
    async def open(cls, host: str, port: int) -> RawConnection:
        return cls(*await asyncio.open_connection(host, port))

    async def request(self, raw: bytes) -> int:
        """Send ``raw``, read the whole answer; its status."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length, self.retry_after_s = 0, 0.0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"retry-after":
                self.retry_after_s = float(value)
        await self.reader.readexactly(length)
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        self.writer.close()


class RawClient:
    """A ``RawConnection`` per user, all sending one prebuilt POST."""

    name = "raw"

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        self.host, self.port, self.raw = _request_bytes(url, body)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Send]:
        connection = await RawConnection.open(self.host, self.port)
        try:
            yield partial(connection.request, self.raw)
        finally:
            connection.close()


class AiohttpClient:
    """aiohttp's ``ClientSession``: one session, one pooled connection per user."""

    name = "aiohttp"

    def __init__(self, session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
        self.session = session
        self.url = url
        self.payload = json.dumps(body).encode()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Send]:
        async def send() -> int:
            async with self.session.post(
                self.url, data=self.payload, headers={"content-type": "application/json"}
            ) as response:
                await response.read()
                return response.status

        yield send


@asynccontextmanager
async def aiohttp_client(url: str, body: dict[str, Any]) -> AsyncIterator[AiohttpClient]:
    """An ``AiohttpClient`` whose session (no connection limit) closes on exit."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield AiohttpClient(session, url, body)


async def closed_loop(
    client: Client, concurrency: int, pid: int, *, warmup_s: float, duration_s: float
) -> Point:
    """``concurrency`` users, each sending its next request when the last answers;
    requests sent inside the measured window are counted."""
    latencies: list[float] = []
    errors = 0
    start = time.monotonic() + warmup_s
    end = start + duration_s
    marks: list[CpuMark] = []

    async def user() -> None:
        nonlocal errors
        async with client.connection() as send:
            while (sent := time.monotonic()) < end:
                status = await send()
                if sent >= start:
                    latencies.append(time.monotonic() - sent)
                    errors += status != 200

    async def cpu_marks() -> None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        marks.append(cpu_mark(pid))
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        marks.append(cpu_mark(pid))

    async with asyncio.timeout(end - time.monotonic() + 60), asyncio.TaskGroup() as group:
        group.create_task(cpu_marks())
        for _ in range(concurrency):
            group.create_task(user())
    seconds = time.monotonic() - start
    ms = np.asarray(latencies) * 1000
    per_request = 1e6 / max(len(latencies), 1)
    first, last = marks
    return Point(
        requests=len(latencies),
        errors=errors,
        seconds=seconds,
        p50_ms=float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        p99_ms=float(np.percentile(ms, 99)) if len(ms) else float("nan"),
        server_cpu_us=(last.server_s - first.server_s) * per_request,
        workers_cpu_us=(last.workers_s - first.workers_s) * per_request,
        client_cpu_us=(last.client_s - first.client_s) * per_request,
    )
