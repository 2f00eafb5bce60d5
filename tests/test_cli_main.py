"""The ``graphctl`` entry point in this process: the parser's commands, exit
codes, and how an error is shown (one line; a traceback only with --debug)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.cli import _main, build_parser, main
from orchestrator.cli._main import (
    COMMANDS,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    _sole_error,
)
from orchestrator.errors import GraphctlError
from runners.errors import PoolClosed

ROOT = Path(__file__).resolve().parent.parent
DIAMOND = ROOT / "graphs" / "diamond.yaml"


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(action.choices)


def test_every_listed_command_is_registered_in_order() -> None:
    assert _subcommands(build_parser())[: len(COMMANDS)] == list(COMMANDS)


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("usage: graphctl") and "validate" in err


def test_version_is_printed_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("graphctl ")


def test_a_handlers_exit_code_is_returned(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(DIAMOND)]) == EXIT_OK
    assert capsys.readouterr().out == f"{DIAMOND}: ok\n"


def test_a_graphctl_error_is_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = tmp_path / "over.yaml"
    overrides.write_text("runners: {nosuch: {workers: 2}}\n")
    assert main(["config", str(DIAMOND), "--config", str(overrides)]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        f"graphctl: error: {overrides}:1:11: error: graph 'diamond' has no runner 'nosuch' "
        "(runners: mlp_a, mlp_b)\n"
    )


def _with_command(monkeypatch: pytest.MonkeyPatch, handler: Callable[..., int]) -> None:
    """Give ``main`` a parser whose one command runs ``handler`` (the seam it dispatches on)."""

    def parser() -> argparse.ArgumentParser:
        built = argparse.ArgumentParser(prog="graphctl")
        built.add_argument("--debug", action="store_true")
        command = built.add_subparsers(dest="command").add_parser("go")
        command.set_defaults(handler=handler)
        return built

    monkeypatch.setattr(_main, "build_parser", parser)


def _raise(error: BaseException) -> Callable[..., int]:
    def handler(args: argparse.Namespace) -> int:
        raise error

    return handler


def test_an_internal_error_says_so_and_debug_shows_its_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_command(monkeypatch, _raise(ZeroDivisionError("division by zero")))
    assert main(["go"]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        "graphctl: internal error: ZeroDivisionError: division by zero"
        " (run again with --debug for details)\n"
    )
    assert main(["--debug", "go"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "ZeroDivisionError" in err


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (GraphctlError("bad graph"), "graphctl: error: bad graph\n"),
        (PoolClosed("stopped", runner="r"), "graphctl: error: runner 'r': stopped\n"),
        (
            ExceptionGroup("g", [ExceptionGroup("h", [GraphctlError("inner")])]),
            "graphctl: error: inner\n",
        ),
    ],
)
def test_our_errors_are_shown_by_their_message(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    line: str,
) -> None:
    _with_command(monkeypatch, _raise(error))
    assert main(["go"]) == EXIT_ERROR
    assert capsys.readouterr().err == line


def test_a_keyboard_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_command(monkeypatch, _raise(KeyboardInterrupt()))
    assert main(["go"]) == EXIT_INTERRUPTED


def test_the_handlers_return_value_is_the_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_command(monkeypatch, lambda args: 7)
    assert main(["go"]) == 7


def _group(*errors: Exception) -> ExceptionGroup[Exception]:
    return ExceptionGroup("group", list(errors))


@pytest.mark.parametrize(
    ("raised", "shown"),
    [
        (ValueError("plain"), "plain"),
        (_group(ValueError("one")), "one"),
        (_group(_group(KeyError("deep"))), "'deep'"),
        (_group(ValueError("a"), ValueError("b")), "group (2 sub-exceptions)"),
    ],
)
def test_the_sole_error_of_nested_task_groups_is_shown(raised: Exception, shown: str) -> None:
    assert str(_sole_error(raised)) == shown
