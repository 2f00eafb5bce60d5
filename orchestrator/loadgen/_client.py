"""A lean HTTP/1.1 keep-alive client for load generation: one request at a
time per connection, connections reused from a pool.

Why not httpx: on a 2-core machine httpx spends so much CPU per request that
the load generator, not the server, becomes the bottleneck (measured against
``graphctl serve``: 274 vs 841 req/s at concurrency 1, 338 vs 1159 at 64). A
benchmark must measure the server. This client only speaks what a load test
needs: a fixed POST, a status, ``Retry-After``, a ``Content-Length`` or chunked body.

    pool = ConnectionPool("127.0.0.1", 8000)
    reply = await pool.request(b"POST", "/diamond", body, timeout_s=30)
    reply.status, reply.retry_after_s
    await pool.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024


class ResponseError(Exception):
    """The server sent something that is not an HTTP/1.1 response."""


@dataclass(frozen=True)
class Reply:
    """What a load test needs of a response: its status and ``Retry-After`` (seconds)."""

    status: int
    retry_after_s: float | None = None


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()


class ConnectionPool:
    """Idle keep-alive connections to one host; a request takes one or opens one."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def request(
        self, method: bytes, path: str, body: bytes, *, timeout_s: float, content_type: bytes
    ) -> Reply:
        """Send one request; returns its reply once the whole body is read."""
        head = (
            method + b" " + path.encode() + b" HTTP/1.1\r\n"
            b"host: " + f"{self._host}:{self._port}".encode() + b"\r\n"
            b"content-type: " + content_type + b"\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        connection = self._idle.pop() if self._idle else await self._connect()
        try:
            async with asyncio.timeout(timeout_s):
                connection.writer.write(head + body)
                reply, keep_alive = await _read_response(connection.reader)
        except BaseException:
            await self._discard(connection)
            raise
        if keep_alive:
            self._idle.append(connection)
        else:
            await self._discard(connection)
        return reply

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(
            self._host, self._port, limit=MAX_HEADER_BYTES
        )
        connection = _Connection(reader, writer)
        self._open.add(connection)
        return connection

    async def _discard(self, connection: _Connection) -> None:
        self._open.discard(connection)
        await connection.close()

    async def close(self) -> None:
        """Close every connection, idle or not."""
        connections, self._open, self._idle = list(self._open), set(), []
        for connection in connections:
            await connection.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[Reply, bool]:
    """(reply, keep-alive) after consuming the whole response."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        raise ResponseError("the server closed the connection") from error
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ResponseError(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        await _skip_chunked(reader)
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    reply = Reply(int(parts[1]), _seconds(headers.get("retry-after")))
    return reply, headers.get("connection") != "close"


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (an HTTP date is not used by our server: ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


async def _skip_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        await reader.readexactly(size + 2)  # the chunk and its CRLF
        if size == 0:
            return
