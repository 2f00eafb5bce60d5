"""Regenerate ``bench/RESULTS.md`` and ``bench/plots/*.png`` from the result
files of the last run (``bench/results/``): the figures, the command behind
each, the machine, and the performance targets they are held against.

    python -m bench.report
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench._common import BENCH_DIR, DURATION_ENV, RESULTS_DIR, WARMUP_ENV, fmt, machine
from bench._plots import plot_batch_size, plot_throughput

RESULTS_MD = BENCH_DIR / "RESULTS.md"
PLOTS_DIR = BENCH_DIR / "plots"
ORDER = (
    "runners",
    "graph",
    "http",
    "batching",
    "scheduler",
    "load",
    "streaming",
    "memory",
    "coldstart",
)
LOG_TAIL_LINES = 40


def load_results() -> dict[str, dict[str, Any]]:
    """Every ``NAME.json`` result, in suite order (then any others by name)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(RESULTS_DIR.glob("*.json")):
        if path.stem == "suite":
            continue
        try:
            found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(ORDER)), kv[0])))


def markdown_table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(str(h) for h in headers) + " |"]
    lines.append("|" + "|".join(" --- " for _ in headers) + "|")
    lines.extend("| " + " | ".join(fmt(v, 2) for v in row) + " |" for row in rows)
    return lines


def section(name: str, result: Mapping[str, Any]) -> list[str]:
    """One benchmark's section: ours have headers/rows; others' are shown as
    their row dicts, their scalar figures, or their JSON."""
    lines = [f"### {result.get('title', name)}", ""]
    lines.append(f"Command: `{result.get('command', f'python -m bench.{name}')}`  ")
    if result.get("baseline"):
        lines.append(f"Baseline: {result['baseline']}")
    lines.append("")
    rows = result.get("rows")
    if isinstance(result.get("headers"), list) and isinstance(rows, list):
        lines += markdown_table(result["headers"], rows)
    elif isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        headers = list(dict.fromkeys(k for r in rows for k in r))
        lines += markdown_table(headers, [[r.get(h) for h in headers] for r in rows])
    else:
        scalars = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
        lines += markdown_table(["figure", "value"], list(scalars.items()))
    lines += [""] + [f"- {note}" for note in result.get("notes", [])]
    return [*lines, ""]


def log_section(name: str, path: Path) -> list[str]:
    """A benchmark that wrote no JSON: the end of what it printed."""
    tail = (
        path.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()[-LOG_TAIL_LINES:]
    )
    return [f"### bench.{name} (its printed output)", "", "```", *tail, "```", ""]


def suite_section() -> list[str]:
    path = RESULTS_DIR / "suite.json"
    if not path.is_file():
        return []
    suite = json.loads(path.read_text(encoding="utf-8"))
    rows = [[r["name"], r["status"], r["seconds"]] for r in suite.get("runs", [])]
    total = sum(float(r["seconds"]) for r in suite.get("runs", []))
    return [
        "## The run",
        "",
        *markdown_table(["benchmark", "status", "seconds"], rows),
        "",
        f"Total {total:.0f} s.",
        "",
    ]


def _row_where(result: Mapping[str, Any], **match: Any) -> dict[str, Any] | None:
    headers = result.get("headers", [])
    for row in result.get("rows", []):
        named = dict(zip(headers, row, strict=False))
        if all(named.get(k) == v for k, v in match.items()):
            return named
    return None


def targets(results: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    """The performance targets, as far as this run measured it."""
    found: list[list[Any]] = []
    batching = results.get("batching", {})
    for mode, goal in (("in-process", 90.0), ("http", 75.0)):
        row = _row_where(batching, mode=mode, max_batch=32)
        if row:
            pct, p99 = row["% of reachable"], row["p99 ms"]
            found.append(
                [
                    f"batching {mode}, 20 ms model, c=64: >= {goal:g} % of limit",
                    f"{fmt(pct)} %",
                    _verdict(pct is not None and pct >= goal),
                ]
            )
            found.append(
                [
                    f"batching {mode}: p99 < 100 ms",
                    f"{fmt(p99)} ms",
                    _verdict(p99 is not None and p99 < 100),
                ]
            )
    cold = results.get("coldstart", {})
    if "median_s" in cold:
        found.append(
            [
                "cold start of graphctl serve < 2 s",
                f"{cold['median_s']:.2f} s",
                _verdict(cold["median_s"] < cold.get("target_s", 2.0)),
            ]
        )
    memory = results.get("memory", {})
    if "idle_total_mib" in memory:
        found.append(
            [
                "idle server + workers < 200 MiB (PSS)",
                f"{memory['idle_total_mib']:.0f} MiB",
                _verdict(memory["idle_total_mib"] < memory.get("target_mib", 200.0)),
            ]
        )
    return found


def _verdict(met: bool) -> str:
    return "met" if met else "missed"


def render(results: Mapping[str, Mapping[str, Any]], plots: Sequence[Path]) -> str:
    info = machine()
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`python -m bench`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Regenerate with the same "
        f"command; `{DURATION_ENV}` / `{WARMUP_ENV}` (seconds) lengthen every point. "
        "Every figure below was measured in one run on this machine, each against a "
        "baseline measured in the same run. See docs/bench.md for what each figure means.",
        "",
        f"Machine: {info['cores']} cores ({info['processor']}), Python {info['python']}, "
        f"numpy {info['numpy']}, {info['platform']}.",
        "",
    ]
    goal_rows = targets(results)
    if goal_rows:
        lines += ["## Targets", ""]
        lines += [*markdown_table(["target", "measured", "verdict"], goal_rows), ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    lines += ["## Figures", ""]
    for name, result in results.items():
        lines += section(name, result)
    for log in sorted(RESULTS_DIR.glob("*.log")):
        if log.stem not in results:
            lines += log_section(log.stem, log)
    lines += suite_section()
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    results = load_results()
    PLOTS_DIR.mkdir(exist_ok=True)
    plots = [
        p
        for p in (
            plot_throughput(results.get("load"), PLOTS_DIR / "throughput_p99_vs_concurrency.png"),
            plot_batch_size(
                results.get("load"), results.get("batching"), PLOTS_DIR / "batch_size_vs_load.png"
            ),
        )
        if p is not None
    ]
    RESULTS_MD.write_text(render(results, plots), encoding="utf-8")
    print(f"wrote {RESULTS_MD.relative_to(BENCH_DIR.parent)} and {len(plots)} plot(s)")


if __name__ == "__main__":
    main()
