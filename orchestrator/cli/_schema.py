"""``graphctl schema``: print the graph file's JSON Schema (draft-07), e.g. for an
editor's ``yaml.schemas`` setting or a ``# yaml-language-server: $schema=`` modeline."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("schema", help="print the JSON Schema of graph files")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from orchestrator.compiling import graph_schema

    print(json.dumps(graph_schema(), indent=2))
    return 0
