"""The worker side of the TCP protocol (``graphctl worker``): one Runnable, served
to every orchestrator that proves the token.

    host = WorkerHost(config, token=token, tls=None)
    await host.serve("0.0.0.0", 7000, on_listening=print)   # until host.drain()

The model loads before the port is bound, so a TCP readiness probe is exact. It
runs in one thread with its own event loop (``runners.worker.answer``: batches one
at a time, ``async def`` methods on that loop), so this loop stays free to answer
heartbeats and handshakes while a batch runs. As in a worker process, each batch
runs with its calls' log fields (``worker`` is the address this host listens on)
and, when the ``OTEL_*`` variables ask, is exported as a span linked to its calls.
At most ``max_pending`` batches are held (running or waiting); more are refused as
"busy" and the orchestrator sends them elsewhere. A streaming method's steps go
back as they are made (``runners.streaming``); the orchestrator's frames naming a
streaming batch its connection holds (``stop``, and whatever else the batch's link
reads) are relayed to that batch, and a connection that closes stops every item of
its streams. ``drain()`` (SIGTERM) stops
accepting, tells every orchestrator it is going away, answers the batches it
holds, then closes.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from runners import call_context, codec, heap, log_context, otel, streaming
from runners.call_context import CallContext
from runners.config import RunnerConfig
from runners.errors import ProtocolError, RunnerStartupError
from runners.remote import protocol
from runners.remote.link import FrameLink
from runners.remote.streams import RelayedStream
from runners.replies import load_runnable, method_table, runnable_settings
from runners.runnable import MethodSpec, runnable_methods
from runners.worker import answer, batch_spans

logger = logging.getLogger("runners.remote")

HANDSHAKE_TIMEOUT_S = 10.0  # an unauthenticated connection is dropped after this
CLOSE_TIMEOUT_S = 5.0  # orchestrators that do not close their end by then are cut off
Call = tuple[int, str, list[Any], dict[str, Any]]  # batch id, method, args, kwargs
DEFAULT_MAX_PENDING = 2  # one batch running, one waiting: no idle gap between two callers


class ModelThread:
    """The Runnable instance, owned by one thread that also owns its event loop."""

    def __init__(self, config: RunnerConfig) -> None:
        self._config = config
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"graphctl-{config.name}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._table: dict[str, Callable[..., Any]] = {}
        self.specs: dict[str, MethodSpec] = {}
        self.endpoint = ""  # host:port once listening
        self.spans: otel.BatchSpans | None = None  # set once listening, if tracing

    async def load(self) -> dict[str, list[Any]]:
        """Import and construct the Runnable; its methods as the hello describes them."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._load)
        except Exception as exc:
            raise RunnerStartupError(
                f"could not start {self._config.runnable}: {type(exc).__name__}: {exc}",
                runner=self._config.name,
            ) from exc

    def _load(self) -> dict[str, list[Any]]:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)  # the Runnable's __init__ may bind objects to it
        instance = load_runnable(runnable_settings(self._config))
        self._table = method_table(instance)
        self.specs = runnable_methods(type(instance))
        heap.tune_for_serving()
        return {name: spec.to_wire() for name, spec in self.specs.items()}

    async def listening_on(self, endpoint: str) -> None:
        """Name this host by the address it listens on, in the log fields every batch
        runs with: bound once, in the model thread, for its whole life."""
        self.endpoint = endpoint
        await asyncio.get_running_loop().run_in_executor(self._thread, self._bind_log_fields)

    def _bind_log_fields(self) -> None:
        # Each thread has its own context: what is bound here stays for its next calls.
        log_context.bound(runner=self._config.name, worker=self.endpoint).__enter__()

    def run(
        self, call: Call, contexts: list[CallContext], link: RelayedStream | None = None
    ) -> asyncio.Future[Any]:
        """The reply frame of one batch, once every batch sent before it has run; a
        streaming batch sends its steps over ``link`` first."""
        return asyncio.get_running_loop().run_in_executor(
            self._thread, self._answer, call, contexts, link
        )

    def _answer(
        self, call: Call, contexts: list[CallContext], link: RelayedStream | None
    ) -> list[Any]:
        """In the model thread, with the log fields and span a worker process gives a
        batch (``runner`` and ``worker`` bound once, by ``listening_on``)."""
        assert self._loop is not None
        config = self._config
        return answer(self._loop, self._table, config.name, call, self.spans, contexts, link)

    def close(self) -> None:
        if self._loop is not None:
            self._thread.submit(self._loop.close)
        self._thread.shutdown(wait=True)


