"""Overload: what a refusal costs the server, and the goodput kept at 4x saturation.

    python -m bench.overload

``graphctl serve`` runs the diamond graph with ``--max-inflight 64``. Closed
loops of raw keep-alive clients measure successful req/s at concurrency 64
(saturation, the baseline) and 256 (4x): clients that wait out ``Retry-After``
before resending (as ``graphctl bench`` and well-behaved clients do), and
clients that resend at once (the worst case, which on a 2-core machine also
spends the load generator's CPU); and the server's CPU per request of a refused ``POST``
(the graph held at its bound by a slow graph) against that of ``GET /livez``
measured in the same run. Each figure is the median of a few short repeats.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench._common import DIAMOND, GRAPHS_DIR, duration_s, ratio, rounded, warmup_s, write_result
from bench._http_clients import RawConnection, cpu_mark
from orchestrator.loadgen import ServeProcess

SATURATION = 64  # the server's --max-inflight, and the concurrency that saturates it
REPEATS = 3
SLOW = GRAPHS_DIR / "batching.yaml"  # 20 ms batches: a bound of 1 in flight stays full


@dataclass(frozen=True)
class Load:
    """One measured closed loop: answers by kind and the server's CPU."""

    ok: int
    refused: int
    seconds: float
    cpu_s: float

    @property
    def goodput(self) -> float:
        return self.ok / self.seconds

    @property
    def cpu_us_per_answer(self) -> float:
        return self.cpu_s * 1e6 / max(1, self.ok + self.refused)


def _post(port: int, path: str, body: object) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def _get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode()


async def closed_loop(
    port: int, raw: bytes, concurrency: int, pid: int, seconds: float, polite: bool = False
) -> Load:
    """``concurrency`` clients resending ``raw`` for ``seconds`` after a warm-up: at once,
    or (``polite``) after a refusal's ``Retry-After``."""
    counts = {"ok": 0, "refused": 0}
    start = time.monotonic() + warmup_s(0.3)
    end = start + seconds
    cpu: list[float] = []

    async def client() -> None:
        connection = await RawConnection.open("127.0.0.1", port)
        try:
            while time.monotonic() < end:
                status = await connection.request(raw)
                if start <= time.monotonic() < end:
                    counts["ok" if status == 200 else "refused"] += 1
                if polite and connection.retry_after_s:
                    await asyncio.sleep(min(connection.retry_after_s, end - time.monotonic()))
        finally:
            connection.close()

    async def marks() -> None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        cpu.append(cpu_mark(pid).served_s)
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        cpu.append(cpu_mark(pid).served_s)

    async with asyncio.timeout(end - time.monotonic() + 60), asyncio.TaskGroup() as group:
        group.create_task(marks())
        for _ in range(concurrency):
            group.create_task(client())
    return Load(counts["ok"], counts["refused"], seconds, cpu[1] - cpu[0])


async def median_of(measure: Callable[[], Awaitable[Load]]) -> tuple[Load, float, float]:
    """The runs of ``measure``: the median run's load, median goodput, median CPU/answer."""
    runs = [await measure() for _ in range(REPEATS)]
    goodput = statistics.median(r.goodput for r in runs)
    cost = statistics.median(r.cpu_us_per_answer for r in runs)
    return runs[len(runs) // 2], goodput, cost


async def main() -> None:
    seconds = duration_s(1.5)
    body = json.loads(DIAMOND.with_name("diamond.input.json").read_text())
    async with ServeProcess(DIAMOND, extra_args=["--max-inflight", str(SATURATION)]) as server:
        raw = _post(server.port, "/diamond", body)
        _, peak, _ = await median_of(
            lambda: closed_loop(server.port, raw, SATURATION, server.pid, seconds)
        )
        over, over_goodput, _ = await median_of(
            lambda: closed_loop(server.port, raw, 4 * SATURATION, server.pid, seconds)
        )
        polite, polite_goodput, _ = await median_of(
            lambda: closed_loop(server.port, raw, 4 * SATURATION, server.pid, seconds, True)
        )
    async with ServeProcess(SLOW, extra_args=["--max-inflight", "1"]) as server:
        refused_raw = _post(server.port, "/batching", {"x": [0.5, 1.0]})
        livez_raw = _get(server.port, "/livez")
        refusals, _, refusal_us = await median_of(
            lambda: closed_loop(server.port, refused_raw, 16, server.pid, seconds)
        )
        _, _, livez_us = await median_of(
            lambda: closed_loop(server.port, livez_raw, 16, server.pid, seconds)
        )
    rows = [
        [f"goodput c={SATURATION} (baseline)", round(peak, 1), 1.0],
        [
            f"goodput c={4 * SATURATION}, clients honour Retry-After",
            round(polite_goodput, 1),
            rounded(ratio(polite_goodput, peak)),
        ],
        [
            f"goodput c={4 * SATURATION}, clients resend at once",
            round(over_goodput, 1),
            rounded(ratio(over_goodput, peak)),
        ],
        ["CPU us per GET /livez (baseline)", round(livez_us, 1), 1.0],
        [
            "CPU us per refused POST (503)",
            round(refusal_us, 1),
            rounded(ratio(refusal_us, livez_us)),
        ],
    ]
    write_result(
        "overload",
        title="Overload: goodput at 4x saturation and the CPU cost of a refusal",
        baseline=f"goodput at concurrency {SATURATION}; CPU of GET /livez, same run",
        headers=["point", "value", "x baseline"],
        rows=rows,
        notes=[
            f"median of {REPEATS} runs of {seconds:g} s",
            f"at c={4 * SATURATION}, median runs: honouring Retry-After {polite.ok} ok,"
            f" {polite.refused} refused; resending at once {over.ok} ok, {over.refused} refused; "
            f"refusal runs: {refusals.refused} refused, {refusals.ok} ok",
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
