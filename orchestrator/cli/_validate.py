"""``graphctl validate FILE...``: check graph files without running anything.

Every problem of every file is printed on stderr as ``FILE:LINE:COL: error: ...``
(warnings likewise, without failing); each valid file prints ``FILE: ok`` on
stdout. Exit 0 when all files are valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.cli._args import graph_file
from orchestrator.cli._config import add_override_arguments
from orchestrator.errors import Diagnostic, GraphFileError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate", help="check graph files and print every error at once (nothing runs)"
    )
    parser.add_argument("files", nargs="+", type=graph_file, metavar="FILE", help="graph files")
    add_override_arguments(parser)
    parser.set_defaults(handler=_handle)


def print_diagnostics(diagnostics: tuple[Diagnostic, ...]) -> None:
    """Each diagnostic on its own stderr line, in file order."""
    for diagnostic in diagnostics:
        print(diagnostic, file=sys.stderr)


def _summary(file: Path, diagnostics: tuple[Diagnostic, ...]) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = [f"{errors} error{'s' * (errors != 1)}"]
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return f"{file}: {', '.join(parts)}"


def validate_one(file: Path, args: argparse.Namespace) -> bool:
    """Compile one file (with overrides), print what was found; ``True`` if valid."""
    from orchestrator.compiling import apply_overrides, compile_file

    try:
        plan = apply_overrides(compile_file(file), args.config, args.set)
    except GraphFileError as error:
        print_diagnostics(error.diagnostics)
        print(_summary(file, error.diagnostics), file=sys.stderr)
        return False
    print_diagnostics(plan.warnings)
    print(f"{file}: ok")
    return True


def _handle(args: argparse.Namespace) -> int:
    results = [validate_one(file, args) for file in args.files]
    return 0 if all(results) else 1
