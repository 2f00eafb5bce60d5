"""The ``graphctl`` entry point: the argument parser and how errors are shown."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from orchestrator._about import graphctl_version
from orchestrator.errors import GraphctlError
from runners.errors import RunnerError

# Sub-command modules in ``orchestrator/cli/``, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "validate",
    "graph",
    "schema",
    "run",
    "serve",
    "worker",
    "bench",
    "config",
    "models",
    "deploy",
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="graphctl",
        description="Run declarative YAML inference graphs: validate, run, serve, bench.",
    )
    parser.add_argument("--version", action="version", version=f"graphctl {graphctl_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"orchestrator.cli._{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graphctl`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as raised:
        if args.debug:
            traceback.print_exc()
        error = _sole_error(raised)
        if isinstance(error, GraphctlError | RunnerError):
            print(f"graphctl: error: {error}", file=sys.stderr)
        else:  # a bug of ours: say so, keep the traceback behind --debug
            print(
                f"graphctl: internal error: {type(error).__name__}: {error}"
                " (run again with --debug for details)",
                file=sys.stderr,
            )
        return EXIT_ERROR


def _sole_error(error: Exception) -> Exception:
    """The one error inside (nested) task-group errors of one error, else ``error``."""
    while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error

