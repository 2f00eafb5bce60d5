"""The compiled form of a graph file: immutable data, built once by the compiler.

The executor, the server and the CLI read a ``Plan`` and never the YAML. Nothing
here runs user code; ``NodePlan.function`` is already imported by the compiler.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import jsonschema

from orchestrator.errors import Diagnostic
from runners.config import RunnerConfig

INPUTS = "inputs"  # the source name of ``$inputs.NAME`` references
ITEM = "item"  # the source name of ``$item`` inside a ``map`` node
SWITCH_DEFAULT = "default"  # the label a switch outputs when no case matches


@dataclass(frozen=True)
class Location:
    """Where something was written: 1-based line and column in ``file``."""

    file: str
    line: int
    column: int


@dataclass(frozen=True)
class Ref:
    """A reference: ``$inputs.x`` → (``inputs``, ("x",)); ``$router.label`` →
    (``router``, ("label",)); ``$item`` → (``item``, ()). ``path`` steps are dict
    keys (str), list indexes (int), or attribute names."""

    source: str
    path: tuple[str | int, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class Compare:
    """``{ref: $r.label, in: [cat, dog]}``; ``op`` is one of
    eq, ne, in, not_in, gt, ge, lt, le, exists."""

    ref: Ref
    op: str
    value: Any = None


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


Condition = Compare | AllOf | AnyOf | Not


@dataclass(frozen=True)
class TensorSpec:
    """A numpy tensor: ``dtype`` is a numpy dtype name; ``-1`` is a dynamic dimension."""

    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class RetryPolicy:
    """Retry retryable errors ``count`` times, backing off exponentially."""

    count: int = 0
    backoff_ms: float = 50.0
    max_backoff_ms: float = 2_000.0


@dataclass(frozen=True)
class OnError:
    """``fail`` (default: fail the request), ``skip`` (the node counts as skipped),
    or ``default`` (the node's output becomes ``default``)."""

    mode: Literal["fail", "skip", "default"] = "fail"
    default: Any = None


NodeKind = Literal["runner", "function", "switch", "coalesce"]


@dataclass(frozen=True)
class NodePlan:
    """One node. ``args`` values are templates: JSON-like data whose ``Ref`` leaves
    are replaced by the referenced values at run time.

    kinds: ``runner`` calls ``runner.method``; ``function`` calls ``func``;
    ``switch`` outputs the matching key of ``cases`` (or ``SWITCH_DEFAULT``) for the
    value of ``args["value"]``; ``coalesce`` outputs the first of ``args["values"]``
    (a list of refs) that was not skipped. A function node with ``each_chunk`` is
    called once per chunk of the stream that argument reads, and streams itself.
    """

    name: str
    kind: NodeKind
    location: Location
    args: Mapping[str, Any] = field(default_factory=dict)
    deps: frozenset[str] = frozenset()  # node names this node reads (not inputs)
    runner: str | None = None
    method: str | None = None
    function: str | None = None  # "module:function" as written
    func: Callable[..., Any] | None = None
    is_async: bool = False
    inline: bool = False  # a sync function run on the event loop (cheap: no thread hop)
    cases: tuple[Any, ...] = ()  # switch only: the case keys, in file order
    timeout_ms: float | None = None
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    on_error: OnError = field(default_factory=OnError)
    when: Condition | None = None  # includes the gates a switch puts on its branches
    map: Ref | None = None  # call once per item of this list; ``$item`` in args
    on_skipped_input: Literal["skip", "null"] = "skip"  # "null": pass None instead
    each_chunk: str | None = None  # function nodes: the argument given one chunk per call

    @property
    def chunk_source(self) -> str | None:
        """The streaming node a per-chunk node reads (its ``each_chunk`` argument)."""
        if self.each_chunk is None:
            return None
        ref = self.args.get(self.each_chunk)
        return ref.source if isinstance(ref, Ref) else None


@dataclass(frozen=True)
class InputPlan:
    """A graph input: a JSON Schema, and for tensors also their dtype and shape."""

    name: str
    schema: Mapping[str, Any]
    tensor: TensorSpec | None = None
    required: bool = True
    location: Location | None = None

    @cached_property
    def validator(self) -> jsonschema.protocols.Validator:
        """What checks a value against ``schema``: built on first use, then kept
        with the plan, so a request does not build (or look up) one. It reads the
        schema as JSON has it (keys are strings)."""
        schema = json.loads(json.dumps(self.schema, default=str))
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        return cls(schema)


@dataclass(frozen=True)
class OutputPlan:
    """A graph output: the reference it reads, its declared schema or tensor, and
    what a skipped source gives (``null``, or an error)."""

    name: str
    ref: Ref
    schema: Mapping[str, Any] | None = None
    tensor: TensorSpec | None = None
    if_skipped: Literal["null", "error"] = "null"
    location: Location | None = None
    stream: bool = False  # the chunks of a streaming node, sent as they come


@dataclass(frozen=True)
class Plan:
    """A compiled graph. ``nodes`` is in a topological order; each node's ``deps``
    are the graph's edges (``edges`` lists them). Its mappings are read-only views
    of private copies, so nothing holding a ``Plan`` can change it."""

    name: str
    description: str
    file: Path
    inputs: Mapping[str, InputPlan]
    outputs: Mapping[str, OutputPlan]
    nodes: Mapping[str, NodePlan]
    runners: Mapping[str, RunnerConfig]
    timeout_ms: float | None = None
    warnings: tuple[Diagnostic, ...] = ()

    def __post_init__(self) -> None:
        for name in ("inputs", "outputs", "nodes", "runners"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """``(dependency, node)`` for every dependency, in node order."""
        return tuple((dep, node.name) for node in self.nodes.values() for dep in sorted(node.deps))

    @property
    def base_dir(self) -> Path:
        """The graph file's folder, where ``module:Name`` references are resolved."""
        return self.file.parent
