"""Cold start: from launching ``graphctl serve graphs/diamond.yaml`` to the first
``/readyz`` 200 (every pool has a ready worker), median of three launches.

Baseline: a bare interpreter importing the libraries any Python model server
imports (numpy, fastapi, uvicorn, httpx), in the same run. Target: < 2 s.

    python -m bench.coldstart
"""

from __future__ import annotations

import asyncio
import statistics

from bench._common import DIAMOND, ratio, write_result
from bench._procs import BASELINE_IMPORTS, baseline_start_s
from orchestrator.loadgen import ServeProcess

REPEATS = 3
TARGET_S = 2.0


async def launch_to_ready() -> float:
    async with ServeProcess(DIAMOND) as server:
        assert server.ready_after_s is not None
        return server.ready_after_s


def main() -> None:
    launches = [asyncio.run(launch_to_ready()) for _ in range(REPEATS)]
    median = statistics.median(launches)
    base = baseline_start_s(REPEATS)
    rows = [
        [
            "graphctl serve diamond -> /readyz",
            round(median, 3),
            round(min(launches), 3),
            round(max(launches), 3),
            round(ratio(median, base) or 0.0, 1),
        ],
        ["baseline: python -c 'import ...'", round(base, 3), None, None, 1.0],
    ]
    write_result(
        "coldstart",
        title=f"Cold start of graphctl serve graphs/diamond.yaml (median of {REPEATS})",
        baseline=f"python -c '{BASELINE_IMPORTS}' (the imports alone)",
        headers=["what", "median s", "min s", "max s", "x baseline"],
        rows=rows,
        notes=[f"target: < {TARGET_S:g} s; {'met' if median < TARGET_S else 'missed'}"],
        extra={"median_s": median, "baseline_s": base, "target_s": TARGET_S},
    )


if __name__ == "__main__":
    main()
