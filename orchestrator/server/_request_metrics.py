"""ASGI middleware counting every answered request of a graph route, whatever answered it.

A request refused before it reaches its graph (a body over the limit: 413, a
body that is not JSON, an Open Inference Protocol 400) or one that failed in
graphctl's own code (500) is still a request of that graph, so the count and
latency are taken here, around everything else, from the status sent. A
request whose client went away before its answer counts as 499.

    app.add_middleware(RequestMetrics, metrics=served.metrics, graphs=served.slots)
"""

from __future__ import annotations

import time
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.server._metrics import Metrics
from orchestrator.server._serving import CLIENT_CLOSED_REQUEST

_OIP_PREFIX = "/v2/models/"
SERVER_ERROR = 500


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


class RequestMetrics:
    """Observes the status and latency of every ``POST`` to a graph route."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, graphs: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.graphs = frozenset(graphs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":
            route = graph_route(scope["path"], self.graphs)
        if route is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = CLIENT_CLOSED_REQUEST  # unless an answer starts (or the app raises)

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        except BaseException:
            if status == CLIENT_CLOSED_REQUEST:
                status = SERVER_ERROR  # what the client gets when the app raises first
            raise
        finally:
            self.metrics.observe_request(*route, status, time.perf_counter() - start)
