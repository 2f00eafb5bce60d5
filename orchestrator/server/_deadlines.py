"""Per-request deadlines asked for over HTTP: the header, the OIP parameter, their checks.

A caller that gives up after 200 ms gains nothing from a server that keeps its
request queued for the graph's whole ``timeout_ms``, so a request may carry a
shorter deadline of its own:

    POST /diamond            X-Request-Timeout-Ms: 200
    POST /v2/models/diamond/infer   {"parameters": {"timeout_ms": 200}, "inputs": [...]}

A request can only shorten the graph's deadline, never extend it: the graph's
``timeout_ms`` is what its operator promised the workers can bear.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from orchestrator.errors import RequestError

REQUEST_TIMEOUT_HEADER = "X-Request-Timeout-Ms"
OIP_TIMEOUT_PARAMETER = "timeout_ms"
_HEADER_KEY = REQUEST_TIMEOUT_HEADER.lower().encode()


def parse_timeout_ms(value: object, *, field: str) -> float:
    """A requested deadline in milliseconds: a positive finite number (or its text)."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise RequestError(f"must be a positive number of milliseconds, got {value!r}", field=field)
    return number


def header_timeout_ms(headers: Iterable[tuple[bytes, bytes]]) -> float | None:
    """The ``X-Request-Timeout-Ms`` of raw ASGI headers, checked; ``None`` when absent."""
    for key, value in headers:
        if key.lower() == _HEADER_KEY:
            return parse_timeout_ms(value.decode("latin-1"), field=REQUEST_TIMEOUT_HEADER)
    return None


def shorter_timeout_ms(graph_ms: float | None, requested_ms: float | None) -> float | None:
    """The deadline a request runs under: the shorter of the graph's and the caller's."""
    if requested_ms is None:
        return graph_ms
    return requested_ms if graph_ms is None else min(graph_ms, requested_ms)
