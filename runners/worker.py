"""The worker process: loads one Runnable, then serves batches one at a time.

    python -m runners.worker --fd 5 --config '{"runner": "mlp", "runnable": "models:MLP",
                                              "search_path": "graphs", "init": {}, "worker": 0,
                                              "log_level": 20}'

The config is data (JSON), never code. The worker speaks the frames of
``runners.codec`` over the inherited socket ``--fd``:

    worker -> pool   ["ready", pid, {method: [batchable, batch_dim, stack, stream, joins]}]
                     ["failed", error type, message]          (then exits)
    pool -> worker   ["call", batch id, method, [args], {kwargs}, [call contexts]]
    worker -> pool   ["ok", batch id, value] | ["error", batch id, error type, message]
    worker -> pool   ["chunk", ...], ["end", ...] before the reply of a streaming batch;
    pool -> worker   ["stop", batch id, item index]   (``runners.streaming``)
    pool -> worker   ["join", batch id, [args], {kwargs}]   (``runners.joining``)
    worker -> pool   ["joined", batch id, items]
    pool -> worker   ["ping", n]        (only while the worker holds no batch)
    worker -> pool   ["pong", n]

It serves with plain blocking sockets: one batch at a time needs no event loop
to wait on the pool, and a blocking ``recv_into`` is the shortest path. An ``async
def`` method runs to completion on the worker's one event loop, created at start-up
(its loop-bound state, such as an HTTP client, lives across calls). The worker
exits at end of stream, and when its parent dies (``PR_SET_PDEATHSIG`` on Linux).

The call contexts (``runners.call_context``: each call's request id and trace
parent) are bound as log fields while the batch runs (``runners.log_context``:
``runner`` and ``worker`` for the whole process, ``request_id`` and ``trace_id``
as lists per batch), and when the ``OTEL_*`` variables ask for traces the batch
gets its own span (``runners.otel.BatchSpans``), exported by this process.

What it prints and logs reaches the pool's log (``runners.worker_log``); a method
that raises is logged once, with its traceback, and the caller gets its message.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import inspect
import json
import logging
import os
import select
import signal
import socket
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from runners import call_context, codec, heap, log_context, otel, streaming, worker_log
from runners.call_context import CallContext
from runners.errors import TracingError, UnsupportedValue
from runners.replies import (
    batch_log_fields,
    batch_span,
    error_reply,
    load_runnable,
    method_table,
    no_method_reply,
    value_reply,
)
from runners.runnable import method_spec_of, runnable_methods

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_PR_SET_PDEATHSIG = 1

logger = logging.getLogger("runners.worker")


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent exits; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def serve(sock: socket.socket, config: Mapping[str, Any]) -> None:
    """Handshake, then answer calls until the pool closes the socket."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # the Runnable's __init__ may bind objects to it
    runner, worker = str(config["runner"]), int(config.get("worker", 0))
    try:
        provider = _process_provider(runner, worker)
        with (
            log_context.bound(runner=runner, worker=worker),
            batch_spans(provider, runner) as spans,
        ):
            _serve_on(loop, sock, config, spans)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()


def _process_provider(runner: str, worker: int) -> TracerProvider | None:
    """This worker process's provider when the environment asks for traces."""
    try:
        return otel.tracer_provider(otel.worker_attributes(runner, worker))
    except TracingError as error:  # the server reported it too; serve untraced
        logger.warning("traces are off in this worker: %s", error)
        return None


@contextmanager
def batch_spans(provider: TracerProvider | None, runner: str) -> Iterator[otel.BatchSpans | None]:
    """A span per batch through ``provider`` (none without one); the spans still
    buffered are exported when the block ends. Shared with ``runners.remote``'s host."""
    if provider is None:
        yield None
        return
    try:
        yield otel.BatchSpans(provider, runner)
    finally:
        provider.shutdown()


def _serve_on(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    config: Mapping[str, Any],
    spans: otel.BatchSpans | None,
) -> None:
    runner = str(config["runner"])
    try:
        instance = load_runnable(config)
    except BaseException as exc:  # any start-up failure is reported, then the worker exits
        logger.error("could not start %s", config["runnable"], exc_info=True)
        codec.send_frame(sock, codec.encode(["failed", type(exc).__name__, str(exc)]))
        return
    specs = runnable_methods(type(instance))
    table = method_table(instance)
    ready = {name: spec.to_wire() for name, spec in specs.items()}
    heap.tune_for_serving()
    codec.send_frame(sock, codec.encode(["ready", os.getpid(), ready]))
    assembler = codec.FrameAssembler()
    pending: deque[list[Any]] = deque()  # messages read and not yet handled, in order
    while frames := codec.recv_frames(sock, assembler):
        pending.extend(codec.decode(*frame) for frame in frames)
        while pending:
            message = pending.popleft()
            if message[0] == "ping":
                codec.send_frame(sock, codec.encode(["pong", message[1]]))
                continue
            if message[0] in ("stop", "join"):  # for a stream already finished: a
                continue  # join never acknowledged goes back to the pool's queue
            kind, batch_id, method, args, kwargs, *rest = message
            if kind != "call":
                raise SystemExit(f"unexpected message {kind!r} from the pool")
            contexts = call_context.checked(rest[0]) if rest else []
            call = (batch_id, method, args, kwargs)
            spec = specs.get(method)
            if spec is not None and spec.stream:
                link = SocketStreamLink(sock, assembler, runner, method, pending)
                reply = answer(loop, table, runner, call, spans, contexts, link)
            else:
                reply = answer(loop, table, runner, call, spans, contexts)
            codec.send_frame(sock, reply)


