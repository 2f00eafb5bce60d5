"""The version ``graphctl --version`` and the OIP server metadata report."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pytest

from orchestrator import _about
from orchestrator._about import graphctl_version


def test_the_installed_distributions_version() -> None:
    assert graphctl_version() == version("graphctl")


def test_unknown_when_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(_about, "version", missing)
    graphctl_version.cache_clear()  # looked up once per process
    try:
        assert graphctl_version() == "unknown"
    finally:
        graphctl_version.cache_clear()
