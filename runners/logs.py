"""The one logging setup of every graphctl process: the server, ``graphctl run``,
and a worker that logs on its own stderr.

``configure(level, "text")`` writes ``time LEVEL logger: message`` lines;
``configure(level, "json")`` writes one JSON object per line:

    {"timestamp": "2025-06-01T12:00:00.123Z", "level": "INFO", "logger": "graphctl.access",
     "message": "POST /diamond 200 3.1 ms", "request_id": "5f0c9a1e-2a", "graph": "diamond"}

A line carries the fields bound in ``runners.log_context`` when it is written
(``request_id``, ``trace_id``, ``graph``, ``node``, ``runner``, ``worker``), any
``extra=`` fields of the call (the access log's ``method``, ``path``, ``status``,
``duration_ms``; a worker's own fields when the pool logs its line again), and
``exception`` with the traceback when there is one. Fields never set are absent.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal, TextIO

from runners import log_context

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has: anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    {
        *vars(logging.LogRecord("", 0, "", 0, "", None, None)),
        "message",
        "asctime",
        "taskName",
    }
)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a line about ``record`` carries: the context's, then the record's own."""
    fields = dict(log_context.current())
    for key, value in vars(record).items():
        if key not in _RECORD_ATTRIBUTES:
            fields[key] = value
    return fields


def extra_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` fit for ``logger.log(..., extra=)``: names a LogRecord has of its
    own are left out (``extra`` may not overwrite them)."""
    return {key: value for key, value in fields.items() if key not in _RECORD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(record_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format``."""
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT)


def configure(
    level: int | str, log_format: LogFormat = "text", stream: TextIO | None = None
) -> None:
    """Log to ``stream`` (stderr) from ``level`` up, in ``log_format``: the root
    logger gets this one handler, so every library's records look alike."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
