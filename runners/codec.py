"""Data-only frames between a pool and its workers: never pickle, so the same
protocol can cross TCP without becoming remote code execution.

    frame   = prefix lengths header buffers
    prefix  = <u32 header length> <u32 buffer count>          (little endian)
    lengths = <u64 byte length> per buffer
    header  = msgpack; a numpy array is ExtType(1, <u32 buffer index> <u8 ndim>
              <u64 size> per dimension, dtype string such as "<f4")
    buffers = the arrays' raw bytes, C order, sent and received in place

Carried: None, bool, int, float, str, bytes, lists, tuples (they arrive as lists),
dicts, numpy scalars (as Python scalars) and numpy arrays of plain dtypes.
"""

from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from runners.errors import ProtocolError, UnsupportedValue

PREFIX = struct.Struct("<II")
_ARRAY_META = struct.Struct("<IB")  # buffer index, ndim; then ndim u64 sizes, then dtype.str
ARRAY_EXT = 1
_INLINE_LIMIT = 1 << 16  # headers below this are joined with the prefix: one write
_STAGE_SIZE = 1 << 16
# Arrays per frame: a frame of many zero-length buffers is small in bytes yet costs
# one allocation each, so their count is bounded as the frame's size is.
MAX_BUFFERS = 1 << 16
# No complex dtypes: neither JSON nor the Open Inference Protocol carries them,
# so a method returning one is told so where it happened (runner and method).
_ARRAY_KINDS = frozenset("biufSUmM")
_SUPPORTED = "None, bool, int, float, str, bytes, lists, tuples, dicts and numpy arrays"

Buffer = np.ndarray[Any, np.dtype[np.uint8]]
Frame = tuple[bytes, list[Buffer]]


def encode(message: Any, *, runner: str | None = None, method: str | None = None) -> list[Any]:
    """The frame of ``message`` as a list of byte chunks for ``writelines``/``sendmsg``.

    Array bytes are not copied (unless the array is not C-contiguous).
    """
    buffers: list[memoryview] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            return _array_ext(obj, buffers, runner, method)
        if isinstance(obj, np.generic):
            value = obj.item()
            if value is None or isinstance(value, bool | int | float | str | bytes):
                return value
        if isinstance(obj, int):  # msgpack hands over only the ints it cannot carry
            raise UnsupportedValue(
                f"cannot send the integer {obj}: integers must fit in 64 bits",
                runner=runner,
                method=method,
            )
        raise UnsupportedValue(
            f"cannot send a value of type {type(obj).__name__} to or from a worker; "
            f"supported: {_SUPPORTED}",
            runner=runner,
            method=method,
        )

    try:
        header = msgpack.packb(message, default=default, use_bin_type=True)
    except (TypeError, OverflowError, ValueError) as exc:
        raise UnsupportedValue(
            f"cannot send this value to or from a worker ({exc}); supported: {_SUPPORTED}",
            runner=runner,
            method=method,
        ) from None
    if not buffers:
        if len(header) < _INLINE_LIMIT:
            return [PREFIX.pack(len(header), 0) + header]  # small: one chunk, one syscall
        return [PREFIX.pack(len(header), 0), header]
    if len(buffers) > MAX_BUFFERS:
        raise UnsupportedValue(
            f"cannot send {len(buffers)} arrays in one message: at most {MAX_BUFFERS}",
            runner=runner,
            method=method,
        )
    sizes = [b.nbytes for b in buffers]
    head = _lengths_struct(len(sizes)).pack(len(header), len(sizes), *sizes)
    if len(header) + sum(sizes) < _INLINE_LIMIT:
        return [b"".join((head, header, *buffers))]
    return [head, header, *buffers]


def call_frame(
    batch_id: int,
    method: str,
    args: list[Any],
    kwargs: Any,
    contexts: Sequence[Any],
    *,
    runner: str | None = None,
) -> list[Any]:
    """The chunks of a ``call`` frame: the one shape every worker kind receives a batch in."""
    return encode(
        ["call", batch_id, method, args, kwargs, list(contexts)], runner=runner, method=method
    )


@functools.lru_cache(maxsize=64)
def _lengths_struct(count: int) -> struct.Struct:
    return struct.Struct(f"<II{count}Q")


def _array_ext(
    array: np.ndarray[Any, Any], buffers: list[memoryview], runner: str | None, method: str | None
) -> msgpack.ExtType:
    dtype = array.dtype
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None:
        raise UnsupportedValue(
            f"cannot send a numpy array of dtype {dtype}: only real numeric, bool, "
            "string and datetime dtypes cross to a worker",
            runner=runner,
            method=method,
        )
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    buffers.append(_byte_view(array))
    return _array_meta(len(buffers) - 1, array.shape, dtype.str)


