"""``POST /{graph}`` as plain ASGI, in front of FastAPI's router.

The graph routes are the server's hot path. FastAPI's request cycle (routing,
exception and exit-stack middleware, a ``Request`` object, dependency solving)
cost about as much CPU per request as the whole graph run, so this middleware
answers ``POST /{graph}`` itself: refuse it at once past the in-flight bound
(before reading its body), read the body, parse it once (``_json_body``), run the
graph, write the JSON bytes. Everything else (other methods and paths, the
OpenAPI documents that still describe these routes) falls through to FastAPI.

A request may shorten its deadline with the ``X-Request-Timeout-Ms`` header, and
a client that disconnects cancels its request if it is still running after
20 ms (``ClientWatch``): its calls still
queued leave their queues instead of costing a worker's time. With ``Accept:
text/event-stream`` the answer is server-sent events (``_events``): chunks of
streamed outputs as they come, then the result.

    app.add_middleware(GraphRoutes, served=served)
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator._inputs import reject_booleans, to_jsonable
from orchestrator.errors import RequestError
from orchestrator.plan import Plan
from orchestrator.server._deadlines import header_timeout_ms
from orchestrator.server._errors import HttpError
from orchestrator.server._events import send_events, wants_events
from orchestrator.server._json_body import dumps, loads
from orchestrator.server._responses import error_response
from orchestrator.server._serving import Served

_JSON_HEADERS = [(b"content-type", b"application/json")]
# A request still running this long is watched for its client's disconnect.
WATCH_AFTER_S = 0.02
log = logging.getLogger("graphctl.serve")


class GraphRoutes:
    """Serves ``POST /{name}`` for every graph of ``served``; the rest goes to ``app``."""

    def __init__(self, app: ASGIApp, *, served: Served) -> None:
        self.app = app
        self.served = served
        self._paths = served.paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self._paths.get(scope["path"]) if scope["type"] == "http" else None
        if name is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        refusal = self.served.refusal(name)
        if refusal is not None:  # before the body is read: refusing must stay cheap
            await send(refusal[0])
            await send(refusal[1])
            return
        raw = await _read_body(receive)
        if raw is None:
            return  # the client went away before sending its body
        try:
            timeout_ms = header_timeout_ms(scope["headers"])
        except RequestError as error:
            await error_response(HttpError(400, str(error), field=error.field))(
                scope, receive, send
            )
            return
        body = parse_json_object(raw, self.served.slots[name].graph.plan)
        if isinstance(body, HttpError):
            await error_response(body, detail=True)(scope, receive, send)
            return
        if wants_events(scope["headers"]):
            await send_events(self.served, name, body, timeout_ms, send, receive)
            return
        with ClientWatch(receive) as watch:
            result = await self.served.call(name, "json", body, timeout_ms=timeout_ms)
        if watch.disconnected:
            return  # nobody to answer; RequestLog counts it as 499
        if isinstance(result, HttpError):
            await error_response(result, detail=True)(scope, receive, send)
            return
        payload = dumps(to_jsonable(result))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class ClientWatch:
    """Cancels the task running a request when its client disconnects.

    Used once the body is read, around the graph run. A request still running
    after ``WATCH_AFTER_S`` gets an owned task that awaits ``receive()``; on
    ``http.disconnect`` it cancels the request's task (the executor then cancels
    every node, and the pools drop their queued calls) and the block ends with
    ``disconnected`` set instead of the ``CancelledError``. A quicker request costs
    one timer, not a task: abandoning it would save little work. Leaving the block
    cancels the timer and the watcher, before any answer is sent: once an answer is
    complete, the server reports a disconnect too.
    """

    __slots__ = ("_owner", "_receive", "_timer", "_watcher", "disconnected")

    def __init__(self, receive: Receive) -> None:
        owner = asyncio.current_task()
        if owner is None:
            raise RuntimeError("ClientWatch must be used inside a task")
        self._owner = owner
        self._receive = receive
        self._watcher: asyncio.Task[None] | None = None
        self.disconnected = False

    def __enter__(self) -> ClientWatch:
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self._start)
        return self

    def _start(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        self._watcher.add_done_callback(_reap_watcher)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._timer.cancel()
        if not self.disconnected:
            if self._watcher is not None:
                self._watcher.cancel()
            return False
        # The watcher cancelled the owner: take that cancellation back, and swallow
        # the CancelledError it raised unless someone else cancelled the owner too.
        self._owner.uncancel()
        return exc_type is asyncio.CancelledError and self._owner.cancelling() == 0

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.disconnected = True
        self._owner.cancel()


def _reap_watcher(watcher: asyncio.Task[None]) -> None:
    """Retrieve a watcher's end once it is over (cancelled when its block ends): a
    failure is logged for the operator then, not left to the garbage collector."""
    if not watcher.cancelled() and (error := watcher.exception()) is not None:
        log.error("watching the client for a disconnect failed", exc_info=error)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or ``None`` when the client disconnected."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json_object(raw: bytes, plan: Plan) -> dict[str, Any] | HttpError:
    """The request body as a JSON object, or a 422 saying what is wrong with it."""
    try:
        body = loads(raw)
    except RequestError as error:
        return HttpError(422, f"the body: {error.message}")
    if not isinstance(body, dict):
        return HttpError(422, f"the body must be a JSON object, got {type(body).__name__}")
    if b"true" in raw or b"false" in raw:
        try:
            reject_booleans(plan, body)
        except RequestError as error:
            return HttpError(422, error.message, field=error.field)
    return body
