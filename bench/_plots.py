"""The report's PNG plots (matplotlib, a bench-only dependency, without a display)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RUNNER_NODES = ("a", "b")


def _series(load: Mapping[str, Any], mode: str, key: str) -> tuple[list[int], list[float]]:
    points = [
        (s["concurrency"], s[key])
        for s in load.get("summaries", {}).get(mode, [])
        if s.get(key) is not None
    ]
    return [c for c, _ in points], [v for _, v in points]


def plot_throughput(load: Mapping[str, Any] | None, path: Path) -> Path | None:
    """Throughput and p99 against concurrency, one line per mode."""
    if not load or not load.get("summaries"):
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in load["summaries"]:
        left.plot(*_series(load, mode, "throughput_rps"), marker="o", label=mode)
        right.plot(*_series(load, mode, "p99_ms"), marker="o", label=mode)
    for axis, label in ((left, "throughput (req/s)"), (right, "p99 latency (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrency (closed-loop clients)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle("diamond graph: throughput and p99 against concurrency")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _mean_batch(summary: Mapping[str, Any]) -> float | None:
    sizes = [
        summary["nodes"][n]["mean_batch_size"]
        for n in RUNNER_NODES
        if summary.get("nodes", {}).get(n, {}).get("mean_batch_size") is not None
    ]
    return sum(sizes) / len(sizes) if sizes else None


def plot_batch_size(
    load: Mapping[str, Any] | None, batching: Mapping[str, Any] | None, path: Path
) -> Path | None:
    """Mean batch size as load grows (diamond), and against max_batch_size (20 ms model)."""
    if not load and not batching:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, summaries in (load or {}).get("summaries", {}).items():
        points = [(s["concurrency"], _mean_batch(s)) for s in summaries]
        points = [(c, b) for c, b in points if b is not None]
        left.plot([c for c, _ in points], [b for _, b in points], marker="o", label=mode)
    left.set_xscale("log", base=2)
    left.set_xlabel("concurrency")
    left.set_ylabel("mean batch size (runner nodes)")
    left.set_title("diamond: batches grow with load")
    left.grid(alpha=0.3)
    left.legend()
    if batching:
        sweep = sorted(
            (p["max_batch"], p["mean_batch"])
            for p in batching.get("points", [])
            if p["mode"] == "in-process" and p["workers"] == 2 and p["mean_batch"]
        )
        right.plot([size for size, _ in sweep], [mean for _, mean in sweep], marker="o")
        right.set_xscale("log", base=2)
        right.set_xlabel("max_batch_size")
        right.set_ylabel("mean batch size")
        right.set_title("20 ms model, 2 workers, concurrency 64")
        right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
