"""User code from a graph's folder: imported with the folder first on the path
only while importing, each folder's own module of a shared name, messages that
say what failed, and keyword arguments checked against signatures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.compiling._imports import (
    ArgProblems,
    ImportFailure,
    check_arguments,
    import_object,
)


@pytest.fixture
def clean_modules() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("gc_test_"):
            del sys.modules[name]


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(text)
    return folder


@pytest.mark.usefixtures("clean_modules")
def test_imports_from_the_folder_and_leaves_sys_path_as_it_was(tmp_path: Path) -> None:
    _write(tmp_path, "gc_test_plain", "def double(x):\n    return 2 * x\n")
    path_before = list(sys.path)
    double = import_object("gc_test_plain:double", tmp_path)
    assert double(21) == 42
    assert sys.path == path_before


@pytest.mark.usefixtures("clean_modules")
def test_two_folders_with_a_module_of_the_same_name_each_get_their_own(tmp_path: Path) -> None:
    one = _write(tmp_path / "one", "gc_test_models", "WHO = 'one'\n")
    two = _write(tmp_path / "two", "gc_test_models", "WHO = 'two'\n")
    assert import_object("gc_test_models:WHO", one) == "one"
    assert import_object("gc_test_models:WHO", two) == "two"
    assert import_object("gc_test_models:WHO", two) == "two"  # its own, now cached


@pytest.mark.usefixtures("clean_modules")
def test_a_package_in_the_folder_replaces_a_cached_one_with_its_submodules(
    tmp_path: Path,
) -> None:
    for who in ("a", "b"):
        package = tmp_path / who / "gc_test_pkg"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "sub.py").write_text(f"WHO = {who!r}\n")
    assert import_object("gc_test_pkg.sub:WHO", tmp_path / "a") == "a"
    assert import_object("gc_test_pkg.sub:WHO", tmp_path / "b") == "b"


@pytest.mark.usefixtures("clean_modules")
@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (None, "gc_test_absent:f", "cannot import 'gc_test_absent:f': ModuleNotFoundError: "),
        ("raise RuntimeError('no GPU here')\n", "gc_test_raises:f", "RuntimeError: no GPU here"),
        ("import sys\nsys.exit(3)\n", "gc_test_exits:f", "SystemExit: 3"),
        ("def f(:\n", "gc_test_syntax:f", "SyntaxError"),
        (
            "def normalise(x):\n    return x\n",
            "gc_test_typo:normalize",
            "module 'gc_test_typo' has no 'normalize' (did you mean 'normalise'?)",
        ),
        ("X = 1\n", "gc_test_far:completely_else", "module 'gc_test_far' has no 'completely_else'"),
    ],
)
def test_failures_say_what_failed(
    tmp_path: Path, source: str | None, target: str, message: str
) -> None:
    if source is not None:
        _write(tmp_path, target.split(":")[0], source)
    with pytest.raises(ImportFailure) as info:
        import_object(target, tmp_path)
    assert message in str(info.value)
    assert str(tmp_path.resolve()) not in sys.path


def _fn(a: int, b: int = 1, *, c: int, d: int = 2) -> None:
    """Two required, two optional."""


def _kw(a: int, **rest: Any) -> None:
    """Takes any keyword."""


def _var(*items: int, scale: int) -> None:
    """Positional rest is never missing."""


class _Model:
    def predict(self, x: int, *, temperature: float = 1.0) -> None:
        """A method taken from its class."""


@pytest.mark.parametrize(
    ("func", "given", "bound", "expected"),
    [
        (_fn, ["a", "c"], False, ArgProblems()),
        (_fn, ["a", "b", "c", "d"], False, ArgProblems()),
        (_fn, ["a"], False, ArgProblems(missing=("c",))),
        (_fn, [], False, ArgProblems(missing=("a", "c"))),
        (_fn, ["a", "c", "e"], False, ArgProblems(unknown=(("e", ""),))),
        (_fn, ["a", "c", "dd"], False, ArgProblems(unknown=(("dd", " (did you mean 'd'?)"),))),
        (_kw, ["a", "anything"], False, ArgProblems()),
        (_kw, [], False, ArgProblems(missing=("a",))),
        (_var, ["scale"], False, ArgProblems()),
        (_Model.predict, ["x"], True, ArgProblems()),
        (_Model.predict, ["x"], False, ArgProblems(missing=("self",))),
        (
            _Model.predict,
            ["temprature"],
            True,
            ArgProblems(
                missing=("x",), unknown=(("temprature", " (did you mean 'temperature'?)"),)
            ),
        ),
        (max, ["whatever"], False, ArgProblems()),  # no signature: nothing to check
    ],
)
def test_check_arguments(func: Any, given: list[str], bound: bool, expected: ArgProblems) -> None:
    assert check_arguments(func, given, bound=bound) == expected


def test_problems_are_falsy_only_when_empty() -> None:
    assert not ArgProblems()
    assert ArgProblems(missing=("a",))
    assert ArgProblems(unknown=(("b", ""),))
