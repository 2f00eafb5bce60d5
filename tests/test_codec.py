from __future__ import annotations

import socket
import struct
import threading
from typing import Any

import numpy as np
import pytest

from runners import ProtocolError, UnsupportedValue
from runners.codec import (
    MAX_BUFFERS,
    FrameAssembler,
    _lengths_struct,
    decode,
    encode,
    recv_frames,
    roundtrip,
    send_frame,
)


def _wire(message: Any) -> bytes:
    return b"".join(bytes(memoryview(chunk).cast("B")) for chunk in encode(message))


def _feed(stream: bytes, step: int) -> list[Any]:
    assembler, pos = FrameAssembler(), 0
    out: list[Any] = []
    while pos < len(stream):
        target = assembler.get_buffer()
        n = min(len(target), step, len(stream) - pos)
        target[:n] = stream[pos : pos + n]
        pos += n
        out.extend(decode(*frame) for frame in assembler.advance(n))
    return out


def test_plain_values_round_trip() -> None:
    message = [None, True, 3, -2.5, "héllo", b"\x00\x01", {"a": [1, 2], 7: "int key"}]
    assert _feed(_wire(message), 1 << 20) == [message]


def test_tuples_arrive_as_lists_and_numpy_scalars_as_python_scalars() -> None:
    (decoded,) = _feed(_wire([(1, 2), np.float32(1.5), np.int64(7), np.bool_(True)]), 1 << 20)
    assert decoded == [[1, 2], 1.5, 7, True]
    assert type(decoded[2]) is int


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "uint16", "bool"])
def test_arrays_keep_dtype_shape_and_values(dtype: str) -> None:
    array = (np.arange(24) % 3).astype(dtype).reshape(2, 3, 4)
    (decoded,) = _feed(_wire({"x": array}), 1 << 20)
    assert decoded["x"].dtype == array.dtype
    np.testing.assert_array_equal(decoded["x"], array)
    assert decoded["x"].flags.writeable


def test_odd_arrays_round_trip() -> None:
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    arrays = [
        base[:, ::3],
        base.T,
        np.array(1, np.float32),
        np.zeros((0, 5)),
        np.array(["ab", "c"]),
    ]
    arrays.append(np.array(3.0))
    (decoded,) = _feed(_wire(arrays), 1 << 20)
    for got, want in zip(decoded, arrays, strict=True):
        np.testing.assert_array_equal(got, want)


def test_array_bytes_are_not_copied_when_encoding() -> None:
    array = np.arange(1 << 16, dtype=np.float32)
    chunks = encode([array])
    assert np.shares_memory(np.frombuffer(chunks[-1], dtype=np.uint8), array)
    assert len(encode([array[:10]])) == 1  # small frames go out as one chunk


@pytest.mark.parametrize("step", [1, 3, 17, 4096, 1 << 24])
def test_assembler_handles_any_split_of_a_stream(step: int) -> None:
    messages: list[Any] = [
        ["a", np.arange(5)],
        "x" * 70_000,
        [np.ones((300, 300), np.float32), b"tail"],
        0,
    ]
    stream = b"".join(_wire(m) for m in messages)
    decoded = _feed(stream, step)
    assert decoded[1] == messages[1] and decoded[3] == 0
    np.testing.assert_array_equal(decoded[2][0], messages[2][0])


@pytest.mark.parametrize(
    "value",
    [
        object(),
        {1, 2},
        2**70,
        np.array([object()]),
        np.datetime64,
        np.ones(3, np.complex64),
        np.complex128(1j),
    ],
)
def test_unsupported_values_name_runner_and_method(value: Any) -> None:
    with pytest.raises(UnsupportedValue) as info:
        encode(["ok", value], runner="mlp", method="predict")
    assert "'mlp.predict'" in str(info.value)


def test_structured_arrays_are_refused() -> None:
    array = np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])
    with pytest.raises(UnsupportedValue, match="dtype"):
        encode(array)


def test_unknown_extension_is_a_protocol_error() -> None:
    import msgpack

    header = msgpack.packb(msgpack.ExtType(42, b"x"))
    with pytest.raises(ProtocolError):
        decode(header, [])


def test_large_array_over_a_socket_pair() -> None:
    left, right = socket.socketpair()
    array = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    sender = threading.Thread(target=send_frame, args=(left, encode(["x", array])))
    with left, right:
        sender.start()
        (frame,) = recv_frames(right, FrameAssembler())
        sender.join(timeout=30)
        left.close()
        kind, received = decode(*frame)
        assert kind == "x"
        np.testing.assert_array_equal(received, array)
        assert recv_frames(right, FrameAssembler()) == []


@pytest.mark.parametrize(
    "dtype",
    [
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64", ">f4", ">i8", "<u2", "S5", "U3", "datetime64[ms]",
        "timedelta64[s]",
    ],
)  # fmt: skip
def test_every_plain_dtype_round_trips_with_its_byte_order(dtype: str) -> None:
    array = np.arange(6).astype(dtype).reshape(3, 2)
    (decoded,) = _feed(_wire([array]), 1 << 20)
    assert decoded[0].dtype == np.dtype(dtype)
    assert decoded[0].shape == (3, 2)
    np.testing.assert_array_equal(decoded[0], array)


