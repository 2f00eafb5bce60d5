"""graphctl's orchestrator: compile YAML inference graphs and run them.

    async with orchestrator.load("graphs/diamond.yaml") as graph:
        out = await graph.run({"x": [...]})
"""

from orchestrator.compiler import compile_file, compile_text
from orchestrator.errors import (
    BenchError,
    CallTimeout,
    DeadlineExceeded,
    Diagnostic,
    GraphClosed,
    GraphctlError,
    GraphFileError,
    MethodError,
    NodeFailed,
    Overloaded,
    PoisonCall,
    PoolClosed,
    RequestError,
    RunnerError,
    RunnerStartupError,
    SkippedOutput,
    UnsupportedValue,
    WorkerCrashed,
)
from orchestrator.graph import Graph, GraphState, load, run_sync
from orchestrator.inputs import to_jsonable, validate_inputs
from orchestrator.loadgen import BenchSummary, GraphTarget, NodeSummary, run_load
from orchestrator.overrides import apply_overrides
from orchestrator.plan import Plan
from orchestrator.server import create_app
from orchestrator.trace import Trace

__all__ = [
    "BenchError",
    "BenchSummary",
    "CallTimeout",
    "DeadlineExceeded",
    "Diagnostic",
    "Graph",
    "GraphClosed",
    "GraphFileError",
    "GraphState",
    "GraphTarget",
    "GraphctlError",
    "MethodError",
    "NodeFailed",
    "NodeSummary",
    "Overloaded",
    "Plan",
    "PoisonCall",
    "PoolClosed",
    "RequestError",
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
    "run_load",
    "run_sync",
    "to_jsonable",
    "validate_inputs",
]
