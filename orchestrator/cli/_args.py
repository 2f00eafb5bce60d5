"""Argument types and values shared by several sub-commands, so each option
reads and fails the same way in ``run``, ``serve`` and ``bench``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orchestrator.errors import RequestError
from runners import logs

LOG_LEVELS = ("debug", "info", "warning", "error")


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    """An argparse ``type`` for ``--port``: 0 (any free port) to 65535."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type`` for sizes and limits: a finite number above 0."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def graph_file(text: str) -> Path:
    """An argparse ``type`` for a graph file: a folder is a usage mistake."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path} is a folder: name its graph files ({path}/*.yaml)"
        )
    return path


def input_object(text: str) -> dict[str, Any]:
    """``--input``'s value: inline JSON, or ``@path`` to a JSON file, holding one
    object (a request's inputs); a ``RequestError`` names the option or the file."""
    source = "--input"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise RequestError(f"cannot read {path}: {error.strerror}", field=source) from None
        source = str(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(f"not valid JSON: {error}", field=source) from None
    if not isinstance(value, dict):
        raise RequestError("inputs must be a JSON object", field=source)
    return value


def add_log_level_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """``--log-level`` and ``--log-format``: what reaches stderr, and how it looks."""
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default,
        help=f"log on stderr from this level; worker output included (default {default})",
    )
    parser.add_argument(
        "--log-format",
        choices=logs.LOG_FORMATS,
        default="text",
        help="text lines, or one JSON object per line with the request id, graph, node, "
        "runner and worker it is about (default text)",
    )


def configure_logging(level: str, log_format: logs.LogFormat = "text") -> None:
    """Log to stderr from ``level`` up, in ``log_format`` (``runners.logs``). A
    worker's print() and stderr are logged as warnings and its logging records at
    their own level with their fields, each line prefixed with ``[runner/worker-N]``;
    workers started later send only what passes ``level``."""
    logs.configure(level, log_format)