@functools.lru_cache(maxsize=256)
def _array_meta(index: int, shape: tuple[int, ...], dtype: str) -> msgpack.ExtType:
    """The extension of an array: the same few shapes recur call after call."""
    meta = _meta_struct(len(shape)).pack(index, len(shape), *shape)
    return msgpack.ExtType(ARRAY_EXT, meta + dtype.encode())


def _byte_view(array: np.ndarray[Any, Any]) -> memoryview:
    """The bytes of a C-contiguous array, without a copy."""
    try:
        return array.data.cast("B")
    except (TypeError, ValueError, NotImplementedError):  # datetimes, 0-d, empty: via uint8
        return memoryview(array.reshape(-1).view(np.uint8))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=64)
def _meta_struct(ndim: int) -> struct.Struct:
    return struct.Struct(f"<IB{ndim}Q")


@functools.lru_cache(maxsize=256)
def _dtype(text: str) -> np.dtype[Any]:
    """A received dtype, refused unless plain data (never objects or records)."""
    dtype = np.dtype(text)
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None:
        raise ProtocolError(f"a frame declares an array of dtype {text!r}")
    return dtype


@functools.lru_cache(maxsize=256)
def _parse_meta(data: bytes) -> tuple[int, np.dtype[Any], tuple[int, ...]]:
    """Buffer index, dtype and shape of an array extension (recurring, so cached)."""
    index, ndim, *shape = _meta_struct(data[4]).unpack_from(data)
    return index, _dtype(data[_ARRAY_META.size + 8 * ndim :].decode()), tuple(shape)


def decode(header: bytes, buffers: list[Buffer]) -> Any:
    """The message of one frame; arrays are views on ``buffers`` (no copy, writable)."""

    def ext_hook(code: int, data: bytes) -> Any:
        if code != ARRAY_EXT:
            raise ProtocolError(f"unknown extension type {code} in a frame")
        index, dtype, shape = _parse_meta(data)
        return buffers[index].view(dtype).reshape(shape)

    try:
        return msgpack.unpackb(header, ext_hook=ext_hook, strict_map_key=False, raw=False)
    except (ValueError, TypeError, IndexError, struct.error, msgpack.UnpackException) as exc:
        raise ProtocolError(f"malformed frame: {exc}") from None


