"""Streams inside one request: where a streaming node's chunks go as they come.

A node streams when its runner method streams, or when it is a per-chunk function
node (``each_chunk``). Each chunk it makes goes to the ``stream: true`` outputs it
feeds (``on_chunk``) and to the queue of each per-chunk node reading it. A
per-chunk node calls its function once per chunk of its queue and streams the
results in turn, so per-chunk nodes chain. Once a chunk went out, the node is
not retried (``sent``). A stream whose value nothing else
needs stops as soon as the last per-chunk node reading it has stopped reading
(a reader that failed, was skipped or ended): its worker stops the item.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.plan import NodePlan, Plan

OnChunk = Callable[[str, Any], None]  # (output name, chunk) of a streamed output
_END = object()  # the last item of a reader's queue: its source ended


def waits_for(node: NodePlan) -> frozenset[str]:
    """The nodes that must end before ``node`` starts: all it reads, except the
    stream a per-chunk node reads as it comes."""
    return node.deps - {node.chunk_source} if node.chunk_source else node.deps


@dataclass(frozen=True)
class StreamRoutes:
    """A plan's stream wiring, built once: per streaming node, the outputs and the
    per-chunk nodes its chunks go to, and whether anything needs its whole value."""

    outputs: Mapping[str, tuple[str, ...]]
    readers: Mapping[str, tuple[str, ...]]
    needed: frozenset[str]  # read whole by a node or an output: never stopped early

    @classmethod
    def of(cls, plan: Plan) -> StreamRoutes:
        outputs: dict[str, tuple[str, ...]] = {}
        for output in plan.outputs.values():
            if output.stream:
                outputs[output.ref.source] = (*outputs.get(output.ref.source, ()), output.name)
        readers: dict[str, tuple[str, ...]] = {}
        needed = {output.ref.source for output in plan.outputs.values()}
        for node in plan.nodes.values():
            source = node.chunk_source
            if source is not None:
                readers[source] = (*readers.get(source, ()), node.name)
            needed.update(waits_for(node))
        return cls(outputs, readers, frozenset(needed))

    def open(self, on_chunk: OnChunk | None) -> RequestStreams:
        return RequestStreams(self, on_chunk)


class RequestStreams:
    """One request's streams: a queue per per-chunk node, and the readers still reading."""

    def __init__(self, routes: StreamRoutes, on_chunk: OnChunk | None) -> None:
        self._routes = routes
        self._on_chunk = on_chunk
        self._queues: dict[str, asyncio.Queue[Any]] = {
            reader: asyncio.Queue() for readers in routes.readers.values() for reader in readers
        }
        self._reading = {source: set(readers) for source, readers in routes.readers.items()}
        self._sent: set[str] = set()  # nodes whose chunks reached an output or a reader

    def emit(self, node: str, chunk: Any) -> None:
        """Send one chunk of ``node`` to its streamed outputs and its readers."""
        outputs: tuple[str, ...] = ()
        if self._on_chunk is not None:
            outputs = self._routes.outputs.get(node, ())
            for output in outputs:
                self._on_chunk(output, chunk)
        readers = self._reading.get(node, ())
        for reader in readers:
            self._queues[reader].put_nowait(chunk)
        if outputs or readers:
            self._sent.add(node)

    def sent(self, node: str) -> bool:
        """Whether a chunk of ``node`` went out (to the client, or to a per-chunk
        node): running it again would send its chunks twice."""
        return node in self._sent

    def wanted(self, node: str) -> bool:
        """Whether ``node``'s stream should go on: it has no readers, or its value is
        needed, or a reader still reads it."""
        reading = self._reading.get(node)
        return reading is None or node in self._routes.needed or bool(reading)

    def ended(self, node: NodePlan) -> None:
        """``node`` ended, however: its readers' queues end, and it reads no more."""
        for reader in self._routes.readers.get(node.name, ()):
            self._queues[reader].put_nowait(_END)
        if node.chunk_source is not None:
            self._reading[node.chunk_source].discard(node.name)

    async def map_chunks(self, node: NodePlan, call: Callable[[Any], Awaitable[Any]]) -> list[Any]:
        """Run a per-chunk node: ``call`` each chunk of its source as it comes, stream
        the results (``None`` drops the chunk); the node's value is their list."""
        results: list[Any] = []
        async for chunk in self._chunks(node.name):
            result = await call(chunk)
            if result is not None:
                results.append(result)
                self.emit(node.name, result)
            if not self.wanted(node.name):
                break
        return results

    async def _chunks(self, reader: str) -> AsyncIterator[Any]:
        queue = self._queues[reader]
        while (chunk := await queue.get()) is not _END:
            yield chunk
