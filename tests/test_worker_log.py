"""A worker's output reaching the pool's log: the record-line format both ends
share, and the pump over a real pipe (with its line limit and its time limit)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys

import pytest

from runners import log_context, worker_log
from runners.worker_log import (
    RAW_LINE_LEVEL,
    RECORD_FORMAT,
    RECORD_MARK,
    RecordLineFormatter,
    finish,
    parse_line,
    read,
)


def _record(level: int, message: str, name: str = "user.model") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.ERROR, 35])
def test_a_formatted_record_parses_back_to_its_level_and_text(level: int) -> None:
    line = RecordLineFormatter(RECORD_FORMAT).format(_record(level, "two\nlines"))
    assert line.startswith(RECORD_MARK) and "\n" not in line
    assert parse_line(line) == (level, "user.model: two\nlines", {})


@pytest.mark.parametrize(
    "line",
    [
        "plain print output",
        "",
        f'{RECORD_MARK}forty "text"',  # level not a number
        f"{RECORD_MARK}40 not-json",
        f"{RECORD_MARK}40 {json.dumps(['a list'])}",  # text not a string
        f"{RECORD_MARK}40",
        f' {RECORD_MARK}40 "leading space"',
    ],
)
def test_anything_else_is_a_raw_line_logged_as_a_warning(line: str) -> None:
    assert parse_line(line) == (RAW_LINE_LEVEL, line, {})
    assert RAW_LINE_LEVEL == logging.WARNING


def test_install_routes_every_record_at_or_above_the_level_to_stderr() -> None:
    code = (
        "import logging; from runners import worker_log; worker_log.install(logging.INFO);"
        "logging.getLogger('m').debug('hidden'); logging.getLogger('m').info('shown');"
        "print('plain', flush=True)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stderr.rstrip("\n").split("\n")  # not splitlines: the mark is \x1e
    assert [parse_line(line) for line in lines] == [(logging.INFO, "m: shown", {})]
    assert done.stdout == "plain\n"


def _pump(chunks: list[bytes], timeout_s: float = 10.0) -> None:
    async def main() -> None:
        read_fd, write_fd = os.pipe()
        task, pipe = await read(read_fd, "r/worker-0")
        with os.fdopen(write_fd, "wb") as writer:
            for chunk in chunks:
                writer.write(chunk)
        await finish(task, pipe, timeout_s)
        assert task.done()

    asyncio.run(main())


def test_the_pump_logs_each_line_at_its_level_with_the_label(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = RecordLineFormatter(RECORD_FORMAT).format(_record(logging.ERROR, "boom"))
    with caplog.at_level(logging.DEBUG, logger="runners.worker"):
        _pump([b"hello\n", record.encode() + b"\n", b"no newline at the end"])
    seen = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "runners.worker"]
    assert seen == [
        (logging.WARNING, "[r/worker-0] hello"),
        (logging.ERROR, "[r/worker-0] user.model: boom"),
        (logging.WARNING, "[r/worker-0] no newline at the end"),
    ]


def test_a_line_over_the_limit_is_dropped_with_a_note_and_reading_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_log, "LINE_LIMIT", 64)
    with caplog.at_level(logging.DEBUG, logger="runners.worker"):
        _pump([b"x" * 500 + b"\n", b"after\n"])
    messages = [r.getMessage() for r in caplog.records if r.name == "runners.worker"]
    assert "[r/worker-0] (a line of over 64 bytes was dropped)" in messages
    assert messages[-1] == "[r/worker-0] after"


def test_finish_closes_a_pipe_still_held_open_elsewhere_within_its_time_limit() -> None:
    async def main() -> None:
        read_fd, write_fd = os.pipe()
        task, pipe = await read(read_fd, "r/worker-1")
        os.write(write_fd, b"partial line\n")
        try:
            async with asyncio.timeout(10):
                await finish(task, pipe, timeout_s=0.05)  # no end of file will come
        finally:
            os.close(write_fd)
        assert task.done() and pipe.is_closing()

    asyncio.run(main())


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
