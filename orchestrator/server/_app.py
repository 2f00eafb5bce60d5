"""The HTTP app: one ``POST /{graph}`` per graph, health, metrics and the ``/v2`` routes.

    app = create_app([orchestrator.load("graphs/diamond.yaml")], api_key="s3cret")
    uvicorn.run(app, host="127.0.0.1", port=8000)

The app's lifespan starts every graph's pools in the background (``/livez``
answers at once, ``/readyz`` once every pool has a ready worker) and stops them
after uvicorn has drained the accepted requests. Nothing here mutates the
server: every route either reads state or runs a request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from orchestrator._inputs import to_jsonable
from orchestrator.graph import Graph
from orchestrator.server._errors import HttpError
from orchestrator.server._graph_route import GraphRoutes, parse_json_object
from orchestrator.server._json_body import dumps
from orchestrator.server._limits import ApiKey, BodySizeLimit
from orchestrator.server._metrics import CONTENT_TYPE
from orchestrator.server._oip import oip_router
from orchestrator.server._openapi import operation_extra
from orchestrator.server._request_log import RequestLog
from orchestrator.server._responses import add_error_handlers, error_response
from orchestrator.server._serving import DEFAULT_MAX_INFLIGHT, Served
from orchestrator.server._tracing import TraceLogFields, telemetry_config

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


def create_app(
    graphs: Sequence[Graph],
    *,
    api_key: str | None = None,
    max_inflight: int = DEFAULT_MAX_INFLIGHT,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    on_ready: Callable[[], None] | None = None,
    expose_errors: bool = False,
    tracer_provider: TracerProvider | None = None,
    access_log: bool = True,
) -> FastAPI:
    """A FastAPI app serving ``graphs`` (not yet started: the lifespan starts them).

    ``max_inflight`` bounds concurrent requests per graph (past it: 503 at once);
    ``on_ready`` is called once every graph's pools are ready; ``expose_errors``
    gives clients the full text of exceptions raised by users' methods (by
    default they get its type; the text is in the server log). ``tracer_provider``
    turns on OpenTelemetry traces (``runners.otel.tracer_provider`` reads the
    ``OTEL_*`` variables); its owner shuts it down. ``access_log`` logs a line per
    request on ``graphctl.access``. Every request gets an id (``X-Request-ID``), in
    its log lines, its error body and its response.
    """
    served = Served(graphs, max_inflight=max_inflight, expose_errors=expose_errors)
    if tracer_provider is not None:
        from orchestrator.running._otel import OtelTracer

        served.trace_with(OtelTracer(tracer_provider))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with served.running(on_ready):
            yield

    app = FastAPI(
        title="graphctl",
        description="Inference graphs: " + (", ".join(served.slots) or "none"),
        lifespan=lifespan,
        telemetry=telemetry_config(tracer_provider),
    )
    app.state.served = served
    add_error_handlers(app)
    _add_health(app, served)
    _add_index(app, served)
    app.include_router(oip_router(served))
    for path, name in served.paths.items():
        _add_graph_route(app, served, path, name)
    app.add_middleware(GraphRoutes, served=served)  # innermost: after the key and limit
    if api_key:
        app.add_middleware(ApiKey, key=api_key)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    # Outermost of ours: every answer has its id, and every graph route's is counted.
    app.add_middleware(RequestLog, access=access_log, metrics=served.metrics, graphs=served.slots)
    if tracer_provider is not None:
        app.add_middleware(TraceLogFields, graph_paths=served.paths)
    return app


def _add_health(app: FastAPI, served: Served) -> None:
    @app.get("/livez", tags=["health"], summary="The process is up")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Every graph has a ready (alive, not hung) worker in each of its runners",
        response_model=None,
    )
    async def readyz() -> JSONResponse:
        missing = served.not_ready()
        graphs = {name: {"ready": name not in missing} for name in served.slots}
        body: dict[str, Any] = {"status": "not ready" if missing else "ready", "graphs": graphs}
        if missing:
            body["not_ready"] = missing
        return JSONResponse(body, status_code=503 if missing else 200)

    @app.get(
        "/readyz/{graph}",
        tags=["health"],
        summary="One graph has a ready worker in each of its runners",
        response_model=None,
    )
    async def graph_readyz(graph: str) -> JSONResponse:
        slot = served.slots.get(graph)
        if slot is None:
            return JSONResponse({"error": f"no graph named {graph!r}"}, status_code=404)
        missing = slot.not_ready()
        if missing:
            return JSONResponse({"status": "not ready", "not_ready": missing}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(served.metrics.render(), media_type=CONTENT_TYPE)


def _add_index(app: FastAPI, served: Served) -> None:
    @app.get("/", summary="The graphs served, with links")
    async def index() -> dict[str, Any]:
        graphs = [
            {
                "name": name,
                "description": slot.graph.plan.description,
                "url": f"/{name}",
                "model": f"/v2/models/{name}",
                "inputs": list(slot.graph.plan.inputs),
                "outputs": list(slot.graph.plan.outputs),
            }
            for name, slot in served.slots.items()
        ]
        return {
            "graphs": graphs,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": {"live": "/livez", "ready": "/readyz"},
            "metrics": "/metrics",
        }


def _add_graph_route(app: FastAPI, served: Served, path: str, name: str) -> None:
    plan = served.slots[name].graph.plan

    async def run_graph(request: Request) -> Response:
        # Never reached while GraphRoutes answers POST /{name} in front of the router
        # (deadline header, disconnects, events); this route documents it in OpenAPI,
        # and answers plain JSON only if the app is used without that middleware.
        body = parse_json_object(await request.body(), plan)
        if isinstance(body, HttpError):
            return error_response(body, detail=True)
        result = await served.call(name, "json", body)
        if isinstance(result, HttpError):
            return error_response(result, detail=True)
        return Response(dumps(to_jsonable(result)), media_type="application/json")

    app.add_api_route(
        path,
        run_graph,
        methods=["POST"],
        tags=["graphs"],
        summary=f"Run the {name} graph",
        description=plan.description or None,
        operation_id=f"run_{name}",
        response_class=Response,
        openapi_extra=operation_extra(plan),
    )