class WorkerHost:
    """Serves one runner's Runnable over TCP to authenticated orchestrators."""

    def __init__(
        self,
        config: RunnerConfig,
        *,
        token: str,
        tls: ssl.SSLContext | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_frame_bytes: int = protocol.DEFAULT_MAX_FRAME_BYTES,
        dead_peer_timeout_s: float = 10.0,
    ) -> None:
        self.config = config
        self.token = token
        self.tls = tls
        self.max_pending = max_pending
        self.max_frame_bytes = max_frame_bytes
        self.dead_peer_timeout_s = dead_peer_timeout_s
        self.spec = protocol.runner_spec(config)
        self.spec_hash = protocol.spec_hash(self.spec)
        self.methods: dict[str, list[Any]] = {}
        self.draining = False
        self.pending: set[asyncio.Future[Any]] = set()  # batches held, running or waiting
        self.connections: set[HostConnection] = set()
        self._model = ModelThread(config)
        self._drain = asyncio.Event()
        self._idle = asyncio.Event()

    async def serve(
        self, host: str, port: int, on_listening: Callable[[str, int], None] | None = None
    ) -> None:
        """Load the model, then listen until ``drain()``; return once drained."""
        try:
            self.methods = await self._model.load()
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                lambda: HostConnection(self).link,
                host,
                port,
                ssl=self.tls,
                reuse_address=True,
                start_serving=False,
            )
            bound_host, bound_port = server.sockets[0].getsockname()[:2]
            await self._model.listening_on(f"{bound_host}:{bound_port}")
            attributes = otel.host_attributes(self.config.name, self._model.endpoint)
            with batch_spans(otel.tracer_provider(attributes), self.config.name) as spans:
                self._model.spans = spans
                await server.start_serving()
                if on_listening is not None:
                    on_listening(str(bound_host), int(bound_port))
                await self._drain.wait()
                server.close()  # stop accepting; connections stay open
                await self._finish()
        finally:
            self._model.close()

    def drain(self) -> None:
        """Stop accepting, say "going away", answer the batches held, then stop."""
        if not self.draining:
            self.draining = True
            logger.info("draining: %d batches held", len(self.pending))
            for connection in list(self.connections):
                connection.going_away()
            self._drain.set()

    async def _finish(self) -> None:
        if self.pending:
            await asyncio.wait(list(self.pending))
        await asyncio.sleep(0)  # let the replies' callbacks write
        for connection in list(self.connections):
            connection.link.close()
        if self.connections:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=CLOSE_TIMEOUT_S)
            except TimeoutError:
                logger.warning("%d connections still open at exit", len(self.connections))

    def forget(self, connection: HostConnection) -> None:
        """A connection ended."""
        self.connections.discard(connection)
        if not self.connections:
            self._idle.set()

    def run(self, connection: HostConnection, message: list[Any]) -> None:
        """A call from an authenticated orchestrator: run it, or refuse it as busy."""
        _, batch_id, method, args, kwargs, contexts = message
        if self.draining or len(self.pending) >= self.max_pending:
            reason = "draining" if self.draining else "at capacity"
            connection.link.send(codec.encode(["busy", batch_id, reason]))
            return
        call = (batch_id, method, args, kwargs)
        try:
            link = self._stream_link(connection, call)
        except ProtocolError as fault:  # the batch fails; the connection stays
            connection.link.send(streaming.protocol_fault(batch_id, fault))
            return
        future = self._model.run(call, call_context.checked(contexts), link)
        self.pending.add(future)
        future.add_done_callback(lambda done: self._answered(connection, done, batch_id))

    def _stream_link(self, connection: HostConnection, call: Call) -> RelayedStream | None:
        """The link of a streaming batch, held by its connection until it is answered."""
        batch_id, method, args, kwargs = call
        spec = self._model.specs.get(method)
        if spec is None or not spec.stream:
            return None
        size = streaming.batch_size(spec, args, kwargs)
        link = RelayedStream(connection.link.send, self.config.name, method, batch_id, size)
        connection.streams[batch_id] = link
        return link

    def _answered(
        self, connection: HostConnection, future: asyncio.Future[Any], batch_id: int
    ) -> None:
        self.pending.discard(future)
        connection.streams.pop(batch_id, None)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:  # answer() catches the method's errors: this is ours
            logger.error("a batch failed in the worker", exc_info=error)
            connection.link.abort(f"internal error: {error}")
            return
        connection.link.send(cast(list[Any], future.result()))


