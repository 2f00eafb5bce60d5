"""The executor: one request through a compiled ``Plan``.

Each node starts as soon as the nodes it reads are done; runner nodes call a
``RunnerClient`` (worker pools, from ``runners``), function nodes call Python.
References resolve against the values so far, conditions are evaluated as data,
retries back off, and every node leaves a span in the request's ``Trace``.
"""

from orchestrator.running._executor import Executor
from orchestrator.running._trace import Trace, Tracer

__all__ = ["Executor", "Trace", "Tracer"]
