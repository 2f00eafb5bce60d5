"""``python -m bench`` (``make bench``): every benchmark, each in its own process
with a time limit, then ``bench/report.py`` regenerates ``bench/RESULTS.md`` and
the plots.

    python -m bench                       # the whole suite, under 10 minutes
    python -m bench --duration 10         # longer points (seconds each)
    python -m bench --only batching,load  # some benchmarks only

Each benchmark runs in a fresh process so one's pools, threads and memory never
colour the next one's figures; its output is kept in ``bench/results/NAME.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from bench._common import BENCH_DIR, DURATION_ENV, REPO_DIR, RESULTS_DIR, WARMUP_ENV

# (name, time limit in seconds) in running order: the component benchmarks
# first, then the end-to-end ones. A missing script is reported, not an error.
BENCHMARKS: tuple[tuple[str, float], ...] = (
    ("runners", 90.0),
    ("graph", 90.0),
    ("http", 180.0),  # 10 points of warm-up + duration, 4 server starts
    ("batching", 90.0),
    ("scheduler", 90.0),
    ("load", 120.0),
    ("streaming", 60.0),
    ("memory", 60.0),
    ("coldstart", 60.0),
    ("request_log", 60.0),
    ("stream_metrics", 30.0),
    ("remote", 90.0),
)
DEFAULT_BUDGET_S = 540.0  # leaves the report and set-up inside 10 minutes (limits are caps)
REPORT_LIMIT_S = 60.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, help=f"seconds per point (sets {DURATION_ENV})")
    parser.add_argument("--warmup", type=float, help=f"warm-up seconds (sets {WARMUP_ENV})")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="total seconds")
    parser.add_argument("--no-report", action="store_true", help="do not regenerate RESULTS.md")
    return parser.parse_args(argv)


def run_one(name: str, limit_s: float, env: dict[str, str]) -> dict[str, Any]:
    """Run ``python -m bench.NAME`` in its own process group, bounded by ``limit_s``;
    the whole group is stopped on time-out (a benchmark may have started servers)."""
    script = BENCH_DIR / f"{name}.py"
    if not script.is_file():
        return {"name": name, "status": "missing", "seconds": 0.0}
    log_path = RESULTS_DIR / f"{name}.log"
    started = time.monotonic()
    print(f"== bench.{name} (limit {limit_s:.0f} s)", flush=True)
    with log_path.open("w", encoding="utf-8") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", f"bench.{name}"],
            cwd=REPO_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        status = _wait(child, limit_s)
    seconds = time.monotonic() - started
    print(log_path.read_text(encoding="utf-8", errors="replace").rstrip(), flush=True)
    print(f"== bench.{name}: {status} in {seconds:.1f} s\n", flush=True)
    return {"name": name, "status": status, "seconds": round(seconds, 1), "log": log_path.name}


def _wait(child: subprocess.Popen[bytes], limit_s: float) -> str:
    try:
        code = child.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        _stop_group(child)
        return "timeout"
    return "ok" if code == 0 else f"failed (exit {code})"


def _stop_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the benchmark's process group, SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def write_suite(runs: list[dict[str, Any]], duration: str | None) -> None:
    """Record this run in ``suite.json``; with ``--only`` the other benchmarks'
    entries of the last run are kept, as their result files are."""
    path = RESULTS_DIR / "suite.json"
    earlier: list[dict[str, Any]] = []
    if path.is_file():
        earlier = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
    fresh = {run["name"]: run for run in runs}
    merged = [fresh.pop(run["name"], run) for run in earlier] + list(fresh.values())
    suite = {"runs": merged, "duration_env": duration, "finished": time.time()}
    path.write_text(json.dumps(suite, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(os.environ)
    if args.duration is not None:
        env[DURATION_ENV] = str(args.duration)
    if args.warmup is not None:
        env[WARMUP_ENV] = str(args.warmup)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), env.get("PYTHONPATH")]))
    wanted = set(args.only.split(",")) if args.only else None
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget
    runs: list[dict[str, Any]] = []
    for name, limit in BENCHMARKS:
        if wanted is not None and name not in wanted:
            continue
        remaining = deadline - time.monotonic()
        if remaining < 10:
            runs.append({"name": name, "status": "skipped (suite budget spent)", "seconds": 0.0})
            continue
        runs.append(run_one(name, min(limit, remaining), env))
    write_suite(runs, env.get(DURATION_ENV))
    if not args.no_report:
        subprocess.run(
            [sys.executable, "-m", "bench.report"], cwd=REPO_DIR, env=env, timeout=REPORT_LIMIT_S
        )
    failed = [str(r["name"]) for r in runs if r["status"] not in ("ok", "missing")]
    if failed:
        print(f"benchmarks that did not finish: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
