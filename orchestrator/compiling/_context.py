"""What every compile step shares: the parsed document, the folder user code is
imported from, the paths the schema already found at fault, and the list of
diagnostics that grows as checks run (so all of them are reported together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.compiling._imports import ImportFailure, import_object
from orchestrator.compiling._spec import DataPath, SpecDocument
from orchestrator.errors import Diagnostic, Severity
from orchestrator.plan import Location

SPEC = "spec"


@dataclass
class CompileContext:
    """The state of one compilation; ``bad`` lists the paths with schema errors."""

    doc: SpecDocument
    folder: Path
    bad: set[DataPath] = field(default_factory=set)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _faulty: set[DataPath] = field(default_factory=set)
    _imported: dict[tuple[str, Path], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._faulty = {bad[:end] for bad in self.bad for end in range(len(bad) + 1)}

    def key(self, path: DataPath) -> Location:
        """Where the key of the entry at ``path`` is written."""
        return self.doc.key_at(path)

    def value(self, path: DataPath) -> Location:
        """Where the value at ``path`` is written."""
        return self.doc.value_at(path)

    def report(self, where: Location, message: str, severity: Severity = "error") -> None:
        """Record one diagnostic at ``where``."""
        self.diagnostics.append(
            Diagnostic(self.doc.file, where.line, where.column, message, severity)
        )

    def error_at(self, path: DataPath, message: str, *, on_key: bool = False) -> None:
        """Record an error at the value (or the key) at ``path``."""
        self.report(self.key(path) if on_key else self.value(path), message)

    def faulty(self, path: DataPath) -> bool:
        """Whether the schema found a fault at or below ``path`` (skip deeper checks)."""
        return path in self._faulty  # every prefix of a bad path, so one look-up

    def import_object(self, target: str, folder: Path | None = None) -> Any:
        """``module:name`` from ``folder`` (default: the graph's), imported once per
        compilation: a large graph calling one function from every node imports it
        once. A failure is kept too and raised again as ``ImportFailure``."""
        key = (target, folder or self.folder)
        if key not in self._imported:
            try:
                self._imported[key] = import_object(target, key[1])
            except ImportFailure as failure:
                self._imported[key] = failure
        found = self._imported[key]
        if isinstance(found, ImportFailure):
            raise found
        return found

    @property
    def failed(self) -> bool:
        """True once any error (not a warning) was reported."""
        return any(d.severity == "error" for d in self.diagnostics)


def spec_path(section: str, name: object, *rest: object) -> DataPath:
    """The path of an entry of ``spec.<section>``: ``("spec", "nodes", "a", ...)``."""
    return (SPEC, section, name, *rest)
