"""The argument types every sub-command shares: what each accepts, what it
refuses and the words of the refusal, and ``--input``'s JSON sources."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli._args import (
    LOG_LEVELS,
    add_log_level_argument,
    configure_logging,
    graph_file,
    input_object,
    port_number,
    positive_float,
    positive_int,
)
from orchestrator.errors import RequestError


@pytest.mark.parametrize(
    ("convert", "text", "value"),
    [
        (positive_int, "1", 1),
        (positive_int, "64", 64),
        (port_number, "0", 0),
        (port_number, "8080", 8080),
        (port_number, "65535", 65535),
        (positive_float, "0.001", 0.001),
        (positive_float, "1e3", 1000.0),
        (positive_float, "16", 16.0),
    ],
)
def test_accepted_values(convert: Callable[[str], Any], text: str, value: Any) -> None:
    assert convert(text) == value


@pytest.mark.parametrize(
    ("convert", "text", "message"),
    [
        (positive_int, "0", "must be at least 1, got 0"),
        (positive_int, "-3", "must be at least 1, got -3"),
        (port_number, "-1", "must be between 0 and 65535, got -1"),
        (port_number, "65536", "must be between 0 and 65535, got 65536"),
        (positive_float, "0", "must be more than 0, got 0"),
        (positive_float, "-0.5", "must be more than 0, got -0.5"),
        (positive_float, "inf", "must be more than 0, got inf"),
        (positive_float, "nan", "must be more than 0, got nan"),
    ],
)
def test_refused_values_say_why(convert: Callable[[str], Any], text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        convert(text)
    assert str(info.value) == message


@pytest.mark.parametrize("convert", [positive_int, port_number, positive_float])
def test_non_numbers_are_value_errors_for_argparse_to_report(
    convert: Callable[[str], Any],
) -> None:
    with pytest.raises(ValueError):
        convert("ten")


def test_the_types_report_through_argparse_as_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="graphctl")
    parser.add_argument("--port", type=port_number)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--port", "70000"])
    assert info.value.code == 2
    assert "argument --port: must be between 0 and 65535, got 70000" in capsys.readouterr().err


def test_graph_file_refuses_a_folder_and_names_its_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        graph_file(str(tmp_path))
    assert str(info.value) == f"{tmp_path} is a folder: name its graph files ({tmp_path}/*.yaml)"
    missing = tmp_path / "later.yaml"  # existence is checked where the file is read
    assert graph_file(str(missing)) == missing


def test_input_object_reads_inline_json_and_files(tmp_path: Path) -> None:
    assert input_object('{"x": [1, 2]}') == {"x": [1, 2]}
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"text": "héllo"}), encoding="utf-8")
    assert input_object(f"@{path}") == {"text": "héllo"}


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        ("{not json", "--input", "not valid JSON: "),
        ("[1, 2]", "--input", "inputs must be a JSON object"),
        ("3", "--input", "inputs must be a JSON object"),
        ("", "--input", "not valid JSON: "),
    ],
)
def test_input_object_refusals_name_the_option(content: str, field: str, message: str) -> None:
    with pytest.raises(RequestError) as info:
        input_object(content)
    assert info.value.field == field and message in str(info.value)


def test_input_object_refusals_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(RequestError) as info:
        input_object(f"@{bad}")
    assert info.value.field == str(bad)
    missing = tmp_path / "absent.json"
    with pytest.raises(RequestError) as info:
        input_object(f"@{missing}")
    assert info.value.field == "--input"
    assert f"cannot read {missing}: No such file or directory" in str(info.value)


def test_log_level_argument_choices_and_default() -> None:
    parser = argparse.ArgumentParser()
    add_log_level_argument(parser, "warning")
    assert parser.parse_args([]).log_level == "warning"
    assert parser.parse_args(["--log-level", "debug"]).log_level == "debug"
    with pytest.raises(SystemExit):
        parser.parse_args(["--log-level", "loud"])
    assert LOG_LEVELS == ("debug", "info", "warning", "error")


@pytest.fixture
def root_level() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.mark.usefixtures("root_level")
@pytest.mark.parametrize("level", LOG_LEVELS)
def test_configure_logging_sets_the_root_level(level: str) -> None:
    configure_logging(level)
    assert logging.getLogger().level == getattr(logging, level.upper())
