"""Compile a graph file into a ``Plan``: checked once, eagerly, into frozen data.

    plan = compile_file("graphs/diamond.yaml")   # raises GraphFileError

Every check runs even after others failed, so a user sees all problems at once:
schema, references, cycles, imports, methods, signatures, tensors. Warnings
(unused nodes) do not fail the compile; they are in ``plan.warnings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import jsonschema

from orchestrator._tensors import DYNAMIC, mismatch, tensor_json_schema, tensor_spec
from orchestrator.compiling._context import CompileContext, spec_path
from orchestrator.compiling._links import build_dag, check_refs, gate_branches
from orchestrator.compiling._nodes import NodeDraft, compile_node
from orchestrator.compiling._references import Collected
from orchestrator.compiling._runners import CompiledRunner, compile_runners, node_method
from orchestrator.compiling._spec import DataPath, SpecDocument, load_document, parse_document
from orchestrator.compiling._streams import check_chunk_node, check_stream_output
from orchestrator.compiling._validation import validate_document
from orchestrator.errors import GraphFileError
from orchestrator.plan import INPUTS, InputPlan, NodePlan, OutputPlan, Plan, Ref, TensorSpec


def _check_json_schema(ctx: CompileContext, schema: Any, path: DataPath, who: str) -> None:
    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        ctx.error_at((*path, *error.path), f"{who}: invalid JSON Schema: {error.message}")


def _compile_input(ctx: CompileContext, name: str, data: Mapping[str, Any]) -> InputPlan:
    path = spec_path("inputs", name)
    flag = data.get("required")
    required = flag if isinstance(flag, bool) else True
    schema = {k: v for k, v in data.items() if not (k == "required" and isinstance(v, bool))}
    tensor = None
    if "tensor" in data and not ctx.faulty(path):
        tensor = tensor_spec(data["tensor"])
        extra = {k: v for k, v in schema.items() if k != "tensor"}
        schema = {**tensor_json_schema(tensor), **extra}
    elif not ctx.faulty(path):
        _check_json_schema(ctx, schema, path, f"input {name!r}")
    return InputPlan(name, schema, tensor, required, ctx.key(path))


def _compile_output(
    ctx: CompileContext, name: str, data: Any, found: Collected
) -> OutputPlan | None:
    path = spec_path("outputs", name)
    if ctx.faulty(path):
        return None
    source = data if isinstance(data, str) else data["from"]
    ref = found.ref(source, path if isinstance(data, str) else (*path, "from"))
    if ref is None:
        return None
    body = data if isinstance(data, dict) else {}
    tensor = tensor_spec(body["tensor"]) if "tensor" in body else None
    schema = body.get("schema")
    if schema is not None:
        _check_json_schema(ctx, schema, (*path, "schema"), f"output {name!r}")
    elif tensor is not None:
        schema = tensor_json_schema(tensor)
    if_skipped: Literal["null", "error"] = "error" if body.get("if_skipped") == "error" else "null"
    stream = bool(body.get("stream", False))
    return OutputPlan(name, ref, schema, tensor, if_skipped, ctx.key(path), stream)


def _check_output_tensor(
    ctx: CompileContext, output: OutputPlan, inputs: Mapping[str, InputPlan]
) -> None:
    """A tensor output wired straight to a tensor input must be able to carry it."""
    ref = output.ref
    if output.tensor is None or ref.source != INPUTS or len(ref.path) != 1:
        return
    source = inputs.get(str(ref.path[0]))
    produced: TensorSpec | None = source.tensor if source else None
    problem = mismatch(produced, output.tensor) if produced else None
    if problem:
        ctx.error_at(
            spec_path("outputs", output.name, "tensor"),
            f"output {output.name!r}: input {ref.path[0]!r} cannot be this tensor: {problem}",
        )


def _check_batch_inputs(
    ctx: CompileContext,
    node: NodePlan,
    runners: Mapping[str, CompiledRunner],
    inputs: Mapping[str, InputPlan],
) -> None:
    """A method that concatenates calls needs inputs that carry a batch dimension:
    a tensor input with no ``batch_dim``, or a fixed size there, is a per-item
    input (the one-item style), which concatenation would silently mix up."""
    called = node_method(node, runners)
    if called is None or node.map is not None:
        return
    runner, declared = called
    spec = runner.config.method_spec(declared)
    if not spec.batchable or spec.stack:
        return
    for arg, value in node.args.items():
        source = _direct_input(value, inputs)
        if source is None or source.tensor is None:
            continue
        shape, dim = list(source.tensor.shape), spec.batch_dim
        if len(shape) > dim and shape[dim] == DYNAMIC:
            continue
        ctx.error_at(
            spec_path("nodes", node.name, "args", arg),
            f"node {node.name!r}: {node.runner}.{node.method} concatenates calls along"
            f" batch_dim {dim}, but input {source.name!r} (shape {shape}) has no batch"
            f" dimension there: declare it as -1 (e.g. shape {_batched(shape, dim)}), or,"
            " if the method takes one item per call, declare"
            " @method(batchable=True, stack=True) (or `stack: true` in the runner's batching)",
        )


def _direct_input(value: Any, inputs: Mapping[str, InputPlan]) -> InputPlan | None:
    """The graph input ``value`` refers to as a whole (``$inputs.x``), if it does."""
    if isinstance(value, Ref) and value.source == INPUTS and len(value.path) == 1:
        return inputs.get(str(value.path[0]))
    return None


def _batched(shape: list[int], dim: int) -> list[int]:
    return [*shape[:dim], DYNAMIC, *shape[dim:]] if len(shape) >= dim else [DYNAMIC, *shape]


def _section(data: Any, name: str) -> dict[Any, Any]:
    spec = data.get("spec") if isinstance(data, dict) else None
    section = spec.get(name) if isinstance(spec, dict) else None
    return section if isinstance(section, dict) else {}


def compile_document(doc: SpecDocument) -> Plan:
    """Compile a parsed graph file; raise ``GraphFileError`` with every diagnostic."""
    schema_problems, bad = validate_document(doc)
    ctx = CompileContext(doc, doc.path.resolve().parent, bad, [*doc.problems, *schema_problems])
    declared_runners = _section(doc.data, "runners")
    runners = compile_runners(ctx, declared_runners)
    inputs = {
        str(n): _compile_input(ctx, str(n), d)
        for n, d in _section(doc.data, "inputs").items()
        if isinstance(d, dict)
    }
    drafts: dict[str, NodeDraft] = {}
    for name, data in _section(doc.data, "nodes").items():
        if isinstance(data, dict):
            draft = compile_node(ctx, str(name), data, runners, declared_runners)
            if draft is not None:
                drafts[str(name)] = draft
    declared_nodes = [str(n) for n in _section(doc.data, "nodes")]
    found = Collected()
    outputs = {
        str(n): o
        for n, d in _section(doc.data, "outputs").items()
        if (o := _compile_output(ctx, str(n), d, found)) is not None
    }
    for where, problem in found.problems:
        ctx.error_at(where, f"output {where[2]!r}: {problem}")
    check_refs(ctx, drafts, found.sites, declared_nodes, inputs)
    nodes = gate_branches(ctx, drafts, declared_nodes)
    for output in outputs.values():
        _check_output_tensor(ctx, output, inputs)
        check_stream_output(ctx, output, nodes, runners)
    for node in nodes.values():
        check_chunk_node(ctx, node, drafts[node.name].sites, nodes, runners)
        if node.kind == "runner":
            _check_batch_inputs(ctx, node, runners, inputs)
    order = build_dag(ctx, nodes, outputs, complete=len(nodes) == len(declared_nodes))
    errors = [d for d in ctx.diagnostics if d.severity == "error"]
    ordered = sorted(ctx.diagnostics, key=lambda d: (d.line, d.column))
    if errors or order is None:
        raise GraphFileError(ordered)
    metadata = doc.data["metadata"]
    return Plan(
        name=str(metadata["name"]),
        description=str(metadata.get("description", "")),
        file=doc.path,
        inputs=inputs,
        outputs=outputs,
        nodes={name: nodes[name] for name in order},
        runners={name: runner.config for name, runner in runners.items()},
        timeout_ms=doc.data["spec"].get("timeout_ms"),
        warnings=tuple(ordered),
    )


def compile_file(path: Path | str) -> Plan:
    """Load and compile a graph file; diagnostics name ``path`` as given."""
    return compile_document(load_document(path))


def compile_text(text: str, file: str = "<graph>", base_dir: Path | str = ".") -> Plan:
    """Compile graph YAML given as text; ``module:name`` resolves from ``base_dir``."""
    return compile_document(parse_document(text, file, Path(base_dir) / Path(file).name))
