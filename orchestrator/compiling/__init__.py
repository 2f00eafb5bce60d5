"""The compiler: a graph file in, a frozen ``Plan`` out, or every problem at once.

    spec (YAML with positions) -> validation (JSON Schema) -> runners and nodes
    (imports, signatures, model references) -> references and links (the DAG,
    switch gates, cycles) -> ``Plan``

Deployment overrides (``--config``/``--set``) apply to a compiled ``Plan``;
``render`` draws one as Mermaid or Graphviz. Nothing here runs a request.
"""

from orchestrator.compiling._compiler import compile_file, compile_text
from orchestrator.compiling._overrides import (
    apply_overrides,
    effective_runners,
    settings_document,
)
from orchestrator.compiling._render import FORMATS, render
from orchestrator.compiling._validation import graph_schema

__all__ = [
    "FORMATS",
    "apply_overrides",
    "compile_file",
    "compile_text",
    "effective_runners",
    "graph_schema",
    "render",
    "settings_document",
]
