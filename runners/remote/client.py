"""The orchestrator's end of one connection to a worker host: a
``runners.transport.Worker`` once the handshake is done.

``connect`` opens the connection, proves the token and checks the worker's proof
(``runners.remote.protocol``); a refusal or a failed proof is a ``WorkerRefused``
naming the endpoint and the cause, raised at once. Until the worker has proven the
token and sent a well-formed welcome, frames are bounded by
``WELCOME_LIMIT_BYTES``; a malformed handshake message is a ``ConnectionError``,
so the endpoint is retried like one that cannot be reached. Once connected, a heartbeat
goes every ``heartbeat_interval_s``; a peer silent for ``dead_peer_timeout_s`` is
dropped, and the pool retries its batch elsewhere (``on_lost``). A streaming batch's
chunk, end and joined frames reach the pool as they come, and the pool's ``stop``
and ``join`` frames go to the host, as with a worker process (``runners.streaming``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runners import codec
from runners.call_context import CallContext
from runners.config import RemoteConfig, host_port
from runners.errors import WorkerRefused
from runners.remote import protocol
from runners.remote.link import FrameLink
from runners.runnable import MethodSpec
from runners.streaming import PROGRESS
from runners.transport import WorkerEvents

logger = logging.getLogger("runners.remote")

BUSY_RETRY_S = 0.02  # a worker that said "busy" is offered batches again after this


@dataclass(frozen=True)
class Address:
    """One worker host to connect to; ``server_name`` is what its TLS certificate names."""

    host: str
    port: int
    server_name: str

    def __str__(self) -> str:
        return host_port(self.host, self.port)


class RemoteWorker:
    """One authenticated connection to a worker host."""

    def __init__(
        self,
        runner: str,
        worker_id: int,
        address: Address,
        events: WorkerEvents,
        remote: RemoteConfig,
    ) -> None:
        self.id = worker_id
        self.runner = runner
        self.address = address
        self.label = f"{runner}/{address}"
        self.methods: Mapping[str, MethodSpec] = {}
        self.load = 0
        self.pid: int | None = None  # a process of another host: none of its figures here
        self.batch_id: int | None = None
        self.batches = 0
        self.draining = False
        self.serving = False
        self.closed = asyncio.Event()
        self.close_reason: str | None = None
        self._events = events
        self._remote = remote
        self._handshake: asyncio.Queue[Any] = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self._pings = 0
        self.link = FrameLink(self._on_message, self._on_closed, protocol.WELCOME_LIMIT_BYTES)

    # -- Worker ----------------------------------------------------------------

    @property
    def takes_joins(self) -> bool:
        """Not once the host said it is going away: it is sent nothing more."""
        return self.serving and not self.draining

    def send_batch(
        self,
        batch_id: int,
        method: str,
        args: list[Any],
        kwargs: Any,
        contexts: Sequence[CallContext] = (),
    ) -> None:
        chunks = codec.call_frame(batch_id, method, args, kwargs, contexts, runner=self.label)
        self.batch_id = batch_id
        self.link.send(chunks)

    def stop_item(self, batch_id: int, index: int) -> None:
        if self.batch_id == batch_id and self.serving:
            self.link.send(codec.encode(["stop", batch_id, index]))

    def join_items(self, batch_id: int, args: list[Any], kwargs: Any) -> None:
        frame = codec.encode(["join", batch_id, args, kwargs], runner=self.label)
        if self.batch_id == batch_id and self.takes_joins:
            self.link.send(frame)

    def kill(self) -> None:
        self.link.abort("stopped by the pool")

    # -- the connection ----------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        if not self.serving:
            self._handshake.put_nowait(message)
        elif protocol.is_message(message, "ok", 3) or protocol.is_message(message, "error", 4):
            self._answered(message)
        elif _is_step(message):
            self._stepped(message)
        elif protocol.is_message(message, "pong", 3):
            self.load = int(message[2]) if isinstance(message[2], int) else 0
        elif protocol.is_message(message, "busy", 3):
            self._busy(message)
        elif protocol.is_message(message, "going_away", 1):
            self._going_away()
        else:
            self.link.abort("the worker sent an unexpected message")

    def _answered(self, message: list[Any]) -> None:
        if message[1] != self.batch_id:  # a late answer to a batch sent elsewhere since
            logger.warning("[%s] dropped an answer to batch %r", self.label, message[1])
            return
        self.batch_id = None
        self.batches += 1
        self._events.on_reply(self, message)
        if self.draining:
            self._events.on_refused(self)

    def _stepped(self, message: list[Any]) -> None:
        """A step of the streaming batch held: to the pool, which checks it is one."""
        if message[1] != self.batch_id:  # a late step of a batch that ended since
            logger.warning("[%s] dropped a step of batch %r", self.label, message[1])
            return
        self._events.on_reply(self, message)

    def _busy(self, message: list[Any]) -> None:
        if message[1] != self.batch_id:
            return
        self.batch_id = None
        logger.debug("[%s] refused a batch: %s", self.label, message[2])
        self._events.on_refused(self)
        if not self.draining:
            asyncio.get_running_loop().call_later(BUSY_RETRY_S, self._offer_again)

    def _offer_again(self) -> None:
        if self.serving and not self.draining and not self.closed.is_set():
            self._events.on_ready(self)

    def _going_away(self) -> None:
        logger.info("[%s] is draining: no new batches", self.label)
        self.draining = True
        if self.batch_id is None:
            self._events.on_refused(self)

    def _heartbeat(self) -> None:
        """Ping, or drop the connection if the peer has been silent too long."""
        loop = asyncio.get_running_loop()
        silent = loop.time() - self.link.last_heard
        if silent > self._remote.dead_peer_timeout_s:
            self.link.abort(f"no answer for {silent:.1f} s: the host is taken for dead")
            return
        self._pings += 1
        self.link.send(codec.encode(["ping", self._pings]))
        self._timer = loop.call_later(self._remote.heartbeat_interval_s, self._heartbeat)

    def _on_closed(self, reason: str | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.close_reason = reason
        self._handshake.put_nowait(None)
        was_serving, self.serving = self.serving, False
        self.closed.set()
        if was_serving:
            if reason is not None:
                logger.warning("[%s] connection lost: %s", self.label, reason)
            self._events.on_lost(self)

    # -- the handshake ------------------------------------------------------------

    async def handshake(self, token: str, spec_hash: str) -> None:
        """Prove the token, check the worker's proof; ``WorkerRefused`` on a mismatch."""
        client_nonce = protocol.new_nonce()
        self.link.send(codec.encode(["hello", protocol.PROTOCOL_VERSION, spec_hash, client_nonce]))
        challenge = await self._next()
        if not protocol.is_message(challenge, "challenge", 5):
            raise self._unexpected(challenge)
        _, _, worker_spec, worker_nonce, worker_proof = challenge
        if not isinstance(worker_nonce, bytes) or len(worker_nonce) != protocol.NONCE_BYTES:
            raise self._malformed("challenge")
        expected = protocol.proof(token, "worker", client_nonce, worker_nonce, str(worker_spec))
        if not protocol.proof_matches(expected, worker_proof):
            self.link.abort("wrong token")
            raise self._refused(
                protocol.TOKEN, f"wrong {protocol.TOKEN_ENV}: the worker's proof does not match"
            )
        mine = protocol.proof(token, "orchestrator", client_nonce, worker_nonce, str(worker_spec))
        self.link.send(codec.encode(["proof", mine]))
        welcome = await self._next()
        if not protocol.is_message(welcome, "welcome", 3):
            raise self._unexpected(welcome)
        methods = _method_table(welcome[2])
        if not isinstance(welcome[1], int) or methods is None:
            raise self._malformed("welcome")
        self.load, self.methods = welcome[1], methods
        self.link.set_limit(protocol.DEFAULT_MAX_FRAME_BYTES)
        self.serving = True
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._remote.heartbeat_interval_s, self._heartbeat)

    async def _next(self) -> Any:
        message = await self._handshake.get()
        if message is None:
            raise ConnectionError(self.close_reason or "the worker closed the connection")
        return message

    def _unexpected(self, message: Any) -> Exception:
        if protocol.is_message(message, "refused", 3):
            self.link.close()
            return self._refused(str(message[1]), str(message[2]))
        self.link.abort("an unexpected handshake message")
        return ConnectionError("the worker sent an unexpected handshake message")

    def _malformed(self, kind: str) -> ConnectionError:
        self.link.abort(f"a malformed {kind}")
        return ConnectionError(f"the worker sent a malformed {kind}")

    def _refused(self, cause: str, message: str) -> WorkerRefused:
        return WorkerRefused(
            f"endpoint {self.address} refused the connection ({cause}): {message}",
            runner=self.runner,
        )