class PoolGone(ConnectionError):
    """The pool closed the worker's socket while a streaming batch ran: the pool is
    shutting down (or died), not the method failing; the worker leaves quietly."""


class SocketStreamLink:
    """A streaming batch's ``StreamLink`` in a worker process: sends its chunk frames
    on the socket, and reads the pool's frames between steps without blocking."""

    def __init__(
        self,
        sock: socket.socket,
        assembler: codec.FrameAssembler,
        runner: str,
        method: str,
        pending: deque[list[Any]],
    ) -> None:
        self._sock = sock
        self._assembler = assembler
        self._runner = runner
        self._method = method
        self._pending = pending  # read with the batch's call: its first stop or join frames

    def emit(self, frame: list[Any]) -> None:
        chunks = codec.encode(frame, runner=self._runner, method=self._method)
        try:
            codec.send_frame(self._sock, chunks)
        except OSError as exc:  # a broken pipe: the pool closed its end
            raise PoolGone(f"the pool closed the socket: {exc}") from None

    def pool_frames(self) -> list[list[Any]]:
        """The stop and join frames the pool sent since the last step, those read
        with the batch's call frame first (a join skipped there would shift the
        index of every later one)."""
        messages: list[Any] = list(self._pending)
        self._pending.clear()
        while select.select([self._sock], [], [], 0)[0]:
            frames = codec.recv_frames(self._sock, self._assembler)
            if not frames:
                raise PoolGone("the pool closed the socket")
            messages.extend(codec.decode(*frame) for frame in frames)
        return streaming.pool_frames_in(messages)


def answer(
    loop: asyncio.AbstractEventLoop,
    table: Mapping[str, Callable[..., Any]],
    runner: str,
    call: tuple[int, str, list[Any], dict[str, Any]],
    spans: otel.BatchSpans | None,
    contexts: Sequence[CallContext],
    link: streaming.StreamLink | None = None,
) -> list[Any]:
    """The reply frame of one batch, run with its calls' log fields and its span: an
    ``async def`` method runs on ``loop`` (the worker's one loop, shared with
    ``runners.remote``'s host). A streaming method sends its steps over ``link``
    first (a worker process's socket, or a worker host's connection)."""
    batch_id, method, args, kwargs = call
    with batch_log_fields(contexts):
        func = table.get(method)
        if func is None:
            return no_method_reply(batch_id, method)
        try:
            with batch_span(spans, batch_id, method, contexts):
                value = func(*args, **kwargs)
                if inspect.iscoroutine(value):
                    value = loop.run_until_complete(value)
                if inspect.isgenerator(value) or inspect.isasyncgen(value):
                    return _stream_reply(loop, value, func, call, link)
        except PoolGone:
            raise  # nobody is left to answer: main() exits quietly
        except Exception as exc:  # the user's error goes to the caller; the worker lives on
            if not isinstance(exc, UnsupportedValue):
                logger.error("%s raised", method, exc_info=True)
            return error_reply(batch_id, exc)
        return value_reply(batch_id, value, runner, method)


def _stream_reply(
    loop: asyncio.AbstractEventLoop,
    gen: Any,
    func: Callable[..., Any],
    call: tuple[int, str, list[Any], dict[str, Any]],
    link: streaming.StreamLink | None,
) -> list[Any]:
    """Run a streaming batch to its end; its final reply frame. Without a link the
    method returned a generator without being declared a stream: refused."""
    batch_id = call[0]
    if link is None:
        loop.run_until_complete(streaming.refuse_undeclared(gen, call[1], streaming.run_direct))
    spec = method_spec_of(func)
    run = streaming.answer_stream(
        gen, spec, call, link.emit, link.pool_frames, streaming.run_direct
    )
    error = loop.run_until_complete(run)
    return error if error is not None else codec.encode(["ok", batch_id, None])


def main(argv: list[str] | None = None) -> None:
    """``python -m runners.worker --fd N ...``: serve the pool on an inherited socket."""
    parser = argparse.ArgumentParser(prog="python -m runners.worker")
    parser.add_argument("--fd", type=int, required=True, help="inherited socket to the pool")
    parser.add_argument("--config", required=True, help="runner settings as JSON")
    parser.add_argument("--parent", type=int, default=os.getppid(), help="pool process id")
    options = parser.parse_args(argv)
    die_with_parent(options.parent)
    config = json.loads(options.config)
    worker_log.install(int(config.get("log_level", logging.WARNING)))
    sock = socket.socket(fileno=options.fd)
    try:
        serve(sock, config)
    except (ConnectionError, KeyboardInterrupt):
        pass
    finally:
        sock.close()


if __name__ == "__main__":
    main()
