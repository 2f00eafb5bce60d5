"""graphctl's orchestrator: compile YAML inference graphs and run them.

The folders show the parts (docs/architecture.md draws them): ``compiling``
(graph file -> ``Plan``), ``running`` (one request through a ``Plan``),
``server`` (HTTP), ``cli`` (``graphctl``) and ``loadgen`` (``graphctl bench``,
not part of this API). ``__all__`` of each package is its public surface;
modules whose names start with ``_`` are internal.

    async with orchestrator.load("graphs/diamond.yaml") as graph:
        out = await graph.run({"x": [...]})
"""

from orchestrator._inputs import to_jsonable, validate_inputs
from orchestrator.compiling import apply_overrides, compile_file, compile_text
from orchestrator.errors import (
    CallTimeout,
    ConditionError,
    DeadlineExceeded,
    DeployError,
    Diagnostic,
    GraphClosed,
    GraphctlError,
    GraphFileError,
    GraphUnavailable,
    MethodError,
    NodeFailed,
    Overloaded,
    PoisonCall,
    PoolClosed,
    ReferenceFailed,
    RequestError,
    RunFailed,
    RunnerError,
    RunnerStartupError,
    SkippedOutput,
    UnsupportedValue,
    WorkerCrashed,
)
from orchestrator.graph import Graph, GraphState, load, run_sync
from orchestrator.plan import Plan
from orchestrator.running import Trace
from orchestrator.server import create_app

__all__ = [
    "CallTimeout",
    "ConditionError",
    "DeadlineExceeded",
    "DeployError",
    "Diagnostic",
    "Graph",
    "GraphClosed",
    "GraphFileError",
    "GraphState",
    "GraphUnavailable",
    "GraphctlError",
    "MethodError",
    "NodeFailed",
    "Overloaded",
    "Plan",
    "PoisonCall",
    "PoolClosed",
    "ReferenceFailed",
    "RequestError",
    "RunFailed",
    "RunnerError",
    "RunnerStartupError",
    "SkippedOutput",
    "Trace",
    "UnsupportedValue",
    "WorkerCrashed",
    "apply_overrides",
    "compile_file",
    "compile_text",
    "create_app",
    "load",
    "run_sync",
    "to_jsonable",
    "validate_inputs",
]