def _is_step(message: Any) -> bool:
    """A well-formed step of a streaming batch (``runners.streaming.PROGRESS``):
    ``["chunk", id, [chunks]]``, ``["end", id, index]`` or ``["joined", id, items]``."""
    if not (isinstance(message, list) and len(message) == 3 and message[0] in PROGRESS):
        return False
    return isinstance(message[2], list) if message[0] == "chunk" else type(message[2]) is int


def _method_table(table: Any) -> dict[str, MethodSpec] | None:
    """The methods a welcome describes, ``None`` unless each is
    ``name: [batchable, batch_dim, stack, stream?, joins?]`` with those types (``to_wire``)."""
    if not isinstance(table, dict):
        return None
    methods = {}
    for name, fields in table.items():
        if not (isinstance(name, str) and isinstance(fields, list) and len(fields) in (3, 4, 5)):
            return None
        batchable, batch_dim, *flags = fields
        if not all(isinstance(flag, bool) for flag in (batchable, *flags)):
            return None
        if not isinstance(batch_dim, int) or isinstance(batch_dim, bool):
            return None
        methods[name] = MethodSpec.from_wire(name, fields)
    return methods


async def connect(
    runner: str,
    worker_id: int,
    address: Address,
    events: WorkerEvents,
    *,
    token: str,
    spec_hash: str,
    remote: RemoteConfig,
    tls: ssl.SSLContext | None = None,
) -> RemoteWorker:
    """A connected, authenticated worker; ``WorkerRefused`` for a configuration error,
    ``OSError``/``TimeoutError``/``ConnectionError`` when it cannot be reached.
    ``tls`` is ``protocol.client_tls(remote.tls_ca)``, built once by the caller."""
    worker = RemoteWorker(runner, worker_id, address, events, remote)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(remote.connect_timeout_s):
            transport, _ = await loop.create_connection(
                lambda: worker.link,
                address.host,
                address.port,
                ssl=tls,
                server_hostname=address.server_name if tls else None,
            )
            sock = transport.get_extra_info("socket")
            if sock is not None:
                protocol.tune_socket(sock, remote.dead_peer_timeout_s)
            await worker.handshake(token, spec_hash)
    except BaseException:
        worker.link.abort("handshake failed")
        raise
    return worker
