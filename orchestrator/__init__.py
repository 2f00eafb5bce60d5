"""graphctl's orchestrator: compile YAML inference graphs and run them.

    async with orchestrator.load("graphs/diamond.yaml") as graph:
        out = await graph.run({"x": [...]})
"""

from orchestrator.graph import Graph, GraphState, load, run_sync
from orchestrator.inputs import to_jsonable, validate_inputs
from orchestrator.loadgen import BenchSummary, GraphTarget, NodeSummary, run_load
from orchestrator.trace import Trace

__all__ = [
    "BenchSummary",
    "Graph",
    "GraphState",
    "GraphTarget",
    "NodeSummary",
    "Trace",
    "load",
    "run_load",
    "run_sync",
    "to_jsonable",
    "validate_inputs",
]
