"""Every error the orchestrator raises on purpose, with the runner errors re-exported.

    GraphctlError                    root of everything graphctl raises on purpose
     ├── GraphFileError              a graph file is invalid; ``diagnostics`` lists every
     │                               problem found, each ``FILE:LINE:COL: error: MESSAGE``
     ├── RequestError                the caller's fault: bad or missing inputs (``field``)
     ├── DeadlineExceeded            the request's deadline passed before it finished
     ├── DeployError                 deployment files cannot be written as asked
     ├── GraphUnavailable            temporary: retrying later can succeed
     │    └── GraphClosed            a graph used before it was started or after it closed
     └── RunFailed                   a request's run failed in the graph itself
          ├── NodeFailed             a node failed and its policy is ``fail``; names the
          │                          node, its runner and the cause (``__cause__``)
          ├── SkippedOutput          an output declared ``if_skipped: error`` was skipped
          ├── ReferenceFailed        ``$node.field`` selects what the value does not have
          └── ConditionError         a ``when`` compares values that cannot be compared

    RunnerError (from ``runners``)   root of worker-pool failures: WorkerCrashed,
                                     PoisonCall, Overloaded, CallTimeout, MethodError, ...

The categories (``RequestError``, ``GraphUnavailable``, ``RunFailed``) are what the
HTTP layer maps to a status (4xx, 503, 500), walking each class's MRO. Catch
``GraphctlError`` or ``RunnerError`` for all of them, or one precise class.
A message that quotes a value a caller sent quotes ``abbreviate(value)``: a short
prefix, so an error never echoes a large input back.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from runners.errors import (
    CallTimeout,
    MethodError,
    Overloaded,
    PoisonCall,
    PoolClosed,
    RunnerError,
    RunnerStartupError,
    UnsupportedValue,
    WorkerCrashed,
)

__all__ = [
    "CallTimeout",
    "ConditionError",
    "DeadlineExceeded",
    "DeployError",
    "Diagnostic",
    "GraphClosed",
    "GraphFileError",
    "GraphUnavailable",
    "GraphctlError",
    "MethodError",
    "NodeFailed",
    "Overloaded",
    "PoisonCall",
    "PoolClosed",
    "ReferenceFailed",
    "RequestError",
    "RunFailed",
    "RunnerError",
    "RunnerStartupError",
    "SkippedOutput",
    "UnsupportedValue",
    "WorkerCrashed",
]

Severity = Literal["error", "warning"]

QUOTE_LIMIT = 60  # characters of a value an error message quotes at most
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = QUOTE_LIMIT
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6
_SHORT.maxlevel = 3


def abbreviate(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as an error message quotes it: text as it is, anything else as a
    ``repr``, cut to ``limit`` characters (never building the full ``repr`` of a
    large value)."""
    text = value if isinstance(value, str) else _SHORT.repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[:limit]}...{size}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a graph file, at a position a user can jump to."""

    file: str
    line: int
    column: int
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"


class GraphctlError(Exception):
    """Root of the orchestrator's errors."""


class GraphFileError(GraphctlError):
    """A graph file failed validation; every error found is in ``diagnostics``."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The diagnostics that are errors (not warnings)."""
        return tuple(d for d in self.diagnostics if d.severity == "error")


class RequestError(GraphctlError):
    """A request's inputs do not match the graph; ``field`` is the path at fault."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field


class GraphUnavailable(GraphctlError):
    """Temporary: the graph cannot take the request now; retrying later can succeed."""


class RunFailed(GraphctlError):
    """A request's run failed inside the graph (not the caller's fault, not temporary)."""


class NodeFailed(RunFailed):
    """A node failed under the ``fail`` policy; the original error is ``__cause__``."""

    def __init__(self, node: str, cause: BaseException, *, runner: str | None = None):
        where = f"node {node!r}" + (f" (runner {runner!r})" if runner else "")
        super().__init__(f"{where} failed: {cause}")
        self.where = where
        self.node = node
        self.runner = runner
        self.cause = cause


class SkippedOutput(RunFailed):
    """An output declared ``if_skipped: error`` came from a skipped node."""


class ReferenceFailed(RunFailed):
    """A reference selects a key, index or attribute its value does not have."""


class ConditionError(RunFailed):
    """A condition compared values that cannot be compared (e.g. a string with a number)."""


class DeadlineExceeded(GraphctlError):
    """The request's deadline passed; everything still pending was cancelled."""


class DeployError(GraphctlError):
    """Deployment files cannot be written as asked (a name Kubernetes refuses, a
    setting the chosen autoscaler cannot use, an output folder in the way)."""


class GraphClosed(GraphUnavailable):
    """The graph was used outside its ``async with`` block."""
