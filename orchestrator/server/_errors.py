"""How graphctl's exceptions become HTTP answers: status, message, headers.

One table for every route, so ``POST /{graph}`` and the Open Inference Protocol
routes agree. ``STATUS`` maps an error class to its status and ``classify``
walks the error's MRO to the first class listed: the caller's fault is 4xx
(``RequestError``), temporary failures are 503 with ``Retry-After``
(``GraphUnavailable``, overload, crashed or closed pools, call timeouts), a
deadline is 504, and everything else is 500 with the node named, never a
traceback. A ``NodeFailed`` answers 503 when its cause does (a worker crashed,
a queue was full), so callers retry.

The text of an exception raised by a user's method or function may hold
anything (paths, keys, data), so a client is told only its type unless the
operator passes ``expose_errors``; ``HttpError.log_text`` keeps the full text
for the server log. graphctl's own messages (validation, timeouts, overload)
are always given in full. Nothing here depends on the web framework:
``_responses`` turns an ``HttpError`` into a Starlette response.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import (
    DeadlineExceeded,
    GraphctlError,
    GraphUnavailable,
    NodeFailed,
    RequestError,
)
from runners import log_context
from runners.errors import MethodError, RunnerError, Unavailable

DEFAULT_RETRY_AFTER_S = 1.0
BAD_REQUEST = 422  # ``RequestError``'s entry: the route's own 4xx (422, or 400 for OIP)
UNAVAILABLE = 503

# The status of each error class; ``classify`` takes the first class of the MRO.
STATUS: Mapping[type[BaseException], int] = {
    RequestError: BAD_REQUEST,
    GraphUnavailable: UNAVAILABLE,
    DeadlineExceeded: 504,
    GraphctlError: 500,
    Unavailable: UNAVAILABLE,  # overloaded, crashed or closed pools, call timeouts
    RunnerError: 500,
    BaseException: 500,
}


@dataclass(frozen=True)
class HttpError:
    """An error as the HTTP layer answers it."""

    status: int
    message: str
    field: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    log_text: str | None = None  # the full text when ``message`` is redacted


def status_of(error: BaseException) -> int:
    """The status of the first class of ``error``'s MRO in ``STATUS``; a failed
    node answers 503 when its cause does."""
    if isinstance(error, NodeFailed) and status_of(error.cause) == UNAVAILABLE:
        return UNAVAILABLE
    return next(STATUS[cls] for cls in type(error).__mro__ if cls in STATUS)


def _retry_after(error: BaseException) -> dict[str, str]:
    """``Retry-After`` in whole seconds: the error's own hint, else the default."""
    cause = error.cause if isinstance(error, NodeFailed) else error
    seconds = float(getattr(cause, "retry_after_s", DEFAULT_RETRY_AFTER_S))
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def is_users_error(error: BaseException) -> bool:
    """True for an exception raised by a user's method or function (not by graphctl)."""
    return isinstance(error, MethodError) or not isinstance(error, GraphctlError | RunnerError)


def public_text(error: BaseException, *, expose: bool = False) -> str:
    """What a client is told of ``error``: a user's exception only by its type."""
    if isinstance(error, NodeFailed) and is_users_error(error.cause) and not expose:
        return f"{error.where} failed: {public_text(error.cause)}"
    if expose or not is_users_error(error):
        return str(error)
    if isinstance(error, MethodError):
        where = ".".join(part for part in (error.runner, error.method) if part)
        raised = f"runner {where!r} raised" if where else "the method raised"
        return f"{raised} {error.error_type} (details in the server log)"
    return f"{type(error).__name__} (details in the server log)"


def classify(
    error: BaseException, *, bad_request_status: int = BAD_REQUEST, expose: bool = False
) -> HttpError:
    """The HTTP answer to ``error``; ``bad_request_status`` is 422 or 400 (OIP);
    ``expose`` gives clients the full text of users' exceptions."""
    status = status_of(error)
    if isinstance(error, RequestError):
        return HttpError(bad_request_status, error.message, field=error.field)
    if status == UNAVAILABLE:
        return HttpError(status, str(error), headers=_retry_after(error))
    if status == 504:
        return HttpError(status, str(error) or "the request's deadline passed")
    text = str(error) or type(error).__name__
    if not isinstance(error, GraphctlError | RunnerError):
        return HttpError(500, f"internal error: {type(error).__name__}", log_text=text)
    return HttpError(status, public_text(error, expose=expose), log_text=text)


def error_fields(message: str) -> dict[str, Any]:
    """``{"error": message}`` and the request id of the request being answered."""
    body: dict[str, Any] = {"error": message}
    request_id = log_context.current().get("request_id")
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_body(message: str) -> bytes:
    """The JSON bytes of ``error_fields``, for plain ASGI answers."""
    return json.dumps(error_fields(message)).encode()
