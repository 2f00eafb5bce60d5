"""The public surface: each package's ``__all__`` lists exactly the public names it
defines or re-exports (submodules are not part of it), every one documented."""

from __future__ import annotations
import __future__

import ast
import importlib
import inspect
import pkgutil
import types
from pathlib import Path

import pytest

import orchestrator
import runners


def _packages(root: types.ModuleType) -> list[types.ModuleType]:
    """``root`` and every package below it (not its ``_private`` modules)."""
    found = [root]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{root.__name__}."):
        if info.ispkg and not info.name.rsplit(".", 1)[1].startswith("_"):
            found.append(importlib.import_module(info.name))
    return found


PACKAGES = [*_packages(orchestrator), *_packages(runners)]


def test_every_part_of_the_orchestrator_is_a_package() -> None:
    names = {package.__name__ for package in PACKAGES}
    assert {
        "orchestrator.cli",
        "orchestrator.compiling",
        "orchestrator.loadgen",
        "orchestrator.running",
        "orchestrator.server",
    } <= names


@pytest.mark.parametrize("package", PACKAGES, ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names(package: types.ModuleType) -> None:
    public = {
        name
        for name in dir(package)
        if not name.startswith("_")
        and not isinstance(getattr(package, name), types.ModuleType | __future__._Feature)
    }
    assert sorted(package.__all__) == sorted(public)
    assert len(package.__all__) == len(set(package.__all__))


@pytest.mark.parametrize("package", PACKAGES, ids=lambda m: m.__name__)
def test_every_exported_name_resolves_and_is_documented(package: types.ModuleType) -> None:
    assert inspect.getdoc(package), f"{package.__name__} has no docstring"
    for name in package.__all__:
        value = getattr(package, name)
        assert value is not None
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{package.__name__}.{name} has no docstring"


def test_errors_and_compiler_are_public() -> None:
    from orchestrator import errors

    assert set(errors.__all__) <= set(orchestrator.__all__)
    assert {"compile_file", "compile_text", "Plan", "Diagnostic", "GraphFileError"} <= set(
        orchestrator.__all__
    )


def test_the_load_generator_is_not_part_of_the_library() -> None:
    from orchestrator import loadgen

    assert not set(loadgen.__all__) & set(orchestrator.__all__)
    assert not {"BenchError", "BenchSummary", "GraphTarget", "NodeSummary", "run_load"} & set(
        orchestrator.__all__
    )


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_the_bench_command_imports_the_load_generator() -> None:
    root = Path(orchestrator.__file__).parent
    importers = {
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "loadgen" not in path.relative_to(root).parts
        and any(m.startswith("orchestrator.loadgen") for m in _imported_modules(path))
    }
    assert importers == {"cli/_bench.py"}
