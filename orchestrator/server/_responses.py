"""An ``HttpError`` as a Starlette response, and the app-wide handlers that give
every failure (unknown path or method, FastAPI's validation, a bug) the same
``{"error": ..., "request_id": ...}`` body (the id bound by ``_request_log``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from orchestrator.errors import abbreviate
from orchestrator.server._errors import HttpError, error_fields


def error_response(error: HttpError, *, detail: bool = False) -> JSONResponse:
    """``{"error": ..., "request_id": ...}``; with ``detail`` also FastAPI's ``detail``
    list naming the field."""
    body = error_fields(error.message)
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
