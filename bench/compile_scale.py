"""Compile time of large generated graph files: it should grow linearly with nodes.

Each size writes one graph file to a temporary folder and compiles it in this
process, timing ``compile_file`` and counting its warnings. The graph is a fan:
every node reads ``$inputs.x``, every fourth node also reads the node before it,
and the output reads the last node, so most nodes are unused: references, the
DAG and the unused-node check all grow with the file (the warnings are capped).

    python -m bench.compile_scale                # 1000, 10000 and 20000 nodes
    python -m bench.compile_scale 10000 60000    # chosen sizes
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from orchestrator.compiling import compile_file

DEFAULT_SIZES = (1_000, 10_000, 20_000)

_FUNCTIONS = """
def step(x, prev=None):
    return x
"""


def graph_text(nodes: int) -> str:
    """A graph file with ``nodes`` function nodes (see the module docstring)."""
    lines = [
        "apiVersion: graphctl/v1",
        "kind: Graph",
        f"metadata: {{name: scale-{nodes}}}",
        "spec:",
        "  inputs:",
        "    x: {type: number}",
        "  nodes:",
    ]
    for i in range(nodes):
        prev = f", prev: $n{i - 1}" if i % 4 == 3 else ""
        lines.append(f"    n{i}: {{function: scale_funcs:step, args: {{x: $inputs.x{prev}}}}}")
    lines += ["  outputs:", f"    y: $n{nodes - 1}", ""]
    return "\n".join(lines)


def measure(nodes: int, folder: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds to compile a ``nodes``-node file, and its warning count.

    CPU seconds are the steadier figure on a shared machine."""
    path = folder / f"scale_{nodes}.yaml"
    path.write_text(graph_text(nodes), encoding="utf-8")
    wall, cpu = time.perf_counter(), time.process_time()
    plan = compile_file(path)
    return time.perf_counter() - wall, time.process_time() - cpu, len(plan.warnings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(DEFAULT_SIZES))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "scale_funcs.py").write_text(_FUNCTIONS, encoding="utf-8")
        print(f"{'nodes':>8} {'wall s':>8} {'cpu s':>8} {'cpu us/node':>12} {'warnings':>9}")
        for size in args.sizes:
            wall, cpu, warnings = measure(size, folder)
            per_node = cpu / size * 1e6
            print(f"{size:>8} {wall:>8.2f} {cpu:>8.2f} {per_node:>12.0f} {warnings:>9}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
