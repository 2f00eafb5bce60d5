"""``graphctl bench FILE``: closed-loop load through a whole graph, in-process or
over HTTP, and the figures a user chooses a serving setup by.

    graphctl bench graphs/diamond.yaml --concurrency 64 --duration 10
    graphctl bench graphs/diamond.yaml --serve -o json
    graphctl bench graphs/diamond.yaml --url http://127.0.0.1:8000

Figures go to stdout (a table, or one JSON object with ``-o json``); the live
progress line goes to stderr, and only on a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.cli._args import input_object, positive_int
from orchestrator.errors import RequestError
from orchestrator.graph import load
from orchestrator.loadgen import (
    BenchSummary,
    GraphTarget,
    HTTPTarget,
    NodeRoute,
    Progress,
    ServeProcess,
    require_loopback,
    run_load,
)
from orchestrator.plan import Plan
from runners import tune_for_serving

DEFAULT_CONCURRENCY = 16
DEFAULT_DURATION_S = 10.0
DEFAULT_WARMUP_S = 2.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure a graph's throughput and latency under closed-loop load",
        description=(
            "Send requests from N concurrent clients (each sends its next request as soon "
            "as the previous one returns) and report throughput, latency percentiles, "
            "errors, and per-node calls, latency, queue wait and batch size."
        ),
    )
    parser.add_argument("file", type=Path, help="the graph file")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running server on this machine, e.g. http://127.0.0.1:8000")
    where.add_argument(
        "--serve", action="store_true", help="start `graphctl serve FILE` for the run, then stop it"
    )
    parser.add_argument(
        "--input",
        metavar="JSON|@FILE",
        help="each request's inputs (default: the graph's NAME.input.json beside it)",
    )
    parser.add_argument("--concurrency", type=positive_int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--duration", type=_seconds, default=DEFAULT_DURATION_S, metavar="S")
    parser.add_argument("--warmup", type=_seconds, default=DEFAULT_WARMUP_S, metavar="S")
    parser.add_argument("--requests", type=positive_int, help="stop after this many requests")
    parser.add_argument("--timeout-ms", type=float, help="each request's deadline")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    parser.set_defaults(handler=handle)


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {text}")
    return value


def handle(args: argparse.Namespace) -> int:
    if args.duration <= 0:
        raise RequestError("must be more than 0 seconds", field="--duration")
    from orchestrator.compiling import compile_file  # compiling is the slow import

    plan = compile_file(args.file)
    inputs = read_inputs(args.input, args.file)
    live = sys.stderr.isatty()
    summary = asyncio.run(_measure(args, plan, inputs, _progress_line if live else None))
    if live:
        print(file=sys.stderr)
    if args.output == "json":
        print(json.dumps(summary.to_json()))
    else:
        print_summary(summary, rich_table=sys.stdout.isatty())
    return 0


async def _measure(
    args: argparse.Namespace, plan: Plan, inputs: dict[str, Any], on_progress: Any
) -> BenchSummary:
    load_args: dict[str, Any] = {
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "max_requests": args.requests,
        "on_progress": on_progress,
    }
    if args.serve:
        async with ServeProcess(args.file) as server:
            return await _over_http(server.url, plan, inputs, args, load_args)
    if args.url is not None:
        return await _over_http(require_loopback(args.url), plan, inputs, args, load_args)
    async with load(args.file) as graph:
        tune_for_serving()  # as graphctl serve does once ready (runners.heap)
        return await run_load(GraphTarget(graph, inputs, timeout_ms=args.timeout_ms), **load_args)


async def _over_http(
    url: str, plan: Plan, inputs: dict[str, Any], args: argparse.Namespace, load_args: Any
) -> BenchSummary:
    routes = {name: NodeRoute(node.runner, node.method) for name, node in plan.nodes.items()}
    timeout_s = args.timeout_ms / 1000.0 if args.timeout_ms else 30.0
    async with HTTPTarget(url, plan.name, inputs, routes, timeout_s=timeout_s) as target:
        return await run_load(target, **load_args)


def read_inputs(text: str | None, graph_file: Path) -> dict[str, Any]:
    """``--input`` as inline JSON or ``@file``; without it, ``NAME.input.json``
    beside the graph file, so every example graph can be benched as it is."""
    if text is None:
        sample = graph_file.with_name(f"{graph_file.stem}.input.json")
        if not sample.is_file():
            raise RequestError(f"give the request's inputs (no {sample} found)", field="--input")
        text = f"@{sample}"
    return input_object(text)


def _progress_line(progress: Progress) -> None:
    phase = "warming up" if progress.warming_up else "measuring"
    sys.stderr.write(
        f"\r{phase}: {progress.elapsed_s:5.1f}/{progress.total_s:.1f} s  "
        f"{progress.requests} requests  {progress.errors} errors   "
    )
    sys.stderr.flush()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def node_rows(summary: BenchSummary) -> list[list[str]]:
    """The per-node table: node, calls, p50, p99, queue wait, mean batch size."""
    return [
        [
            name,
            str(node.calls),
            _ms(node.p50_ms),
            _ms(node.p99_ms),
            _ms(node.queue_wait_ms),
            "-" if node.mean_batch_size is None else f"{node.mean_batch_size:.1f}",
        ]
        for name, node in summary.nodes.items()
    ]


NODE_HEADERS = ["node", "calls", "p50 ms", "p99 ms", "queue wait ms", "mean batch"]


def print_summary(summary: BenchSummary, *, rich_table: bool) -> None:
    """The figures for a person: headline, errors, then the per-node table."""
    print(
        f"{summary.target}: {summary.requests} requests in {summary.duration_s:.2f} s "
        f"at concurrency {summary.concurrency}"
    )
    print(f"throughput  {summary.throughput_rps:.1f} req/s")
    print(
        f"latency ms  p50 {_ms(summary.p50_ms)}  p90 {_ms(summary.p90_ms)}  "
        f"p99 {_ms(summary.p99_ms)}  max {_ms(summary.max_ms)}"
    )
    errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(summary.errors.items()))
    print(f"errors      {summary.error_count}" + (f" ({errors})" if errors else ""))
    if summary.refused:
        print(f"refused     {summary.refused} (503 with Retry-After; each client waited it out)")
    rows = node_rows(summary)
    if not rows:
        return
    if rich_table:
        _print_rich(rows)
    else:
        print()
        print(_plain_table([NODE_HEADERS, *rows]))


def _plain_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def _print_rich(rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="per node")
    for i, header in enumerate(NODE_HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
