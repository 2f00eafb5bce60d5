"""How graphctl's exceptions become HTTP answers: status, message, headers.

One table for every route, so ``POST /{graph}`` and the Open Inference Protocol
routes agree: a bad request is the caller's fault (4xx), overload and start-up
are temporary (503 with ``Retry-After``), a deadline is 504, and a node failure
is 500 with the node named, never a traceback. A node that failed because its
worker crashed or its queue was full is temporary too: 503, so callers retry.

The text of an exception raised by a user's method or function may hold
anything (paths, keys, data), so a client is told only its type unless the
operator passes ``expose_errors``; ``HttpError.log_text`` keeps the full text
for the server log. graphctl's own messages (validation, timeouts, overload)
are always given in full.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from orchestrator.errors import (
    DeadlineExceeded,
    GraphClosed,
    GraphctlError,
    NodeFailed,
    RequestError,
    SkippedOutput,
    abbreviate,
)
from runners.errors import MethodError, Overloaded, PoolClosed, RunnerError

DEFAULT_RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class HttpError:
    """An error as the HTTP layer answers it."""

    status: int
    message: str
    field: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    log_text: str | None = None  # the full text when ``message`` is redacted


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
    error: BaseException, *, bad_request_status: int = 422, expose: bool = False
) -> HttpError:
    """The HTTP answer to ``error``; ``bad_request_status`` is 422 or 400 (OIP);
    ``expose`` gives clients the full text of users' exceptions."""
    answer = _classify(error, bad_request_status)
    if answer.status != 500:
        return answer
    text = str(error) or type(error).__name__
    message = public_text(error, expose=expose) if answer.message == str(error) else answer.message
    return dataclasses.replace(answer, message=message, log_text=text)


def _classify(error: BaseException, bad_request_status: int) -> HttpError:
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


def add_error_handlers(app: FastAPI) -> None:
    """Every error of ``app`` as ``{"error": ...}``: unknown paths (404), methods
    (405), FastAPI's own validation, and exceptions of graphctl's code (500,
    logged with their traceback by uvicorn, as they are bugs)."""

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        headers = dict(error.headers or {})
        return error_response(HttpError(error.status_code, str(error.detail), headers=headers))

    async def validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        problems = error.errors()
        first = problems[0] if problems else {}
        field = ".".join(str(step) for step in first.get("loc", ())[1:]) or None
        message = str(first.get("msg", "invalid request"))
        return error_response(HttpError(422, message, field=abbreviate(field) if field else None))

    async def internal_error(request: Request, error: Exception) -> Response:
        return error_response(HttpError(500, f"internal error: {type(error).__name__}"))

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
