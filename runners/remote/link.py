"""One TCP connection carrying codec frames, for both ends of the protocol: frames
are received in place (``runners.codec.FrameAssembler``, bounded in size), decoded,
and handed to the owner synchronously on the loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from runners import codec
from runners.errors import ProtocolError

logger = logging.getLogger("runners.remote")


class FrameLink(asyncio.BufferedProtocol):
    """``on_message(message)`` per frame; ``on_closed(reason)`` once, when the
    connection ends (``reason`` is ``None`` for a clean close). A frame over the
    limit or malformed closes the connection."""

    def __init__(
        self,
        on_message: Callable[[Any], None],
        on_closed: Callable[[str | None], None],
        max_frame_bytes: int,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self._on_open = on_open
        self._on_message = on_message
        self._on_closed = on_closed
        self._assembler = codec.FrameAssembler(max_frame_bytes)
        self._error: str | None = None
        self.transport: asyncio.Transport | None = None
        self.last_heard = 0.0  # loop time of the last bytes received

    def set_limit(self, max_frame_bytes: int) -> None:
        self._assembler.max_frame_bytes = max_frame_bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.last_heard = asyncio.get_running_loop().time()
        if self._on_open is not None:
            self._on_open()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._assembler.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.last_heard = asyncio.get_running_loop().time()
        try:
            for header, buffers in self._assembler.advance(nbytes):
                if self.transport is None or self.transport.is_closing():
                    return
                self._on_message(codec.decode(header, buffers))
        except ProtocolError as exc:
            self.abort(exc.message)

    def send(self, chunks: list[Any]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if len(chunks) == 1:
            transport.write(chunks[0])
        else:
            transport.writelines(chunks)

    def abort(self, reason: str) -> None:
        """Drop the connection now; ``reason`` reaches ``on_closed``."""
        self._error = self._error or reason
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close once what was written is sent."""
        if self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self._error or (str(exc) or type(exc).__name__ if exc is not None else None)
        self.transport = None
        self._on_closed(reason)
