"""What every compile step shares: positions of keys and values, diagnostics that
accumulate, the schema's faulty paths (and every prefix of them), and user code
imported once per compilation (failures too)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.compiling._context import CompileContext, spec_path
from orchestrator.compiling._imports import ImportFailure
from orchestrator.compiling._spec import parse_document
from orchestrator.errors import Diagnostic

TEXT = "spec:\n  nodes:\n    a: {function: m:f}\n"


def _context(tmp_path: Path, bad: set[tuple[str | int, ...]] | None = None) -> CompileContext:
    return CompileContext(parse_document(TEXT, "g.yaml"), tmp_path, bad=bad or set())


def test_errors_point_at_the_value_or_the_key(tmp_path: Path) -> None:
    context = _context(tmp_path)
    path = spec_path("nodes", "a", "function")
    assert path == ("spec", "nodes", "a", "function")
    context.error_at(path, "at the value")
    context.error_at(path, "at the key", on_key=True)
    context.report(context.key(("spec",)), "careful", severity="warning")
    assert context.diagnostics == [
        Diagnostic("g.yaml", 3, 19, "at the value"),
        Diagnostic("g.yaml", 3, 9, "at the key"),
        Diagnostic("g.yaml", 1, 1, "careful", "warning"),
    ]


def test_failed_counts_errors_not_warnings(tmp_path: Path) -> None:
    context = _context(tmp_path)
    context.report(context.value(("spec",)), "only a warning", severity="warning")
    assert not context.failed
    context.error_at(("spec",), "an error")
    assert context.failed


@pytest.mark.parametrize(
    ("path", "faulty"),
    [
        (("spec", "nodes", "a", "args", "x"), True),
        (("spec", "nodes", "a"), True),
        (("spec",), True),
        ((), True),
        (("spec", "nodes", "a", "args", "x", 0), False),  # below the fault: not itself at fault
        (("spec", "nodes", "b"), False),
        (("spec", "outputs"), False),
    ],
)
def test_faulty_covers_a_bad_path_and_everything_holding_it(
    tmp_path: Path, path: tuple[str | int, ...], faulty: bool
) -> None:
    context = _context(tmp_path, bad={("spec", "nodes", "a", "args", "x")})
    assert context.faulty(path) is faulty


def test_user_code_is_imported_once_per_compilation(tmp_path: Path) -> None:
    (tmp_path / "gc_ctx_counter.py").write_text(
        "import pathlib\n"
        "LOG = pathlib.Path(__file__).with_suffix('.log')\n"
        "LOG.write_text((LOG.read_text() if LOG.exists() else '') + 'x')\n"
        "def f():\n    return 1\n"
    )
    context = _context(tmp_path)
    try:
        first = context.import_object("gc_ctx_counter:f")
        sys.modules.pop("gc_ctx_counter")  # the context's own memory, not sys.modules
        assert context.import_object("gc_ctx_counter:f", tmp_path) is first
        assert (tmp_path / "gc_ctx_counter.log").read_text() == "x"
        assert _context(tmp_path).import_object("gc_ctx_counter:f") is not first
        assert (tmp_path / "gc_ctx_counter.log").read_text() == "xx"
    finally:
        sys.modules.pop("gc_ctx_counter", None)


def test_a_failed_import_is_kept_and_raised_again(tmp_path: Path) -> None:
    (tmp_path / "gc_ctx_broken.py").write_text("raise RuntimeError('boom')\n")
    context = _context(tmp_path)
    with pytest.raises(ImportFailure, match="RuntimeError: boom") as first:
        context.import_object("gc_ctx_broken:f")
    (tmp_path / "gc_ctx_broken.py").write_text("def f():\n    return 1\n")  # fixed on disk
    with pytest.raises(ImportFailure) as again:
        context.import_object("gc_ctx_broken:f")
    assert again.value is first.value  # not retried within one compilation
    sys.modules.pop("gc_ctx_broken", None)
