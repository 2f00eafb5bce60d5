"""``graphctl run FILE``: run one request, or every line of a JSONL file concurrently.

    graphctl run graphs/diamond.yaml --input @graphs/diamond.input.json
    graphctl run graphs/diamond.yaml --inputs data.jsonl --output out.jsonl --concurrency 16

Outputs are JSON on stdout (or ``--output``), one line per input line in input
order. With ``--input``, each chunk of a ``stream: true`` output is printed as it
comes, one line ``{"output": NAME, "chunk": VALUE}`` (flushed), before the answer's
line (which still holds each streamed output as the list of its chunks). A line that
fails becomes ``{"error": ..., "line": N}`` and is reported on stderr; the other
lines still run, and the exit code is 1. Progress, the summary and the log
(``--log-level``, worker output included) go to stderr, the progress bar only on a
terminal. stdout holds the outputs alone: whatever else writes to it in this process
(a Runnable under ``--local``, a function node) goes to stderr. ``--trace FILE``
writes a Chrome trace; the ``OTEL_*`` variables export each request as an
OpenTelemetry trace (docs/observability.md); both can be on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from orchestrator._inputs import to_jsonable, validate_inputs
from orchestrator.cli._args import (
    add_log_level_argument,
    configure_logging,
    input_object,
    positive_int,
)
from orchestrator.cli._config import add_override_arguments
from orchestrator.cli._run_batch import BatchSummary, RequestSpan, run_lines
from orchestrator.cli._tracing import otel_provider
from orchestrator.errors import RequestError
from orchestrator.graph import Graph, load
from orchestrator.running import Trace, Tracer
from orchestrator.running._trace import Tee

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

DEFAULT_CONCURRENCY = 16


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a graph on one input or a JSONL file of inputs",
        description="Start the graph's runners, run the input(s), print the outputs as JSON.",
    )
    parser.add_argument("file", type=Path, help="the graph file")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="JSON|@FILE", help="one request's inputs")
    source.add_argument("--inputs", type=Path, metavar="FILE.jsonl", help="one request a line")
    parser.add_argument("--output", type=Path, metavar="FILE.jsonl", help="default: stdout")
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight with --inputs (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--timeout-ms", type=float, help="each request's deadline")
    parser.add_argument("--trace", type=Path, metavar="FILE.json", help="write a Chrome trace")
    parser.add_argument("--local", action="store_true", help="run runners in this process")
    add_log_level_argument(parser, "warning")
    add_override_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)
    results = sys.stdout
    with contextlib.redirect_stdout(sys.stderr), otel_provider() as provider:
        return asyncio.run(_main(args, results, provider))


async def _main(
    args: argparse.Namespace, results: IO[str], provider: TracerProvider | None = None
) -> int:
    """Run the graph; outputs go to ``results`` (the real stdout) or ``--output``."""
    chrome = Trace() if args.trace else None
    trace, request_span = _tracers(chrome, provider)
    inputs = input_object(args.input) if args.input is not None else None
    graph = load(args.file, local=args.local, config=args.config, sets=args.set)
    if inputs is not None:
        validate_inputs(graph.plan, inputs)  # a bad input fails before any worker starts
    try:
        async with graph:
            if inputs is not None:
                with request_span(graph.name):
                    output = await graph.run(
                        inputs,
                        timeout_ms=args.timeout_ms,
                        trace=trace,
                        on_chunk=functools.partial(_print_chunk, results),
                    )
                print(json.dumps(to_jsonable(output)), file=results, flush=True)
                return 0
            summary = await _run_file(graph, args, trace, request_span, results)
    finally:
        if chrome is not None:
            chrome.write(args.trace)
    _print_summary(summary)
    return 1 if summary.errors else 0


def _print_chunk(results: IO[str], output: str, chunk: Any) -> None:
    """One chunk of a streamed output, on its own line as soon as it comes."""
    print(json.dumps(to_jsonable({"output": output, "chunk": chunk})), file=results, flush=True)


def _tracers(
    chrome: Trace | None, provider: TracerProvider | None
) -> tuple[Tracer | None, RequestSpan]:
    """The tracer of every request (Chrome trace, OpenTelemetry, both or none) and the
    span each request runs in (OpenTelemetry's root span, else nothing)."""
    if provider is None:
        return chrome, _no_span
    from orchestrator.running._otel import OtelTracer

    otel = OtelTracer(provider)
    return (otel if chrome is None else Tee(chrome, otel)), otel.root


def _no_span(graph: str) -> AbstractContextManager[None]:
    return nullcontext()


async def _run_file(
    graph: Graph,
    args: argparse.Namespace,
    trace: Tracer | None,
    request_span: RequestSpan,
    results: IO[str],
) -> BatchSummary:
    try:
        source = args.inputs.open(encoding="utf-8")
    except OSError as error:
        raise RequestError(
            f"cannot read {args.inputs}: {error.strerror}", field="--inputs"
        ) from None
    progress = sys.stderr.isatty()
    with source, _open_output(args.output, results) as sink:
        return await run_lines(
            graph,
            _numbered(source),
            sink,
            concurrency=args.concurrency,
            timeout_ms=args.timeout_ms,
            trace=trace,
            request_span=request_span,
            progress=progress,
            total=_count_lines(args.inputs) if progress else None,
        )


def _count_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip())


def _numbered(lines: IO[str]) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


class _Unclosed:
    """A stream (stdout) as a context manager that is flushed, not closed."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __enter__(self) -> IO[str]:
        return self._stream

    def __exit__(self, *exc: object) -> None:
        self._stream.flush()


def _open_output(path: Path | None, results: IO[str]) -> Any:
    return path.open("w", encoding="utf-8") if path is not None else _Unclosed(results)


def _print_summary(summary: BatchSummary) -> None:
    elapsed = max(summary.elapsed_s, 1e-9)
    print(
        f"{summary.count} requests, {summary.errors} errors in {summary.elapsed_s:.2f} s: "
        f"{summary.count / elapsed:.1f} req/s, "
        f"p50 {summary.percentile(50):.1f} ms, p99 {summary.percentile(99):.1f} ms",
        file=sys.stderr,
    )