def _frame_with_dtype(dtype_text: str) -> bytes:
    import msgpack

    from runners.codec import ARRAY_EXT

    meta = struct.pack("<IB1Q", 0, 1, 2) + dtype_text.encode()
    return msgpack.packb([msgpack.ExtType(ARRAY_EXT, meta)])


@pytest.mark.parametrize("dtype_text", ["|O", "<c8", "<c16", "|V8", "[('a', '<i4')]"])
def test_a_received_frame_declaring_objects_complex_or_records_is_refused(
    dtype_text: str,
) -> None:
    buffer = np.zeros(16, np.uint8)
    with pytest.raises(ProtocolError):
        decode(_frame_with_dtype(dtype_text), [buffer])


@pytest.mark.parametrize(
    ("header", "buffers"),
    [
        (b"\xc1", []),  # a byte msgpack never uses
        (b"\x92\x01", []),  # a list of two with one item
        (_frame_with_dtype("<f4"), []),  # an array whose buffer is missing
    ],
)
def test_malformed_frames_are_protocol_errors(header: bytes, buffers: list[Any]) -> None:
    with pytest.raises(ProtocolError):
        decode(header, buffers)


@pytest.mark.parametrize(
    ("message", "chunks"),
    [
        ("small", 1),  # prefix and header in one chunk: one syscall
        ("x" * (1 << 17), 2),  # a large header: prefix, header
        ([np.zeros(10, np.uint8)], 1),  # small with an array: joined
        ([np.zeros(1 << 17, np.uint8)], 3),  # large array: head, header, buffer
    ],
)
def test_small_frames_are_one_chunk_and_large_ones_are_not_copied(
    message: Any, chunks: int
) -> None:
    assert len(encode(message)) == chunks


def test_integers_beyond_64_bits_and_nested_unsupported_values_are_refused() -> None:
    for big in (2**64, -(2**63) - 1):
        with pytest.raises(UnsupportedValue) as info:
            encode({"n": [1, big]})
        assert info.value.message == f"cannot send the integer {big}: integers must fit in 64 bits"
    assert _feed(_wire([2**64 - 1, -(2**63)]), 1 << 20) == [[2**64 - 1, -(2**63)]]
    with pytest.raises(UnsupportedValue, match="type frozenset"):
        encode({"deep": [{"x": frozenset()}]})


def test_a_frame_over_the_limit_is_refused_before_its_buffers_exist() -> None:
    stream = _wire(["call", 1, "m", [np.zeros(1 << 16, np.uint8)], {}])
    head = stream[: stream.index(b"call") + 64]  # prefix, lengths, header: no array bytes
    assembler = FrameAssembler(max_frame_bytes=1 << 12)
    target = assembler.get_buffer()
    target[: len(head)] = head
    with pytest.raises(ProtocolError, match="over the limit of 4096"):
        assembler.advance(len(head))
    roomy = FrameAssembler(max_frame_bytes=1 << 20)
    target = roomy.get_buffer()
    target[: len(head)] = head
    assert roomy.advance(len(head)) == []  # within the limit: waits for the array


def _frame_of_empty_buffers(count: int) -> bytes:
    header = encode(["ok", 1, None])[0][8:]
    return struct.pack(f"<II{count}Q", len(header), count, *([0] * count)) + header


def test_a_frame_declaring_too_many_arrays_is_refused_before_they_exist() -> None:
    stream = _frame_of_empty_buffers(MAX_BUFFERS + 1)  # under 1 MiB: the size allows it
    assembler = FrameAssembler(max_frame_bytes=1 << 20)
    target = assembler.get_buffer()
    target[:8] = stream[:8]
    with pytest.raises(ProtocolError, match=f"over the limit of {MAX_BUFFERS}"):
        assembler.advance(8)
    assert _feed(_frame_of_empty_buffers(3), 1 << 20) == [["ok", 1, None]]


def test_a_message_of_too_many_arrays_is_refused_when_sent() -> None:
    arrays = [np.zeros(0, np.uint8)] * (MAX_BUFFERS + 1)
    with pytest.raises(UnsupportedValue, match=f"at most {MAX_BUFFERS}"):
        encode(["ok", 1, arrays], runner="r", method="m")
    for count in range(1, 300):  # many frame shapes keep a bounded cache
        _wire([np.zeros(1, np.uint8)] * count)
    assert _lengths_struct.cache_info().currsize <= 64


def test_roundtrip_gives_the_receivers_own_copy_of_every_array() -> None:
    big = np.arange(300_000, dtype=np.float32).reshape(1000, 300)  # several chunks
    small = np.arange(6, dtype=np.int16).reshape(2, 3)
    message = ["ok", 4, {"big": big, "small": small, "empty": big[:0], "text": "s"}]
    kind, batch_id, value = roundtrip(encode(message))
    assert (kind, batch_id, value["text"]) == ("ok", 4, "s")
    for name, sent in (("big", big), ("small", small), ("empty", big[:0])):
        received = value[name]
        np.testing.assert_array_equal(received, sent)
        assert received.dtype == sent.dtype and received.flags.writeable
        assert not np.shares_memory(received, sent)
