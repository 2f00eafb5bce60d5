"""runners.worker_log: a worker's record crosses the pipe as one marked line with
its level, text and fields, and the pool reads them back."""

from __future__ import annotations

import logging

from runners import log_context, worker_log


def _line(record_level: int, message: str, **extra: object) -> str:
    formatter = worker_log.RecordLineFormatter(worker_log.RECORD_FORMAT)
    record = logging.LogRecord("talker", record_level, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return formatter.format(record)


def test_a_record_keeps_its_level_text_and_fields() -> None:
    with log_context.bound(runner="mlp", worker=3, request_id=["a", "b"]):
        line = _line(logging.WARNING, "two\nlines", trace_id="t1")
    assert line.startswith(worker_log.RECORD_MARK) and "\n" not in line
    level, text, fields = worker_log.parse_line(line)
    assert (level, text) == (logging.WARNING, "talker: two\nlines")
    assert fields == {"runner": "mlp", "worker": 3, "request_id": ["a", "b"], "trace_id": "t1"}


def test_text_only_records_and_other_lines_still_parse() -> None:
    older = f'{worker_log.RECORD_MARK}40 "talker: failed"'
    assert worker_log.parse_line(older) == (logging.ERROR, "talker: failed", {})
    assert worker_log.parse_line("printed hi") == (worker_log.RAW_LINE_LEVEL, "printed hi", {})
    broken = f"{worker_log.RECORD_MARK}40 {{not json"
    assert worker_log.parse_line(broken) == (worker_log.RAW_LINE_LEVEL, broken, {})
