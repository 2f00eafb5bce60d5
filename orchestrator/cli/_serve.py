"""``graphctl serve FILE|DIR...``: every graph behind one HTTP server.

    graphctl serve graphs/ --port 8000 --api-key-env GRAPHCTL_API_KEY

Every graph is compiled before anything starts: one bad file stops start-up
with all its errors (exit 1). The server binds 127.0.0.1 unless told otherwise
and prints its URL once every pool is ready. SIGTERM or Ctrl-C stops accepting
connections, answers the requests already accepted, then stops the pools; a
second signal forces the exit. The ``OTEL_*`` variables turn on OpenTelemetry
traces (docs/observability.md). The log goes to stderr from ``--log-level`` up,
as text or JSON lines (``--log-format``), with one access line per request
unless ``--no-access-log``; each worker's output is prefixed with
``[runner/worker-N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import uvicorn

from orchestrator.cli._args import (
    add_log_level_argument,
    configure_logging,
    port_number,
    positive_float,
    positive_int,
)
from orchestrator.cli._config import add_override_arguments
from orchestrator.cli._tracing import otel_provider
from orchestrator.errors import GraphctlError, GraphFileError
from orchestrator.graph import Graph
from orchestrator.plan import Plan
from orchestrator.server import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INFLIGHT, create_app
from runners import heap

GRAPH_SUFFIXES = (".yaml", ".yml")
EXIT_FORCED = 130


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve graphs over HTTP (JSON endpoints, Open Inference Protocol v2)",
        description="Serve every graph: POST /{graph}, /v2 (KServe), /livez, /readyz, /metrics.",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="FILE|DIR",
        help="graph files, or folders whose *.yaml graphs are all served",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="require 'Authorization: Bearer $VAR' on all but health routes",
    )
    parser.add_argument(
        "--max-inflight",
        type=positive_int,
        default=DEFAULT_MAX_INFLIGHT,
        help=f"requests in flight per graph before 503 (default {DEFAULT_MAX_INFLIGHT})",
    )
    parser.add_argument(
        "--max-body-mb",
        type=positive_float,
        default=DEFAULT_MAX_BODY_BYTES / 2**20,
        help="largest request body in MiB before 413 (default %(default)g)",
    )
    parser.add_argument(
        "--expose-errors",
        action="store_true",
        help="send clients the full text of exceptions raised by methods and functions "
        "(by default: only their type; the text is in the server log)",
    )
    add_override_arguments(parser)
    add_log_level_argument(parser, "info")
    parser.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="no log line per request (by default: method, path, status, duration and "
        "request id at info)",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop of the server (default auto: uvloop when installed)",
    )
    parser.set_defaults(handler=handle)


def graph_files(paths: Sequence[Path]) -> list[Path]:
    """The graph files named, folders expanded to their ``*.yaml`` files (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in GRAPH_SUFFIXES)
            if not found:
                raise GraphctlError(f"{path}: no *.yaml graph files in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise GraphctlError(f"{path}: no such file or folder")
    return files


def compile_all(
    files: Sequence[Path], config: Path | None = None, sets: Sequence[str] = ()
) -> list[Plan] | None:
    """Every file's plan with the overrides applied, or ``None`` after printing every
    file's errors."""
    from orchestrator.compiling import apply_overrides, compile_file

    if (config is not None or sets) and len(files) > 1:
        raise GraphctlError(
            "--config and --set name runners of one graph: serve one graph file with them"
        )
    plans, failed = [], False
    for file in files:
        try:
            plans.append(apply_overrides(compile_file(file), config, sets))
        except GraphFileError as error:
            failed = True
            for diagnostic in error.diagnostics:
                print(diagnostic, file=sys.stderr)
    return None if failed else plans


class _Server(uvicorn.Server):
    """uvicorn, where a second SIGTERM/SIGINT exits at once: open requests are dropped
    and workers, whose sockets close with this process, exit at EOF."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            print("graphctl: second signal: exiting now", file=sys.stderr, flush=True)
            os._exit(EXIT_FORCED)
        self.should_exit = True


def handle(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise GraphctlError(
                f"--api-key-env: the environment variable {args.api_key_env} is not set or empty"
            )
    plans = compile_all(graph_files(args.paths), args.config, args.set)
    if plans is None:
        return 1
    url = f"http://{args.host}:{args.port}"
    names = ", ".join(plan.name for plan in plans)

    def announce() -> None:
        heap.tune_for_serving()  # the graphs and their pools are up: see runners.heap
        print(f"graphctl: serving {names} at {url} (ready; docs at {url}/docs)", flush=True)

    with otel_provider() as provider:
        app = create_app(
            [Graph(plan) for plan in plans],
            api_key=api_key,
            max_inflight=args.max_inflight,
            max_body_bytes=int(args.max_body_mb * 2**20),
            on_ready=announce,
            expose_errors=args.expose_errors,
            tracer_provider=provider,
            access_log=args.access_log,
        )
        config = uvicorn.Config(  # uvicorn's records go through graphctl's handler, as JSON too
            app,
            host=args.host,
            port=args.port,
            loop=args.loop,
            log_level="warning",
            log_config=None,
            access_log=False,  # graphctl writes its own, with the request id
            lifespan="on",
        )
        server = _Server(config)
        server.run()
    return 0 if server.started else 1