class HostConnection:
    """One orchestrator's connection: handshake, then calls, heartbeats and the
    frames it sends to the streaming batches it holds."""

    def __init__(self, host: WorkerHost) -> None:
        self.host = host
        self.link = FrameLink(
            self._on_message, self._on_closed, protocol.HELLO_LIMIT_BYTES, self._opened
        )
        self.peer = "?"
        self.state = "hello"
        self.client_nonce = b""
        self.worker_nonce = b""
        self.client_spec = ""
        self.streams: dict[int, RelayedStream] = {}  # by batch id, until answered
        self._timer: asyncio.TimerHandle | None = None

    def going_away(self) -> None:
        if self.state == "serving":
            self.link.send(codec.encode(["going_away"]))

    def _on_message(self, message: Any) -> None:
        if self.state == "serving":
            if protocol.is_message(message, "call", 6):
                self.host.run(self, message)
            elif protocol.is_message(message, "ping", 2):
                self.link.send(codec.encode(["pong", message[1], len(self.host.pending)]))
            elif protocol.names_batch(message):
                self._relay(message)
            else:
                self.link.abort("an unexpected message")
        elif self.state == "hello" and protocol.is_message(message, "hello", 4):
            self._hello(message)
        elif self.state == "proof" and protocol.is_message(message, "proof", 2):
            self._proof(message[1])
        else:
            self.link.abort(f"an unexpected message during the handshake ({self.state})")

    def _relay(self, message: list[Any]) -> None:
        """A frame for a batch: to its stream if this connection holds it. One for a
        batch no longer held (a stop that crossed the batch's end) is dropped."""
        stream = self.streams.get(message[1])
        if stream is not None:
            stream.relay(message)
        else:
            logger.debug("dropped %r for batch %r: no longer held", message[0], message[1])

    def _hello(self, message: list[Any]) -> None:
        _, version, client_spec, nonce = message
        if version != protocol.PROTOCOL_VERSION:
            self._refuse(
                protocol.VERSION,
                f"this worker speaks protocol version {protocol.PROTOCOL_VERSION}, "
                f"the orchestrator version {version!r}",
            )
            return
        if not isinstance(nonce, bytes) or len(nonce) != protocol.NONCE_BYTES:
            self.link.abort("a malformed hello")
            return
        self.client_nonce, self.client_spec = nonce, str(client_spec)
        self.worker_nonce = protocol.new_nonce()
        host = self.host
        mine = protocol.proof(host.token, "worker", nonce, self.worker_nonce, host.spec_hash)
        self.state = "proof"
        self.link.send(
            codec.encode(
                ["challenge", protocol.PROTOCOL_VERSION, host.spec_hash, self.worker_nonce, mine]
            )
        )

    def _proof(self, received: Any) -> None:
        host = self.host
        expected = protocol.proof(
            host.token, "orchestrator", self.client_nonce, self.worker_nonce, host.spec_hash
        )
        if not protocol.proof_matches(expected, received):
            self._refuse(protocol.TOKEN, f"wrong {protocol.TOKEN_ENV}: the proof does not match")
            return
        if self.client_spec != host.spec_hash:
            self._refuse(
                protocol.SPEC,
                f"this worker runs {protocol.describe(host.spec)} (spec {host.spec_hash}), "
                f"the orchestrator's runner has spec {self.client_spec}",
            )
            return
        if self._timer is not None:
            self._timer.cancel()
        self.state = "serving"
        self.link.set_limit(host.max_frame_bytes)
        host.connections.add(self)
        logger.info("orchestrator %s connected", self.peer)
        self.link.send(codec.encode(["welcome", len(host.pending), host.methods]))
        if host.draining:
            self.going_away()

    def _refuse(self, cause: str, message: str) -> None:
        logger.warning("refused orchestrator %s: %s", self.peer, message)
        self.link.send(codec.encode(["refused", cause, message]))
        self.link.close()
        self.state = "refused"

    def _on_closed(self, reason: str | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.host.forget(self)
        for stream in self.streams.values():
            stream.abandon()
        if reason is not None:
            logger.warning("connection from %s dropped: %s", self.peer, reason)
        elif self.state == "serving":
            logger.info("orchestrator %s disconnected", self.peer)

    def _opened(self) -> None:
        """Called once connected: socket options, peer name, handshake deadline."""
        transport = self.link.transport
        assert transport is not None
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            protocol.tune_socket(sock, self.host.dead_peer_timeout_s)
        self._timer = asyncio.get_running_loop().call_later(
            HANDSHAKE_TIMEOUT_S, self.link.abort, "no handshake in time"
        )
