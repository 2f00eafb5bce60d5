"""The load generator behind ``graphctl bench`` and the benchmark scripts.

Not part of the library: no module of ``orchestrator`` outside this folder and
``orchestrator.cli`` imports it. It drives a ``Target`` (a graph in this
process, or a server over HTTP, possibly one it starts with ``ServeProcess``)
at a fixed concurrency and summarizes latencies, errors and per-node figures.
"""

from orchestrator.loadgen._errors import BenchError
from orchestrator.loadgen._http import HTTPTarget, NodeRoute, require_loopback
from orchestrator.loadgen._load import GraphTarget, Progress, Target, run_load
from orchestrator.loadgen._serve_process import ServeProcess, free_port
from orchestrator.loadgen._summary import BenchSummary, NodeSummary

__all__ = [
    "BenchError",
    "BenchSummary",
    "GraphTarget",
    "HTTPTarget",
    "NodeRoute",
    "NodeSummary",
    "Progress",
    "ServeProcess",
    "Target",
    "free_port",
    "require_loopback",
    "run_load",
]
