"""Request bodies parsed as JSON, with the limits a server needs before parsing,
and answers written as JSON (``dumps``).

``json.loads`` recurses once per nesting level, so a body of a few thousand
``[`` raises ``RecursionError`` deep inside the parser (and anything that walks
the value later would too). ``loads`` first measures the nesting depth of the
raw bytes: bodies with fewer brackets than the limit (most requests) cost two
``bytes.count`` calls; larger ones are reduced (in C: ``translate``, ``split``)
to their brackets outside strings, whose running depth numpy sums.

The parser is orjson's: strict JSON (no ``NaN`` or ``Infinity``, valid UTF-8),
about four times faster than the standard library's. orjson reads an integer
past 64 bits as a rounded float, so a body with a run of 20 digits or more
(rare: an id, a big count) is parsed by the standard library instead, which
keeps every integer exact (and still refuses ``NaN`` and ``Infinity``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson

from orchestrator.errors import RequestError

MAX_JSON_DEPTH = 100  # arrays and objects inside each other; a tensor needs one per dimension

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


def nesting_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in the JSON text ``raw`` (0 for a scalar)."""
    if b"\\" in raw:  # escaped backslashes and quotes do not open or close strings
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Every quote left toggles "inside a string": the even parts are outside.
    brackets = b"".join(raw.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    if not brackets:
        return 0
    steps = _STEP[np.frombuffer(brackets, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int32).max())


# Digits as "0", everything else as " ": a body with twenty "0" in a row once
# translated holds a number that may not fit 64 bits (orjson would round it). Two C
# passes, about 0.5 us for a 64-float body (a regular expression took 4 us).
_DIGITS_AS_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 20


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# Built once: ``json.loads`` with any keyword builds a new decoder on every call.
_EXACT_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def loads(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``raw`` parsed; ``RequestError`` if it is not JSON or nests deeper than ``max_depth``."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") > max_depth and nesting_depth(data) > max_depth:
        raise RequestError(f"the JSON nests deeper than {max_depth} levels")
    try:
        if _LONG_RUN in data.translate(_DIGITS_AS_ZERO):
            return _EXACT_DECODER.decode(data.decode("utf-8"))
        return orjson.loads(data)
    except (ValueError, UnicodeDecodeError) as error:  # orjson's JSONDecodeError too
        raise RequestError(f"not valid JSON: {error}") from None


def dumps(value: Any) -> bytes:
    """JSON bytes of a ``to_jsonable`` value; NaN and infinities, which JSON cannot
    carry, become ``null``. orjson writes it, except a value holding an integer past
    64 bits, which only the standard library can write."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(_finite(value), separators=(",", ":")).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
