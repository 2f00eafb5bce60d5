"""runners.logs: JSON lines carry the bound fields, a call's extra fields and the
exception; text lines stay as they were."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from runners import log_context, logs
from tests.conftest import json_lines


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The root logger writing JSON lines to a buffer, restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.configure("info", "json", buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_a_json_line_carries_the_context_and_extra_fields(stream: io.StringIO) -> None:
    log = logging.getLogger("graphctl.test")
    with log_context.bound(request_id="r-1", graph="g"), log_context.bound(node="a"):
        log.info("ran %s", "a", extra={"duration_ms": 1.5})
    log.debug("below the level")
    (line,) = json_lines(stream)
    assert line["message"] == "ran a" and line["level"] == "INFO"
    assert line["logger"] == "graphctl.test"
    assert line["request_id"] == "r-1" and line["graph"] == "g" and line["node"] == "a"
    assert line["duration_ms"] == 1.5
    assert str(line["timestamp"]).endswith("Z") and "T" in str(line["timestamp"])
    assert "exception" not in line and "trace_id" not in line


def test_a_json_line_carries_the_exception_text(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad value\non two lines")
    except ValueError:
        logging.getLogger("graphctl.test").exception("failed")
    (line,) = json_lines(stream)
    assert line["message"] == "failed"
    assert str(line["exception"]).startswith("Traceback (most recent call last)")
    assert "ValueError: bad value\non two lines" in str(line["exception"])


def test_extra_fields_never_overwrite_a_records_own_attributes() -> None:
    assert logs.extra_fields({"runner": "m", "name": "x", "message": "y", "worker": 0}) == {
        "runner": "m",
        "worker": 0,
    }


def test_text_lines_keep_their_format() -> None:
    buffer = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("warning", "text", buffer)
        with log_context.bound(request_id="r-2"):
            logging.getLogger("graphctl.test").warning("careful")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert buffer.getvalue().rstrip().endswith(" WARNING graphctl.test: careful")