class FrameAssembler:
    """Sans-IO frame parser: ``get_buffer()`` says where the next bytes go, so array
    bytes are received straight into the arrays' own memory (``recv_into``,
    ``asyncio.BufferedProtocol``); ``advance(n)`` returns the frames completed.

    ``max_frame_bytes`` (``None``: no limit) bounds what a frame may declare, and
    ``MAX_BUFFERS`` how many arrays: a frame over either is a ``ProtocolError``
    raised before anything is allocated for it, so a peer on a network
    (``runners.remote``) cannot make us allocate more than we allow."""

    def __init__(self, max_frame_bytes: int | None = None) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._stage = bytearray(_STAGE_SIZE)
        self._have = 0  # bytes staged for the current frame's prefix and header
        self._head_end = 0  # end of prefix + lengths + header, once known
        self._header = b""
        self._lengths: tuple[int, ...] = ()
        self._buffers: list[Buffer] = []
        self._index = 0  # buffer being filled (buffer phase only)
        self._offset = 0

    def get_buffer(self) -> memoryview:
        """Where the next received bytes go (``recv_into`` target)."""
        if self._head_end and self._index < len(self._buffers):
            return memoryview(self._buffers[self._index])[self._offset :]  # type: ignore[arg-type]
        return memoryview(self._stage)[self._have :]

    def advance(self, nbytes: int) -> list[Frame]:
        """Account for ``nbytes`` written there; the frames now complete."""
        if self._head_end and self._index < len(self._buffers):
            self._offset += nbytes
            return self._after_buffer_bytes()
        self._have += nbytes
        return self._parse_staged()

    def _parse_staged(self) -> list[Frame]:
        frames: list[Frame] = []
        while self._have >= PREFIX.size:
            if not self._head_end and not self._read_prefix():
                return frames
            if self._have < self._head_end:
                return frames
            total = self._head_end + sum(self._lengths)
            if total <= self._have:  # a whole small frame is staged: one copy, no loop
                frames.append(self._staged_frame(total))
                continue
            self._buffers = [np.empty(n, np.uint8) for n in self._lengths]  # not zeroed
            extra = self._stage[self._head_end : self._have]
            self._have = 0
            frames.extend(self._feed_buffers(extra))
            if self._head_end:  # buffers still incomplete: receive in place
                return frames
        return frames

    def _read_prefix(self) -> bool:
        header_len, count = PREFIX.unpack_from(self._stage)
        if count > MAX_BUFFERS:
            raise ProtocolError(f"a frame declares {count} arrays, over the limit of {MAX_BUFFERS}")
        end = PREFIX.size + 8 * count + header_len
        self._check_size(end)
        if end > len(self._stage):  # a new buffer: the old one may still be exported
            grown = bytearray(end)
            grown[: self._have] = self._stage[: self._have]
            self._stage = grown
        if self._have < end:
            return False
        self._lengths = _lengths_struct(count).unpack_from(self._stage)[2:]
        self._check_size(end + sum(self._lengths))
        self._header = bytes(self._stage[PREFIX.size + 8 * count : end])
        self._index, self._offset, self._head_end = 0, 0, end
        return True

    def _check_size(self, declared: int) -> None:
        limit = self.max_frame_bytes
        if limit is not None and declared > limit:
            raise ProtocolError(f"a frame of {declared} bytes is over the limit of {limit}")

    def _staged_frame(self, total: int) -> Frame:
        blob = self._stage[self._head_end : total]  # a copy: the arrays own these bytes
        buffers: list[Buffer] = []
        offset = 0
        for size in self._lengths:
            buffers.append(np.frombuffer(blob, np.uint8, size, offset))
            offset += size
        rest = self._stage[total : self._have]
        self._stage[: len(rest)] = rest
        self._have = len(rest)
        return self._finish_with(buffers)

    def _feed_buffers(self, extra: bytes | bytearray) -> list[Frame]:
        view, pos = memoryview(extra), 0
        self._skip_full()
        while pos < len(view) and self._index < len(self._buffers):
            target = memoryview(self._buffers[self._index])  # type: ignore[arg-type]
            take = min(len(target) - self._offset, len(view) - pos)
            target[self._offset : self._offset + take] = view[pos : pos + take]
            self._offset += take
            pos += take
            self._skip_full()
        if self._index < len(self._buffers):
            return []
        frame = self._finish()
        rest = bytes(view[pos:])
        self._stage[: len(rest)] = rest
        self._have = len(rest)
        return [frame]

    def _after_buffer_bytes(self) -> list[Frame]:
        self._skip_full()
        return [self._finish()] if self._index >= len(self._buffers) else []

    def _skip_full(self) -> None:
        while self._index < len(self._buffers) and self._offset >= len(self._buffers[self._index]):
            self._index += 1
            self._offset = 0

    def _finish(self) -> Frame:
        return self._finish_with(self._buffers)

    def _finish_with(self, buffers: list[Buffer]) -> Frame:
        frame = (self._header, buffers)
        self._header, self._buffers, self._head_end = b"", [], 0
        self._index = self._offset = 0
        return frame


def send_frame(sock: socket.socket, chunks: list[Any]) -> None:
    """Blocking send of one frame's chunks with one ``sendmsg`` where the kernel allows."""
    if len(chunks) == 1:
        sock.sendall(chunks[0])
        return
    sent = sock.sendmsg(chunks)
    total = sum(memoryview(c).nbytes for c in chunks)
    if sent == total:
        return
    for chunk in chunks:  # partial send: finish chunk by chunk
        view = memoryview(chunk).cast("B")
        if sent >= view.nbytes:
            sent -= view.nbytes
            continue
        sock.sendall(view[sent:])
        sent = 0


def recv_frames(sock: socket.socket, assembler: FrameAssembler) -> list[Frame]:
    """Blocking receive until at least one frame is complete; ``[]`` at end of stream."""
    while True:
        nbytes = sock.recv_into(assembler.get_buffer())
        if nbytes == 0:
            return []
        frames = assembler.advance(nbytes)
        if frames:
            return frames


def roundtrip(chunks: list[Any]) -> Any:
    """The message a receiver decodes from ``chunks``: for a worker in this process,
    so its values look exactly as they would coming from a worker process. Each
    chunk is copied once, straight into the receiver's buffers, as a socket would."""
    assembler, frames = FrameAssembler(), []
    for chunk in chunks:
        data = memoryview(chunk).cast("B")
        while data:
            target = assembler.get_buffer()
            n = min(len(target), len(data))
            target[:n] = data[:n]
            data = data[n:]
            frames += assembler.advance(n)
    header, buffers = frames[0]
    return decode(header, buffers)
