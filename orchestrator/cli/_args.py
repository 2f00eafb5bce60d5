"""Argument types and values shared by several sub-commands, so each option
reads and fails the same way in ``run``, ``serve`` and ``bench``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orchestrator.errors import RequestError


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
