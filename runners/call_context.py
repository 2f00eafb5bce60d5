"""What a runner call carries to its worker besides its values: the request it
serves and the span it was made in, so the worker's log lines and its batch span
name the requests of each batch.

In the calling process, ``capture()`` runs once per submit: it reads the request
id bound in ``runners.log_context`` and the W3C ``traceparent`` bound by
``traced(...)`` around a graph node. On the wire it is the call frame's last
element, one map per call of the batch, in batch order, keys present only when
known; ``[]`` when no call of the batch has any (``runners.transport``):

    ["call", 7, "predict", [args], {kwargs},
     [{"request_id": "7f3a", "traceparent": "00-4bf9...-00f0...-01"}, {"request_id": "9c01"}]]

A worker accepts it as data only (``checked``): strings of bounded length, and
anything else is dropped, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from runners import log_context

CallContext = Mapping[str, str]  # {"request_id": ..., "traceparent": ...}, keys when known
KEYS = ("request_id", "traceparent")
MAX_LENGTH = 256  # longer strings are not carried
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_PARENT: ContextVar[str | None] = ContextVar("graphctl_call_traceparent", default=None)


@contextmanager
def traced(traceparent: str) -> Iterator[None]:
    """Calls submitted in this block carry ``traceparent`` (the span they are made in)."""
    token = _PARENT.set(traceparent)
    try:
        yield
    finally:
        _PARENT.reset(token)


def capture() -> CallContext | None:
    """This call's context, read at submit: ``None`` when nothing is bound (the cheap case)."""
    request_id = log_context.current().get("request_id")
    traceparent = _PARENT.get()
    if request_id is None and traceparent is None:
        return None
    context = {"request_id": str(request_id)} if request_id is not None else {}
    if traceparent is not None:
        context["traceparent"] = traceparent
    return context


def for_batch(contexts: Sequence[CallContext | None]) -> list[CallContext]:
    """The frame's element for a batch: one map per call, or ``[]`` when all are empty."""
    if all(context is None for context in contexts):
        return []
    return [context or {} for context in contexts]


def checked(raw: Any) -> list[CallContext]:
    """The contexts of a received frame, keeping only well-formed strings."""
    if not isinstance(raw, list):
        return []
    return [_checked_one(item) for item in raw]


def _checked_one(item: Any) -> CallContext:
    if not isinstance(item, dict):
        return {}
    kept = {
        key: value
        for key in KEYS
        if isinstance(value := item.get(key), str) and 0 < len(value) <= MAX_LENGTH
    }
    parent = kept.get("traceparent")
    if parent is not None and not _TRACEPARENT.fullmatch(parent):
        del kept["traceparent"]
    return kept


def trace_id(context: CallContext) -> str | None:
    """The trace id (32 hex digits) of a call's ``traceparent``, if it has one."""
    parent = context.get("traceparent")
    match = _TRACEPARENT.fullmatch(parent) if parent is not None else None
    return match.group(1) if match else None


def log_fields(contexts: Sequence[CallContext]) -> dict[str, list[str] | None]:
    """The fields a worker binds while it runs a batch: the request ids and distinct
    trace ids of its calls, in batch order (``None``: the batch has none)."""
    request_ids = [c["request_id"] for c in contexts if "request_id" in c]
    trace_ids = list(dict.fromkeys(t for c in contexts if (t := trace_id(c)) is not None))
    return {"request_id": request_ids or None, "trace_id": trace_ids or None}
