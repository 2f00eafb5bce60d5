"""How what a worker prints, logs and raises reaches the pool's log: both ends.

A worker's stdout and stderr are one pipe that the pool reads line by line
(``read``), logging each line to ``runners.worker`` prefixed with the worker's
label. In
the worker, Python ``logging`` writes each record as one marked line carrying its
level, its text (traceback included) and its fields (``runners.logs.record_fields``:
what ``runners.log_context`` bound in the worker, such as the runner, the worker
and the request ids of the batch) as JSON, so the pool logs it again at the same
level with those fields, and a JSON log shows which requests a worker's line is
about. Every other line (a ``print()``, a library writing to stderr, a warning)
is logged at ``RAW_LINE_LEVEL``: WARNING, so a user's print still shows when the
log is at its quietest useful level.

    worker:  \\x1egraphctl-log 40 {"text": "runners.worker: predict raised\\nTraceback ...",
                                   "fields": {"runner": "mlp", "worker": 0, "request_id": [...]}}
    pool:    ERROR runners.worker: [mlp/worker-0] runners.worker: predict raised ...
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any

from runners.logs import extra_fields, record_fields

RECORD_MARK = "\x1egraphctl-log "
RAW_LINE_LEVEL = logging.WARNING
RECORD_FORMAT = "%(name)s: %(message)s"
LINE_LIMIT = 1 << 20  # a longer line of worker output is dropped, with a note

logger = logging.getLogger("runners.worker")


class RecordLineFormatter(logging.Formatter):
    """One line per record: the mark, the level number, then its text and fields as JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"text": super().format(record), "fields": record_fields(record)}
        return f"{RECORD_MARK}{record.levelno} {json.dumps(line, default=str)}"


def install(level: int) -> None:
    """In the worker: every ``logging`` record at ``level`` or above goes to stderr
    as one marked line (the pool filters again by its own level)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RecordLineFormatter(RECORD_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def parse_line(line: str) -> tuple[int, str, dict[str, Any]]:
    """The level, text and fields of one line of worker output (its line end removed)."""
    if line.startswith(RECORD_MARK):
        level, _, encoded = line[len(RECORD_MARK) :].partition(" ")
        try:
            record = json.loads(encoded)
        except ValueError:
            record = None
        if isinstance(record, str):  # the text alone, as older workers write it
            record = {"text": record}
        if level.isdigit() and isinstance(record, dict) and isinstance(record.get("text"), str):
            fields = record.get("fields")
            return int(level), record["text"], fields if isinstance(fields, dict) else {}
    return RAW_LINE_LEVEL, line, {}


async def read(fd: int, label: str) -> tuple[asyncio.Task[None], asyncio.BaseTransport]:
    """In the pool: the pump of a worker's output pipe, and the pipe's transport
    (ours to close, see ``finish``)."""
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return asyncio.create_task(_pump(reader, label)), pipe


async def _pump(stream: asyncio.StreamReader, label: str) -> None:
    """Log a worker's output, one line at a time, until end of file."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # past LINE_LIMIT: the reader dropped it; keep reading
            logger.warning("[%s] (a line of over %d bytes was dropped)", label, LINE_LIMIT)
            continue
        if not line:
            return
        level, text, fields = parse_line(line.decode(errors="replace").rstrip())
        logger.log(level, "[%s] %s", label, text, extra=extra_fields(fields))


async def finish(task: asyncio.Task[None], pipe: asyncio.BaseTransport, timeout_s: float) -> None:
    """Let the pump copy what the worker wrote, within ``timeout_s``: a process the
    worker started may hold its output open long after the worker is gone, so the
    pipe is closed here rather than at an end of file that may never come."""
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(task)
    except TimeoutError:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    pipe.close()
