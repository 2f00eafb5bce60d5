"""``POST /{graph}`` with ``Accept: text/event-stream``: the answer as server-sent
events. Each chunk of a ``stream: true`` output is one ``chunk`` event as it
comes, ``{"output": name, "chunk": value}``; the last event is ``result`` with
the outputs that do not stream, or ``error`` with the error body and its
``status``. The response starts at once (status 200), so a failure, even of the
inputs, arrives as an ``error`` event."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Send

from orchestrator._inputs import to_jsonable
from orchestrator.server._errors import HttpError, error_fields
from orchestrator.server._json_body import dumps  # one JSON writer for both answers
from orchestrator.server._serving import Served

EVENT_STREAM = b"text/event-stream"
_HEADERS = [(b"content-type", EVENT_STREAM), (b"cache-control", b"no-cache")]


def wants_events(headers: list[tuple[bytes, bytes]]) -> bool:
    """The client asked for server-sent events (``Accept: text/event-stream``)."""
    return any(key == b"accept" and EVENT_STREAM in value for key, value in headers)


def event(kind: str, data: Any) -> bytes:
    """One server-sent event; ``data`` as one line of JSON."""
    return b"event: " + kind.encode() + b"\ndata: " + dumps(to_jsonable(data)) + b"\n\n"


async def send_events(
    served: Served,
    name: str,
    body: dict[str, Any],
    timeout_ms: float | None,
    send: Send,
    receive: Receive,
) -> bool:
    """Run the request, sending its chunks as they come and its result last; ``False``
    when the client went away (the request is cancelled)."""
    from orchestrator.server._graph_route import ClientWatch

    plan = served.slots[name].graph.plan
    streamed = {output for output, spec in plan.outputs.items() if spec.stream}
    events: asyncio.Queue[bytes | None] = asyncio.Queue()

    def on_chunk(output: str, chunk: Any) -> None:
        events.put_nowait(event("chunk", {"output": output, "chunk": chunk}))

    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    with ClientWatch(receive) as watch:
        async with asyncio.TaskGroup() as group:
            run = served.call(name, "json", body, timeout_ms=timeout_ms, on_chunk=on_chunk)
            running = group.create_task(run, name=f"events {name}")
            running.add_done_callback(lambda _: events.put_nowait(None))
            while (message := await events.get()) is not None:
                await send({"type": "http.response.body", "body": message, "more_body": True})
    if watch.disconnected:
        return False
    result = running.result()
    if isinstance(result, HttpError):
        fields = {**error_fields(result.message), "status": result.status}
        if result.field is not None:
            fields["field"] = result.field
        last = event("error", fields)
    else:
        last = event("result", {k: v for k, v in result.items() if k not in streamed})
    await send({"type": "http.response.body", "body": last})
    return True
