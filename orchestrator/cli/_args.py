"""Argument types and values shared by several sub-commands, so each option
reads and fails the same way in ``run``, ``serve`` and ``bench``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from orchestrator.errors import RequestError

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    """``--log-level``: what reaches stderr, worker output included."""
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default,
        help=f"log on stderr from this level; worker output included (default {default})",
    )


def configure_logging(level: str) -> None:
    """Log to stderr from ``level`` up. A worker's print() and stderr are logged as
    warnings and its logging records at their own level, each line prefixed with
    ``[runner/worker-N]``; workers started later send only what passes ``level``."""
    logging.basicConfig(format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger().setLevel(level.upper())
