"""ASGI middleware giving every HTTP request an id, its access log line, and (for a
graph route) its count and latency in the request metrics.

The id is the request's ``X-Request-ID`` when it is a short token of safe
characters (one a proxy or the client chose), else a new one: this process's
random prefix and a counter, unique without a system call per request. It is
bound in ``runners.log_context`` while the request runs, so every log line it
causes carries it (the worker lines of its batches too, through the pool), and
every error body (``_responses.error_body``); the response returns it in
``X-Request-ID``. An exception no other layer answered is logged here with its
traceback and the request id, and answered 500.

One access line per request, at info on ``graphctl.access``, unless turned off:

    INFO graphctl.access: POST /diamond 200 3.1 ms request_id=5f0c9a1e-2a

This is the outermost layer, so refusals (401, 413, 503) get the id as well, and
every answer of a graph route is counted whatever answered it: a body over the
limit (413), one that is not JSON, an Open Inference Protocol 400, a 500 from
graphctl's own code; a request whose client went away before its answer counts
as 499. One layer does all three: each layer costs every request a call and a
wrapped ``send``.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.server._errors import HttpError
from orchestrator.server._metrics import Metrics
from orchestrator.server._responses import error_response
from orchestrator.server._serving import CLIENT_CLOSED_REQUEST
from runners import log_context

HEADER = b"x-request-id"
MAX_ID_LENGTH = 128
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,%d}" % MAX_ID_LENGTH)

_OIP_PREFIX = "/v2/models/"

access_log = logging.getLogger("graphctl.access")
log = logging.getLogger("graphctl.serve")


class RequestIds:
    """New request ids: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._count = itertools.count(1)

    def new(self) -> str:
        return f"{self._prefix}-{next(self._count):x}"

    def of(self, headers: list[tuple[bytes, bytes]]) -> str:
        """The request's own ``X-Request-ID`` when it is safe to repeat, else a new id."""
        for name, value in headers:
            if name == HEADER:
                if _SAFE_ID.fullmatch(value):
                    return value.decode()
                break
        return self.new()


def graph_route(path: str, graphs: Collection[str]) -> tuple[str, str] | None:
    """``(graph, route)`` of a ``POST`` path that runs a graph, else ``None``."""
    name = path[1:]
    if name in graphs:
        return name, "json"
    if path.startswith(_OIP_PREFIX) and path.endswith("/infer"):
        name = path[len(_OIP_PREFIX) :].split("/", 1)[0]
        if name in graphs:
            return name, "oip"
    return None


class RequestLog:
    """Binds each request's id, returns it, logs the request's access line, and
    counts the answers of graph routes in ``metrics``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        access: bool = True,
        metrics: Metrics | None = None,
        graphs: Collection[str] = (),
    ) -> None:
        self.app = app
        self.access = access
        self.metrics = metrics
        self.graphs = frozenset(graphs)
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        route = graph_route(scope["path"], self.graphs) if scope["method"] == "POST" else None
        request_id = self.ids.of(scope["headers"])
        id_header = (HEADER, request_id.encode())
        status = CLIENT_CLOSED_REQUEST  # unless an answer starts

        async def identified_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A new message: the caller's may be reused (never change what was sent).
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        # Every line of the request names it, and its graph on a graph route.
        with log_context.bound(request_id=request_id, graph=route[0] if route else None):
            try:
                await self.app(scope, receive, identified_send)
            except Exception as error:
                log.exception("%s %s failed in graphctl's code", scope["method"], scope["path"])
                if status != CLIENT_CLOSED_REQUEST:
                    raise  # the answer had begun: nothing better to send
                failure = HttpError(500, f"internal error: {type(error).__name__}")
                await error_response(failure)(scope, receive, identified_send)
            finally:
                elapsed = time.perf_counter() - start
                if route is not None and self.metrics is not None:
                    self.metrics.observe_request(*route, status, elapsed)
                if self.access and access_log.isEnabledFor(logging.INFO):
                    _log_access(scope, status, elapsed, request_id)


def _log_access(scope: Scope, status: int, seconds: float, request_id: str) -> None:
    method, path, duration_ms = scope["method"], scope["path"], round(seconds * 1000, 3)
    access_log.info(
        "%s %s %d %.1f ms request_id=%s",
        method,
        path,
        status,
        duration_ms,
        request_id,
        extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms},
    )
