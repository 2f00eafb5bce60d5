"""Streaming methods: a generator's steps as frames on the worker's side, chunks
delivered to each caller's iterator on the pool's side.

A streaming method (``@method(stream=True)``, sync or async generator) runs as
one batch like any other, but answers in steps before its final reply:

    worker -> pool   ["chunk", batch id, [chunk or None per item]]   (a step)
                     ["end", batch id, item index]                   (an item finished)
                     ["ok", batch id, None] | ["error", batch id, type, message]
    pool -> worker   ["stop", batch id, item index]   (its caller went away)
                     ["join", batch id, [args], {kwargs}]  (calls joining, stacked)
    worker -> pool   ["joined", batch id, items]   (it took a join: its items now)

Alone (not batchable) the method yields its chunks one by one. Batchable, it
takes one item per call (the ``stack`` style) and yields, per step, a list
aligned with the batch: a chunk per item still running, ``None`` for an item
with nothing to say this step, ``END`` for an item that finishes at this step.
The value of each ``yield`` is the frozenset of indices no longer wanted (ended,
or stopped because their caller went away): the method may skip their work.
When every item is unwanted the generator is closed; when it returns, every
item still running ends. Chunks are never ``None``.

A method declared ``joins=True`` takes new calls between steps
(``runners.joining``): the worker reads ``join`` frames as it reads ``stop``
frames, appends their items to the argument lists the generator holds, and
acknowledges each with ``joined`` before the step that includes them. A
malformed ``join`` is the pool's fault, not the method's: the batch ends with a
``ProtocolError`` reply and a log line saying so (``protocol_fault``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from runners.errors import MethodError, ProtocolError, RunnerError, UnsupportedValue
from runners.replies import error_reply, protocol_fault_reply
from runners.runnable import END, MethodSpec
from runners.types import CallResult

logger = logging.getLogger("runners.streaming")

RunSync = Callable[[Callable[[], Any]], Awaitable[Any]]
Emit = Callable[[list[Any]], None]
PROGRESS = ("chunk", "end", "joined")  # a streaming batch's frames before its reply


def is_progress(message: Any) -> bool:
    """A chunk or end frame: the worker still holds its batch."""
    return isinstance(message, list) and bool(message) and message[0] in PROGRESS


class StepFramer:
    """The frames of each step of one streaming batch of ``size`` items."""

    def __init__(self, batch_id: int, size: int, batchable: bool) -> None:
        self.batch_id = batch_id
        self.size = size
        self.batchable = batchable
        self.ended: set[int] = set()
        self.stopped: set[int] = set()

    @property
    def unwanted(self) -> frozenset[int]:
        return frozenset(self.ended | self.stopped)

    @property
    def finished(self) -> bool:
        return len(self.ended | self.stopped) >= self.size

    def stop(self, index: int) -> None:
        """The pool stopped item ``index`` (its caller went away)."""
        if 0 <= index < self.size:
            self.stopped.add(index)

    def step(self, yielded: Any) -> list[list[Any]]:
        """The chunk frame (if any chunk) and end frames of one yielded step."""
        items = self._items(yielded)
        chunks: list[Any] = [None] * self.size
        ends: list[int] = []
        for index, value in enumerate(items):
            if index in self.ended or index in self.stopped or value is None:
                continue
            if value is END:
                self.ended.add(index)
                ends.append(index)
            else:
                chunks[index] = value
        frames: list[list[Any]] = []
        if any(chunk is not None for chunk in chunks):
            frames.append(["chunk", self.batch_id, chunks])
        frames.extend(["end", self.batch_id, index] for index in ends)
        return frames

    def _items(self, yielded: Any) -> Sequence[Any]:
        if not self.batchable:
            return [yielded]
        if not isinstance(yielded, (list, tuple)) or len(yielded) != self.size:
            raise MethodError(
                f"a batchable streaming method must yield a list of {self.size} items "
                f"(one per item of its batch), got {type(yielded).__name__}",
                error_type="BatchShapeError",
            )
        return yielded


def batch_size(spec: MethodSpec, args: Sequence[Any], kwargs: Any) -> int:
    """Items in a streaming batch: the length of its stacked arguments (1 unbatched).
    ``ProtocolError`` when they are not stacked (a runner that overrides
    ``batchable`` against the method's declaration, or a malformed call frame)."""
    if not spec.batchable:
        return 1
    try:
        values = [*args, *dict(kwargs).values()]
        return len(values[0]) if values else 1
    except (TypeError, ValueError):
        raise ProtocolError(
            f"{spec.name} is declared batchable: its arguments must come stacked, "
            "one entry per item (does the runner override batchable?)"
        ) from None


async def run_direct(step: Callable[[], Any]) -> Any:
    """Run a sync step where we are (a worker process's own loop)."""
    return step()


def _send(gen: Any, value: Any) -> tuple[bool, Any]:
    """One step of a sync generator; ``(True, None)`` once it returned (a
    ``StopIteration`` cannot cross a future)."""
    try:
        return False, gen.send(value)
    except StopIteration:
        return True, None


async def _next_step(gen: Any, value: Any, run_sync: RunSync) -> tuple[bool, Any]:
    if inspect.isasyncgen(gen):
        try:
            return False, await gen.asend(value)
        except StopAsyncIteration:
            return True, None
    result: tuple[bool, Any] = await run_sync(functools.partial(_send, gen, value))
    return result


POOL_FRAMES = ("stop", "join")  # the pool's frames a running streaming batch reads


class StreamLink(Protocol):
    """A streaming batch's way out and in: where its step frames go, and the pool's
    ``stop`` and ``join`` frames for it since the last step (a worker process's
    socket, ``runners.worker``; a worker host's connection, ``runners.remote``)."""

    def emit(self, frame: list[Any]) -> None: ...

    def pool_frames(self) -> list[list[Any]]: ...


def pool_frames_in(messages: Iterable[Any]) -> list[list[Any]]:
    """The frames of ``messages`` a running streaming batch reads."""
    return [message for message in messages if message[0] in POOL_FRAMES]


def take_pool_frames(
    framer: StepFramer,
    messages: Iterable[list[Any]],
    inputs: tuple[list[Any], dict[str, Any]] | None,
) -> list[list[Any]]:
    """Apply the pool's ``stop`` and ``join`` frames for this batch, in order; the
    ``joined`` frames to send. ``inputs`` (the lists the generator holds) is
    ``None`` for a method that takes no joins: its joins are left unanswered, and
    the pool requeues their calls when the batch ends."""
    acks: list[list[Any]] = []
    for message in messages:
        if message[1] != framer.batch_id:
            continue  # for a batch already finished
        if message[0] == "stop":
            framer.stop(int(message[2]))
        elif message[0] == "join" and inputs is not None:
            framer.size += extend_inputs(*inputs, message[2], message[3])
            acks.append(["joined", framer.batch_id, framer.size])
    return acks


def extend_inputs(args: list[Any], kwargs: dict[str, Any], more_args: Any, more_kwargs: Any) -> int:
    """Append a join's stacked items to the batch's argument lists, in place (the
    generator holds them); how many items joined."""
    if len(more_args) != len(args) or set(more_kwargs) != set(kwargs):
        raise ProtocolError("a join's arguments do not match its batch's")
    pairs = [*zip(args, more_args, strict=True), *((kwargs[k], v) for k, v in more_kwargs.items())]
    counts = {len(extra) for _, extra in pairs}
    if len(counts) > 1 or not all(isinstance(t, list) for t, _ in pairs):
        raise ProtocolError("a join's arguments must be lists of one length")
    for target, extra in pairs:
        target.extend(extra)
    return counts.pop() if counts else 0


async def drive(
    gen: Any,
    framer: StepFramer,
    emit: Emit,
    poll: Callable[[], Iterable[list[Any]]],
    run_sync: RunSync,
    inputs: tuple[list[Any], dict[str, Any]] | None = None,
) -> ProtocolError | None:
    """Step ``gen`` until it returns or no item is wanted, emitting each step's
    frames; between steps, the pool's frames (``poll``) stop items or join new ones.
    A malformed one ends the batch: its fault is returned."""
    sent: frozenset[int] | None = None
    try:
        while not framer.finished:
            done, yielded = await _next_step(gen, sent, run_sync)
            if done:
                break
            for frame in framer.step(yielded):
                emit(frame)
            try:
                acks = take_pool_frames(framer, poll(), inputs)
            except ProtocolError as fault:
                return fault
            for frame in acks:
                emit(frame)
            sent = framer.unwanted
    finally:
        await _close(gen, run_sync)
    return None


async def _close(gen: Any, run_sync: RunSync) -> None:
    if inspect.isasyncgen(gen):
        await gen.aclose()
    else:
        await run_sync(gen.close)


async def refuse_undeclared(gen: Any, method: str, run_sync: RunSync) -> NoReturn:
    """A generator from a method not declared a stream is closed and refused, in
    every kind of worker alike: its caller asked for one value."""
    await _close(gen, run_sync)
    raise UnsupportedValue(
        f"{method} returned a generator: declare it @method(stream=True) to stream it"
    )


def protocol_fault(batch_id: int, fault: ProtocolError) -> list[Any]:
    """The reply ending batch ``batch_id`` over a malformed frame from the pool,
    logged as the pool's fault (the method did not raise)."""
    logger.error("batch %s: a frame from the pool was malformed: %s", batch_id, fault.message)
    return protocol_fault_reply(batch_id, fault.message)


async def answer_stream(
    gen: Any,
    spec: MethodSpec,
    call: tuple[int, str, list[Any], dict[str, Any]],
    emit: Emit,
    poll: Callable[[], Iterable[list[Any]]],
    run_sync: RunSync,
) -> list[Any] | None:
    """Run one streaming batch; ``None`` when it ended well (the caller sends the
    ``ok`` reply), else its error reply. ``gen`` is what the method returned, with
    ``call``'s argument lists (which grow if the method takes joins); ``poll``
    gives the pool's ``stop`` and ``join`` frames received since the last step."""
    batch_id, _, args, kwargs = call
    if not (inspect.isgenerator(gen) or inspect.isasyncgen(gen)):
        return error_reply(batch_id, TypeError(f"{spec.name} did not return a generator"))
    try:
        framer = StepFramer(batch_id, batch_size(spec, args, kwargs), spec.batchable)
    except ProtocolError as unstacked:
        await _close(gen, run_sync)
        return protocol_fault(batch_id, unstacked)
    inputs = (args, kwargs) if spec.joins else None
    fault = await drive(gen, framer, emit, poll, run_sync, inputs)
    return None if fault is None else protocol_fault(batch_id, fault)


_DONE = object()  # the iterator's last value: its future holds the outcome


@dataclass(eq=False)
class ItemStream:
    """One caller's side of a streaming call: its chunks, in order, then the end."""

    chunks: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    batch_id: int | None = None  # the batch running it, once sent
    index: int = 0  # its place in that batch
    sent_at: float = 0.0  # when it left the queue (its batch was sent, or it joined)
    started: bool = False  # a chunk reached the caller's queue

    def board(self, batch_id: int, index: int, now: float) -> None:
        """Its call became item ``index`` of batch ``batch_id`` at ``now``."""
        self.batch_id, self.index, self.sent_at = batch_id, index, now

    def watch(self, future: asyncio.Future[Any]) -> None:
        """End the iterator whenever the call's future is settled, however."""
        future.add_done_callback(lambda _: self.chunks.put_nowait(_DONE))

    async def next_chunk(self) -> Any:
        """The next chunk, or ``DONE`` once the call is settled."""
        return await self.chunks.get()


def is_done(value: Any) -> bool:
    return value is _DONE


def deliver_progress(flight: Any, message: list[Any], worker: int) -> None:
    """Hand a chunk frame's chunks to their callers, end one item, or count the
    items of a join the worker took (``flight``: a ``runners.batcher.Flight``)."""
    calls = flight.calls
    if message[0] == "chunk":
        for call, chunk in zip(calls, message[2], strict=False):
            if chunk is not None and call.stream is not None and not call.future.done():
                call.stream.started = True
                call.stream.chunks.put_nowait(chunk)
    elif message[0] == "joined":
        take(flight, int(message[2]))
    elif 0 <= (index := int(message[2])) < len(calls):
        settle(calls[index], flight, len(calls), worker)


def take(flight: Any, items: int) -> None:
    """The worker runs ``flight``'s first ``items`` calls (its batch as sent, then
    each join it acknowledged): a call's queue wait is recorded once, when taken
    (a join sent to a batch that never took it waits in the queue again)."""
    upto = min(items, len(flight.calls))
    for call in flight.calls[flight.taken : upto]:
        sent_at = flight.sent_at if call.stream is None else call.stream.sent_at
        flight.queue.record_wait(sent_at - call.enqueued_at)
    flight.taken = max(flight.taken, upto)


def settle(call: Any, flight: Any, size: int, worker: int) -> None:
    """End a streaming call well (its chunks were its value); its wait ends when it
    left the queue (a joined call, after its batch was sent)."""
    if not call.future.done():
        sent_at = flight.sent_at if call.stream is None else call.stream.sent_at
        wait = sent_at - call.enqueued_at
        call.future.set_result(CallResult(None, wait, flight.batch_id, size, worker))


def end_stream(flight: Any, error: RunnerError | None, worker: int) -> None:
    """A streaming batch's final reply: the items its worker took that still run
    end, or fail with ``error`` (a stream is never retried: its chunks already
    reached the caller). Joins it never took are ``runners.joining``'s."""
    for call in flight.calls[: flight.taken]:
        if call.future.done():
            continue
        if error is None:
            settle(call, flight, flight.taken, worker)
        else:
            call.future.set_exception(error)


def unstarted(calls: Sequence[Any], error: RunnerError) -> list[Any]:
    """Calls of a batch lost with its worker that may run again: a stream that sent
    chunks fails with ``error`` instead (its caller already has a part of it)."""
    retry = []
    for call in calls:
        if call.stream is not None and call.stream.started and not call.future.done():
            call.future.set_exception(error)
        else:
            retry.append(call)
    return retry
