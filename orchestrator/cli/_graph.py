"""``graphctl graph FILE --format mermaid|dot``: draw a graph's DAG on stdout."""

from __future__ import annotations

import argparse
from typing import Any

from orchestrator.cli._args import graph_file
from orchestrator.cli._validate import print_diagnostics
from orchestrator.errors import GraphFileError


def register(subparsers: Any) -> None:
    from orchestrator.compiling import FORMATS

    parser = subparsers.add_parser("graph", help="draw a graph as Mermaid or Graphviz DOT")
    parser.add_argument("file", type=graph_file, metavar="FILE", help="the graph file")
    parser.add_argument(
        "-f", "--format", choices=FORMATS, default="mermaid", help="diagram language"
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from orchestrator.compiling import compile_file, render

    try:
        plan = compile_file(args.file)
    except GraphFileError as error:
        print_diagnostics(error.diagnostics)
        return 1
    print_diagnostics(plan.warnings)
    print(render(plan, args.format), end="")
    return 0
