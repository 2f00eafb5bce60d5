"""What a request's id, log fields and access line cost the server, per request.

    python -m bench.request_log

The request layer (``orchestrator/server/_request_log.py``) in front of an ASGI
app that answers at once, with the access log off, as text and as JSON lines
(written to a file, as stderr would be), against the bare app; and one
``log_context.bound`` (the server binds the request's graph and each node's
name so). CPU microseconds per request, best of three runs in one process.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench._common import best_cpu_s, write_result
from orchestrator.server._request_log import RequestLog
from runners import log_context, logs

REQUESTS = 20_000
SCOPE: Scope = {
    "type": "http",
    "method": "POST",
    "path": "/diamond",
    "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
}


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"{}"}


async def _send(message: Message) -> None:
    return None


def per_request_us(app: ASGIApp) -> float:
    async def requests() -> None:
        for _ in range(REQUESTS):
            await app(SCOPE, _receive, _send)

    return best_cpu_s(lambda: asyncio.run(requests())) / REQUESTS * 1e6


def bound_us() -> float:
    def bind() -> None:
        for _ in range(REQUESTS):
            with log_context.bound(node="a", runner="r"):
                pass

    return best_cpu_s(bind) / REQUESTS * 1e6


def main() -> None:
    bare = per_request_us(answer)
    rows: list[list[object]] = [["bare app", round(bare, 2), 0.0]]
    with tempfile.TemporaryFile("w") as sink:
        points: tuple[tuple[str, ASGIApp, logs.LogFormat], ...] = (
            ("request id, no access log", RequestLog(answer, access=False), "text"),
            ("request id + access line, text", RequestLog(answer), "text"),
            ("request id + access line, json", RequestLog(answer), "json"),
        )
        for name, app, log_format in points:
            logs.configure(logging.INFO, log_format, sink)
            cost = per_request_us(app)
            rows.append([name, round(cost, 2), round(cost - bare, 2)])
    bind = bound_us()
    rows.append(["log_context.bound (graph, each node)", round(bind, 2), round(bind, 2)])
    write_result(
        "request_log",
        title="Request ids, log fields and the access line: CPU per request",
        baseline="the same ASGI app without the request layer",
        headers=["what", "us/request", "added us"],
        rows=rows,
    )


if __name__ == "__main__":
    main()
