"""Cold start: from launching ``graphctl serve graphs/diamond.yaml`` to its first
correct answer (a ``POST /diamond`` whose output matches the same maths done
here), median of three launches. The first ``/readyz`` 200 on the way is shown
too: readiness alone would hide whatever the first request still pays.

Baseline: a bare interpreter importing the libraries any Python model server
imports (numpy, fastapi, uvicorn, httpx), in the same run.

    python -m bench.coldstart
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import httpx
import numpy as np

from bench._common import DIAMOND, ratio, write_result
from bench._procs import BASELINE_IMPORTS, baseline_start_s
from bench.inline_app import DiamondMaths
from orchestrator.loadgen import ServeProcess

REPEATS = 3
INPUTS = json.loads(DIAMOND.with_name("diamond.input.json").read_text())


async def launch_to_answer(expected: list[float]) -> tuple[float, float]:
    """(seconds to the first /readyz 200, seconds to the first correct answer),
    both from the launch."""
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        launched = time.monotonic()
        async with ServeProcess(DIAMOND) as server:
            response = await client.post(f"{server.url}/diamond", json=INPUTS)
            answered = time.monotonic() - launched
    assert server.ready_after_s is not None
    _check(response, expected)
    return server.ready_after_s, answered


def _check(response: httpx.Response, expected: list[float]) -> None:
    """Exit with the answer when it is not the diamond's."""
    body: Any = response.json() if response.status_code == 200 else None
    found = body.get("y") if isinstance(body, dict) else None
    if found is None or not np.allclose(found, expected, rtol=1e-4, atol=1e-6):
        raise SystemExit(f"wrong first answer: HTTP {response.status_code} {response.text[:300]}")


def main() -> None:
    expected = DiamondMaths()(INPUTS["x"])
    launches = [asyncio.run(launch_to_answer(expected)) for _ in range(REPEATS)]
    ready = [r for r, _ in launches]
    answer = [a for _, a in launches]
    median = statistics.median(answer)
    base = baseline_start_s(REPEATS)
    rows = [
        [
            "graphctl serve diamond -> first correct answer",
            round(median, 3),
            round(min(answer), 3),
            round(max(answer), 3),
            round(ratio(median, base) or 0.0, 1),
        ],
        [
            "graphctl serve diamond -> /readyz 200",
            round(statistics.median(ready), 3),
            round(min(ready), 3),
            round(max(ready), 3),
            round(ratio(statistics.median(ready), base) or 0.0, 1),
        ],
        ["baseline: python -c 'import ...'", round(base, 3), None, None, 1.0],
    ]
    write_result(
        "coldstart",
        title=f"Cold start of graphctl serve graphs/diamond.yaml (median of {REPEATS})",
        baseline=f"python -c '{BASELINE_IMPORTS}' (the imports alone)",
        headers=["what", "median s", "min s", "max s", "x baseline"],
        rows=rows,
        extra={
            "median_s": median,
            "ready_median_s": statistics.median(ready),
            "baseline_s": base,
        },
    )


if __name__ == "__main__":
    main()
