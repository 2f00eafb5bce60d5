"""What a log line knows of the work it is about, whichever process writes it.

The server binds a request's fields (``request_id``, ``trace_id``, ``graph``)
around the request, the executor a node's (``node``, ``runner``), and a worker
the fields of the batch it runs (``runner``, ``worker``, and the ``request_id``
list of the requests in the batch). A log formatter reads ``current()``; fields
never set are absent, not ``None``.

    with log_context.bound(request_id="7f3a", graph="diamond"):
        logger.info("started")          # a JSON formatter adds both fields

Context variables follow asyncio tasks and ``contextvars.copy_context()``, so
concurrent requests never see each other's fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_FIELDS: ContextVar[Mapping[str, Any]] = ContextVar("graphctl_log_fields", default=_EMPTY)


def current() -> Mapping[str, Any]:
    """The fields bound in this context (read-only)."""
    return _FIELDS.get()


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (``None`` values are left out) for the block, then restore."""
    added = {key: value for key, value in fields.items() if value is not None}
    token = _FIELDS.set(MappingProxyType({**_FIELDS.get(), **added}))
    try:
        yield
    finally:
        _FIELDS.reset(token)
