"""A streaming batch on a worker host (``runners.remote.host``): the model thread
steps the generator, the host's loop owns the connection.

Each step's frames are handed to the loop to send; the orchestrator's frames for
the batch (``stop``, ``join``, and any other kind naming the batch) are relayed by
the loop, verbatim, into an inbox the model thread reads between steps, where the
batch's link (``runners.worker``'s, shared with worker processes) interprets them
as a worker process's link does its socket's. When the connection closes, every
item (joined ones too) is stopped at the next step.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from runners import codec, streaming


class RelayedStream:
    """A streaming batch's ``StreamLink`` on a worker host: ``emit`` and
    ``pool_frames`` are called in the model thread, ``relay`` and ``abandon`` on the
    host's loop."""

    def __init__(
        self, send: Callable[[list[Any]], None], runner: str, method: str, batch_id: int, size: int
    ) -> None:
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._runner, self._method = runner, method
        self._batch_id = batch_id
        self._size = size  # its items, joined ones included, as the thread last said
        self._inbox: deque[list[Any]] = deque()  # appended by the loop, emptied by the thread
        self._abandoned = False  # set by the loop once the connection closed

    def emit(self, frame: list[Any]) -> None:
        """Send one step's frame; it leaves before the batch's reply, which the loop
        learns of only after the callbacks scheduled here."""
        if frame[0] == "joined":
            self._size = int(frame[2])
        chunks = codec.encode(frame, runner=self._runner, method=self._method)
        self._loop.call_soon_threadsafe(self._send, chunks)

    def pool_frames(self) -> list[list[Any]]:
        """The frames relayed since the last step; once abandoned, a stop per item
        instead (joins still waiting are dropped: nobody would read their chunks)."""
        messages: list[Any] = []
        while self._inbox:
            messages.append(self._inbox.popleft())
        if self._abandoned:
            return [["stop", self._batch_id, index] for index in range(self._size)]
        return streaming.pool_frames_in(messages)

    def relay(self, message: list[Any]) -> None:
        """A frame from the orchestrator naming this batch (on the loop)."""
        self._inbox.append(message)

    def abandon(self) -> None:
        """Stop every item at the next step: nobody is left to read the stream."""
        self._abandoned = True
