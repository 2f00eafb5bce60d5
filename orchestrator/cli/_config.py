"""``graphctl config FILE [--config prod.yaml] [--set runners.NAME.KEY=VALUE]``:
print every runner's effective settings, after the overrides.

``add_override_arguments`` gives ``run``, ``serve`` and ``validate`` the same
``--config``/``--set`` flags, and ``compile_with_overrides`` applies them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orchestrator.plan import Plan


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and repeatable ``--set runners.NAME.KEY=VALUE``."""
    parser.add_argument(
        "--config", type=Path, metavar="FILE.yaml", help="runner settings to override, by name"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="runners.NAME.KEY=VALUE",
        help="override one runner setting (repeatable; after --config)",
    )


def compile_with_overrides(args: argparse.Namespace) -> Plan:
    """Compile ``args.file`` and apply ``args.config`` / ``args.set``."""
    from orchestrator.compiling import apply_overrides, compile_file

    plan = compile_file(args.file)
    return apply_overrides(plan, args.config, args.set)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "config", help="print the effective runner settings of a graph, after overrides"
    )
    parser.add_argument("file", type=Path, help="the graph file")
    add_override_arguments(parser)
    parser.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from orchestrator.compiling import effective_runners

    plan = compile_with_overrides(args)
    doc = {"graph": plan.name, "runners": effective_runners(plan)}
    if args.output == "json":
        print(json.dumps(doc, indent=2))
    else:
        import yaml

        print(yaml.safe_dump(doc, sort_keys=False).rstrip())
    return 0
