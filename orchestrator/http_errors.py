"""How graphctl's exceptions become HTTP answers: status, message, headers.

One table for every route, so ``POST /{graph}`` and the Open Inference Protocol
routes agree: a bad request is the caller's fault (4xx), overload and start-up
are temporary (503 with ``Retry-After``), a deadline is 504, and a node failure
is 500 with the node named, never a traceback. A node that failed because its
worker crashed or its queue was full is temporary too: 503, so callers retry.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from orchestrator.errors import (
    DeadlineExceeded,
    GraphClosed,
    GraphctlError,
    NodeFailed,
    RequestError,
    SkippedOutput,
)
from runners.errors import Overloaded, PoolClosed, RunnerError

DEFAULT_RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class HttpError:
    """An error as the HTTP layer answers it."""

    status: int
    message: str
    field: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def _temporary(error: BaseException) -> HttpError | None:
    """503 for failures that retrying later fixes: overload, restarts, start-up."""
    if isinstance(error, Overloaded):
        return HttpError(503, str(error), headers=_retry_after(error.retry_after_s))
    if isinstance(error, RunnerError) and (error.retryable or isinstance(error, PoolClosed)):
        return HttpError(503, str(error), headers=_retry_after(DEFAULT_RETRY_AFTER_S))
    if isinstance(error, GraphClosed):
        return HttpError(503, str(error), headers=_retry_after(DEFAULT_RETRY_AFTER_S))
    return None


def classify(error: BaseException, *, bad_request_status: int = 422) -> HttpError:
    """The HTTP answer to ``error``; ``bad_request_status`` is 422 or 400 (OIP)."""
    if isinstance(error, RequestError):
        return HttpError(bad_request_status, error.message, field=error.field)
    temporary = _temporary(error)
    if temporary is not None:
        return temporary
    if isinstance(error, NodeFailed):
        cause = _temporary(error.cause)
        if cause is not None:
            return HttpError(503, str(error), headers=cause.headers)
        return HttpError(500, str(error))
    if isinstance(error, DeadlineExceeded):
        return HttpError(504, str(error) or "the request's deadline passed")
    if isinstance(error, SkippedOutput):
        return HttpError(500, str(error))
    if isinstance(error, GraphctlError | RunnerError):
        return HttpError(500, str(error))
    return HttpError(500, f"internal error: {type(error).__name__}")


def error_response(error: HttpError, *, detail: bool = False) -> JSONResponse:
    """``{"error": ...}``; with ``detail`` also FastAPI's ``detail`` list naming the field."""
    body: dict[str, Any] = {"error": error.message}
    if error.field is not None:
        body["field"] = error.field
    if detail and error.status == 422:
        loc: list[str] = ["body", *(error.field.split(".") if error.field else [])]
        body["detail"] = [{"loc": loc, "msg": error.message, "type": "value_error"}]
    return JSONResponse(body, status_code=error.status, headers=dict(error.headers))
