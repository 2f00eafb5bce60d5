"""Checks of streams: which nodes stream, what a ``stream: true`` output reads, and
what a per-chunk node (``each_chunk``) may read.

A node streams when it is a whole runner node whose method streams, or a function
node with ``each_chunk``; a per-chunk node reads exactly one such node, through its
``each_chunk`` argument, and its other inputs are ordinary values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.compiling._context import CompileContext, spec_path
from orchestrator.compiling._references import RefSite
from orchestrator.compiling._runners import CompiledRunner, node_method
from orchestrator.compiling._validation import did_you_mean
from orchestrator.plan import INPUTS, NodePlan, OutputPlan, Ref

_NOT_A_STREAM = (
    "a whole streaming node ($node): a runner node whose method streams, or a per-chunk"
    " node (each_chunk)"
)


def streams(node: NodePlan, runners: Mapping[str, CompiledRunner]) -> bool | None:
    """Whether ``node``'s value is a stream; ``None`` when its runner could not be
    read (that fault is already reported)."""
    if node.kind == "function":
        return node.each_chunk is not None
    if node.kind != "runner" or node.map is not None:
        return False
    called = node_method(node, runners)
    return None if called is None else called[1].stream


def check_stream_output(
    ctx: CompileContext,
    output: OutputPlan,
    nodes: Mapping[str, NodePlan],
    runners: Mapping[str, CompiledRunner],
) -> None:
    """A ``stream: true`` output reads a whole node that streams."""
    if not output.stream:
        return
    ref = output.ref
    node = nodes.get(ref.source)
    if node is None or ref.path or streams(node, runners) is False:
        if node is not None and node.kind == "runner" and node.map is None and not ref.path:
            problem = f"{node.runner}.{node.method} does not stream: declare @method(stream=True)"
        else:
            problem = f"must read {_NOT_A_STREAM}"
        ctx.error_at(
            spec_path("outputs", output.name, "from"), f"output {output.name!r}: {problem}"
        )


def check_chunk_node(
    ctx: CompileContext,
    node: NodePlan,
    sites: Sequence[RefSite],
    nodes: Mapping[str, NodePlan],
    runners: Mapping[str, CompiledRunner],
) -> None:
    """A per-chunk node's ``each_chunk`` argument reads one whole streaming node, and
    nothing else it reads streams; it neither maps nor retries (a stream is read once)."""
    if node.each_chunk is None:
        return
    name, path = node.name, spec_path("nodes", node.name)
    if node.map is not None:
        _not_here(ctx, node, "map", "it already runs once per chunk")
    if node.retries.count:
        _not_here(ctx, node, "retries", "its stream is read once, as it comes")
    arg = node.each_chunk
    if arg not in node.args:
        hint = did_you_mean(arg, list(node.args))
        message = f"node {name!r}: each_chunk names {arg!r}, which is not one of its args{hint}"
        ctx.error_at((*path, "each_chunk"), message)
        return
    ref = node.args[arg]
    whole = isinstance(ref, Ref) and not ref.path and ref.source != INPUTS
    source = nodes.get(ref.source) if isinstance(ref, Ref) else None
    if not whole or (source is not None and streams(source, runners) is False):
        ctx.error_at(
            (*path, "args", arg),
            f"node {name!r}: its each_chunk argument {arg!r} must read {_NOT_A_STREAM}",
        )
    chunk_arg = (*path, "args", arg)
    for site in sites:
        other = nodes.get(site.ref.source)
        if site.path[: len(chunk_arg)] == chunk_arg or other is None:
            continue
        if streams(other, runners):
            ctx.error_at(
                site.path,
                f"node {name!r}: reads the stream of {other.name!r} outside each_chunk:"
                " a per-chunk node reads one stream, through its each_chunk argument",
            )


def _not_here(ctx: CompileContext, node: NodePlan, key: str, why: str) -> None:
    message = f"node {node.name!r}: `{key}` does not apply to a per-chunk node: {why}"
    ctx.error_at(spec_path("nodes", node.name, key), message, on_key=True)
