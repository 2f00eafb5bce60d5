"""The load generator's lean HTTP/1.1 client: responses parsed from raw bytes
(lengths, chunks, Retry-After, close, garbage), and a real server on 127.0.0.1
that counts connections to show keep-alive reuse."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from orchestrator.loadgen._client import (
    ConnectionPool,
    Reply,
    ResponseError,
    _read_response,
    _seconds,
)
from tests.conftest import run


async def _parse(raw: bytes) -> tuple[tuple[Reply, bool], bytes]:
    reader = asyncio.StreamReader()
    reader.feed_data(raw + b"NEXT")
    reader.feed_eof()
    parsed = await _read_response(reader)
    return parsed, await reader.read()


@pytest.mark.parametrize(
    ("raw", "reply", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", Reply(200), True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", Reply(204), True),
        (b"HTTP/1.0 404 Not Found\r\nContent-Length: 2\r\n\r\n{}", Reply(404), True),
        (
            b"HTTP/1.1 503 Busy\r\nRetry-After: 2\r\ncontent-length: 0\r\n\r\n",
            Reply(503, retry_after_s=2.0),
            True,
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: Close\r\ncontent-length: 1\r\n\r\nx",
            Reply(200),
            False,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
            Reply(200),
            True,
        ),
        (b"HTTP/1.1 500\r\ncontent-length: 0\r\n\r\n", Reply(500), True),
    ],
)
def test_responses_are_read_whole_and_nothing_more(
    raw: bytes, reply: Reply, keep_alive: bool
) -> None:
    parsed, rest = run(_parse(raw), timeout_s=10)
    assert parsed == (reply, keep_alive)
    assert rest == b"NEXT"  # the next response's bytes are left in place


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the server closed the connection"),
        (b"HTTP/1.1 200 OK\r\ncontent-", "the server closed the connection"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.1 status line: 'SSH-2.0-OpenSSH'"),
        (b"HTTP/2 200\r\n\r\n", "not an HTTP/1.1 status line: 'HTTP/2 200'"),
        (b"HTTP/1.1 OK\r\n\r\n", "not an HTTP/1.1 status line: 'HTTP/1.1 OK'"),
    ],
)
def test_what_is_not_a_response_is_a_response_error(raw: bytes, message: str) -> None:
    async def parse() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        await _read_response(reader)

    with pytest.raises(ResponseError) as info:
        run(parse(), timeout_s=10)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, None), ("3", 3.0), ("0.5", 0.5), ("-2", 0.0), ("wed, 21 oct 2015 07:28:00 gmt", None)],
)
def test_retry_after_in_seconds(value: str | None, seconds: float | None) -> None:
    assert _seconds(value) == seconds


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _with_server(handler: Handler, body: Callable[[int], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await body(port)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


def test_connections_are_reused_unless_the_server_closes_them() -> None:
    accepted: list[int] = []
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                requests.append(await _read_request(reader))
                close = len(requests) == 3
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"
                    + (b"connection: close\r\n" if close else b"")
                    + b"\r\nok"
                )
                await writer.drain()
                if close:
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    async def body(port: int) -> None:
        pool = ConnectionPool("127.0.0.1", port)
        try:
            for _ in range(4):
                reply = await pool.request(
                    b"POST", "/g", b'{"x": 1}', timeout_s=10, content_type=b"application/json"
                )
                assert reply == Reply(200)
        finally:
            await pool.close()

    run(_with_server(handler, body), timeout_s=30)
    assert len(requests) == 4 and len(accepted) == 2  # the third reply said close
    assert requests[0].startswith(b"POST /g HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b'content-type: application/json\r\ncontent-length: 8\r\n\r\n{"x": 1}' in requests[0]


def test_a_request_past_its_time_limit_drops_its_connection() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # never answers; ends when the client closes
        finally:
            writer.close()

    async def body(port: int) -> None:
        pool = ConnectionPool("127.0.0.1", port)
        with pytest.raises(TimeoutError):
            await pool.request(b"POST", "/g", b"{}", timeout_s=0.1, content_type=b"text/plain")
        assert pool._open == set() and pool._idle == []
        await pool.close()

    run(_with_server(silent, body), timeout_s=30)
