"""The public surface: each package's ``__all__`` lists exactly the public names it
defines or re-exports (submodules are not part of it)."""

from __future__ import annotations
import __future__

import types

import pytest

import orchestrator
import runners


@pytest.mark.parametrize("package", [orchestrator, runners], ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names(package: types.ModuleType) -> None:
    public = {
        name
        for name in dir(package)
        if not name.startswith("_")
        and not isinstance(getattr(package, name), types.ModuleType | __future__._Feature)
    }
    assert sorted(package.__all__) == sorted(public)
    assert len(package.__all__) == len(set(package.__all__))


@pytest.mark.parametrize("package", [orchestrator, runners], ids=lambda m: m.__name__)
def test_every_exported_name_resolves(package: types.ModuleType) -> None:
    for name in package.__all__:
        assert getattr(package, name) is not None


def test_errors_and_compiler_are_public() -> None:
    from orchestrator import errors

    assert set(errors.__all__) <= set(orchestrator.__all__)
    assert {"compile_file", "compile_text", "Plan", "Diagnostic", "GraphFileError"} <= set(
        orchestrator.__all__
    )
