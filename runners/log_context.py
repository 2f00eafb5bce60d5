"""What a log line knows of the work it is about, whichever process writes it.

The server binds a request's fields (``request_id``, ``trace_id``, ``graph``)
around the request, the executor a function node's (``node``), and a worker
the fields of the batch it runs (``runner``, ``worker``, and the ``request_id``
list of the requests in the batch). A log formatter reads ``current()``; fields
never set are absent, not ``None``.

    with log_context.bound(request_id="7f3a", graph="diamond"):
        logger.info("started")          # a JSON formatter adds both fields

Context variables follow asyncio tasks and ``contextvars.copy_context()``, so
concurrent requests never see each other's fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

_EMPTY: Mapping[str, Any] = {}  # never mutated: every binding is a new mapping
_FIELDS: ContextVar[Mapping[str, Any]] = ContextVar("graphctl_log_fields", default=_EMPTY)


def current() -> Mapping[str, Any]:
    """The fields bound in this context (read them; never change them)."""
    return _FIELDS.get()


class bound:  # used like a function: ``with bound(...)``
    """Add ``fields`` (``None`` values are left out) for the block, then restore.

    A plain class rather than ``@contextmanager``: it runs once per request and per
    function node, where a generator's set-up costs more than the work."""

    __slots__ = ("_added", "_token")

    def __init__(self, **fields: Any) -> None:
        self._added = {key: value for key, value in fields.items() if value is not None}

    def __enter__(self) -> None:
        outer = _FIELDS.get()
        self._token = _FIELDS.set({**outer, **self._added} if outer else self._added)

    def __exit__(self, *exc: object) -> None:
        _FIELDS.reset(self._token)
