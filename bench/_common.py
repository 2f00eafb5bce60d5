"""What every benchmark shares: run lengths from the environment, the machine's
description, a plain table printer and the JSON result file.

Durations are short by default so ``make bench`` stays under ten minutes on two
cores; ``GRAPHCTL_BENCH_DURATION`` (seconds per point) and
``GRAPHCTL_BENCH_WARMUP`` make every benchmark longer or shorter at once.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
GRAPHS_DIR = BENCH_DIR / "graphs"
DIAMOND = REPO_DIR / "graphs" / "diamond.yaml"
DURATION_ENV = "GRAPHCTL_BENCH_DURATION"
WARMUP_ENV = "GRAPHCTL_BENCH_WARMUP"


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        sys.exit(f"{name} must be a number of seconds, got {text!r}")
    if value <= 0:
        sys.exit(f"{name} must be more than 0 seconds, got {text!r}")
    return value


def duration_s(default: float = 3.0) -> float:
    """Seconds measured per point."""
    return _env_seconds(DURATION_ENV, default)


def warmup_s(default: float = 1.0) -> float:
    """Seconds of load before each point's measurement starts."""
    return _env_seconds(WARMUP_ENV, default)


def machine() -> dict[str, Any]:
    """Where the figures were measured: they mean nothing without it."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: numbers rounded, ``None`` as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits if abs(value) < 1000 else 0}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (first column left, the others right)."""
    cells = [list(headers), *[[fmt(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *map(line, cells[1:])])


def write_result(
    name: str,
    *,
    title: str,
    baseline: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    notes: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Print the human table and save ``bench/results/NAME.json`` for the report."""
    print(f"\n{title}\nbaseline: {baseline}\n")
    print(table(headers, rows))
    for note in notes:
        print(note)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "title": title,
        "command": f"python -m bench.{name}",
        "baseline": baseline,
        "duration_s": duration_s(),
        "headers": list(headers),
        "rows": [list(row) for row in rows],
        "notes": list(notes),
        "machine": machine(),
        **(extra or {}),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def ratio(value: float | None, base: float | None) -> float | None:
    """``value / base``, or ``None`` when either is missing or the base is zero."""
    if value is None or not base:
        return None
    return value / base


def rounded(value: float | None, digits: int = 2) -> float | None:
    """``value`` rounded for a table cell, ``None`` kept (a ratio with no base)."""
    return None if value is None else round(value, digits)


def best_cpu_s(run: Callable[[], None], repeats: int = 3) -> float:
    """The least CPU time (this process's) of ``repeats`` runs of ``run``."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)
