"""The orchestrator's end of a worker connection against a peer that does not play
by the protocol: a raw asyncio server on 127.0.0.1 speaking frames by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from runners import codec
from runners.config import RemoteConfig
from runners.remote import protocol
from runners.remote.client import Address, connect

TOKEN = "s3cret-for-tests"
SPEC_HASH = "0123456789abcdef"
Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Events:
    """No batch is sent in these tests: the pool has nothing to do."""

    def on_ready(self, worker: Any) -> None:
        pass

    on_reply = on_refused = on_lost = on_ready


async def _read_message(reader: asyncio.StreamReader) -> Any:
    assembler = codec.FrameAssembler(protocol.HELLO_LIMIT_BYTES)
    while True:
        data = await reader.read(4096)
        assert data, "the orchestrator closed the connection"
        target = assembler.get_buffer()
        target[: len(data)] = data
        frames = assembler.advance(len(data))
        if frames:
            return codec.decode(*frames[0])


def _send(writer: asyncio.StreamWriter, message: Any) -> None:
    writer.writelines(codec.encode(message))


async def _connect_to(peer: Peer) -> tuple[bool, int, dict[str, Any], int]:
    """``connect`` to a server running ``peer`` for its one connection; what the
    connected worker shows (serving, load, methods, frame limit), then dropped."""
    handlers: list[asyncio.Task[None]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await peer(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        worker = await connect(
            "r",
            0,
            Address("127.0.0.1", port, "127.0.0.1"),
            _Events(),  # type: ignore[arg-type]
            token=TOKEN,
            spec_hash=SPEC_HASH,
            remote=RemoteConfig(connect_timeout_s=10.0),
        )
        limit = worker.link._assembler.max_frame_bytes or 0
        shown = worker.serving, worker.load, dict(worker.methods), limit
        worker.link.abort("test over")
        return shown
    finally:
        server.close()
        async with asyncio.timeout(10):
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()


def _handshake_then(welcome: Any) -> Peer:
    """A worker holding the token whose welcome is ``welcome``."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await _read_message(reader)
        client_nonce, worker_nonce = hello[3], protocol.new_nonce()
        mine = protocol.proof(TOKEN, "worker", client_nonce, worker_nonce, SPEC_HASH)
        _send(writer, ["challenge", protocol.PROTOCOL_VERSION, SPEC_HASH, worker_nonce, mine])
        await _read_message(reader)  # the orchestrator's proof
        _send(writer, welcome)
        await reader.read()  # until the orchestrator drops the connection

    return peer


def test_an_unproven_worker_cannot_declare_a_large_frame() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_message(reader)
        writer.write(codec.PREFIX.pack(1 << 20, 0))  # a 1 MiB challenge, never sent
        await reader.read()

    with pytest.raises(ConnectionError, match="over the limit"):
        asyncio.run(_connect_to(peer))


@pytest.mark.parametrize(
    "welcome",
    [
        ["welcome", "3", {"predict": [True, 0, False]}],
        ["welcome", 0, [["predict", True, 0, False]]],
        ["welcome", 0, {"predict": 5}],
        ["welcome", 0, {"predict": [True, "0", False]}],
        ["welcome", 0, {"predict": [True, 0]}],
    ],
)
def test_a_malformed_welcome_is_a_connection_error(welcome: Any) -> None:
    with pytest.raises(ConnectionError, match="malformed welcome"):
        asyncio.run(_connect_to(_handshake_then(welcome)))


def test_a_malformed_challenge_is_a_connection_error() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_message(reader)
        _send(writer, ["challenge", protocol.PROTOCOL_VERSION, SPEC_HASH, 7, b"x"])
        await reader.read()

    with pytest.raises(ConnectionError, match="malformed challenge"):
        asyncio.run(_connect_to(peer))


def test_a_welcome_then_lifts_the_frame_limit() -> None:
    welcome = ["welcome", 2, {"m": [True, 0, False]}]
    serving, load, methods, limit = asyncio.run(_connect_to(_handshake_then(welcome)))
    assert serving and load == 2 and methods["m"].batchable
    assert limit == protocol.DEFAULT_MAX_FRAME_BYTES
