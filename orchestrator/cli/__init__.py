"""The ``graphctl`` command: a thin layer over the library, one module per sub-command.

Each command module has ``register(subparsers)`` (adds its parser, sets
``handler``) and its handler returns the exit code. Errors the user can act on
are printed as one clear message; a traceback only with ``--debug``.
"""

from orchestrator.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
