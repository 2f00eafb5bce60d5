"""HTTP end to end: ``graphctl serve`` against a plain FastAPI app doing the same maths.

    python -m bench.http

The diamond graph at concurrency 1, 16 and 64, and the 20 ms-per-batch model at
64, each over loopback HTTP from a closed loop of N users; the inline app
(``bench/inline_app.py``) is the floor for HTTP overhead.

The comparison is kept fair: both servers are uvicorn subprocesses on the same
event loop (uvloop where installed), both with access logs off (graphctl
``--no-access-log``, uvicorn ``--no-access-log``; what graphctl's access line
costs is measured by ``bench/request_log.py``). Both run at once and are
measured in turn at each level, so a shared machine's drift falls on both alike.
CPU per request is reported for the server process alone, for its workers (its
child processes) and for the load generator (this process). The headline client
is a raw keep-alive client that costs little; the diamond at 64 is also measured
with aiohttp's client, a second client whose own cost is shown beside its figures.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    DIAMOND,
    GRAPHS_DIR,
    REPO_DIR,
    duration_s,
    ratio,
    rounded,
    warmup_s,
    write_result,
)
from bench._http_clients import Client, Point, RawClient, aiohttp_client, closed_loop
from orchestrator.loadgen import ServeProcess, free_port

CONCURRENCY = (1, 16, 64)
AIOHTTP_CONCURRENCY = 64
BATCHING = GRAPHS_DIR / "batching.yaml"
BATCHING_BODY = {"x": [0.5, 1.0, 1.5, 2.0]}
BATCH_MS = 20.0
BATCH_BOUND_RPS = 2 * 32 / (BATCH_MS / 1000)  # workers * max_batch_size / batch time
READY_TIMEOUT_S = 60.0
LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
QUIET = ("--no-access-log", "--loop", LOOP)  # the same for both servers


@dataclass(frozen=True)
class Measured:
    """One point: which workload, client and server, at which concurrency."""

    workload: str
    client: str
    server: str  # "graphctl" or "inline"
    concurrency: int
    point: Point

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "client": self.client,
            "server": self.server,
            "concurrency": self.concurrency,
            **self.point.to_json(),
        }


@asynccontextmanager
async def graphctl_server(graph: Path) -> AsyncIterator[tuple[str, int]]:
    """``graphctl serve GRAPH`` in a child process: (URL, pid)."""
    async with ServeProcess(graph, extra_args=["--max-inflight", "4096", *QUIET]) as server:
        yield server.url, server.pid


@asynccontextmanager
async def inline_server(graph: Path) -> AsyncIterator[tuple[str, int]]:
    """``bench/inline_app.py`` under uvicorn in a child process: (URL, pid)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "bench.inline_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *QUIET,
        cwd=REPO_DIR,
        stdin=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(url, process)
        yield url, process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            async with asyncio.timeout(30):
                await process.wait()


async def _wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with (
        httpx.AsyncClient(timeout=2, trust_env=False) as client,
        asyncio.timeout(READY_TIMEOUT_S),
    ):
        while True:
            if process.returncode is not None:
                raise SystemExit(f"the inline app exited with code {process.returncode}")
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


async def _point(client: Client, level: int, pid: int, server: str) -> Point:
    point = await closed_loop(client, level, pid, warmup_s=warmup_s(), duration_s=duration_s())
    print(f"  {server} {client.name} c={level}: {point.rps:.0f} req/s", flush=True)
    return point


async def measure(
    workload: str, body: dict[str, Any], levels: Sequence[int], aiohttp_levels: Sequence[int]
) -> list[Measured]:
    """Both servers up at once, measured in turn at each level (the raw client at
    ``levels``, then aiohttp's at its levels), so drift on a shared machine hits both."""
    graph = DIAMOND if workload == "diamond" else BATCHING
    found: list[Measured] = []
    async with graphctl_server(graph) as ours, inline_server(graph) as inline:
        servers = {"graphctl": ours, "inline": inline}
        print(workload, flush=True)
        for level in levels:
            for name, (url, pid) in servers.items():
                point = await _point(RawClient(f"{url}/{workload}", body), level, pid, name)
                found.append(Measured(workload, "raw", name, level, point))
        for level in aiohttp_levels:
            for name, (url, pid) in servers.items():
                async with aiohttp_client(f"{url}/{workload}", body) as client:
                    point = await _point(client, level, pid, name)
                found.append(Measured(workload, client.name, name, level, point))
    return found


def rows(points: Sequence[Measured]) -> list[list[Any]]:
    """A row per point, graphctl's beside the inline app's at the same load."""
    inline = {(m.workload, m.client, m.concurrency): m for m in points if m.server == "inline"}
    ordered = sorted(
        points,
        key=lambda m: (m.workload != "diamond", m.client != "raw", m.concurrency, m.server),
    )
    found = []
    for m in ordered:
        base, p = inline[m.workload, m.client, m.concurrency].point, m.point
        found.append(
            [
                f"{m.workload} c={m.concurrency} {m.server}",
                m.client,
                round(p.rps, 1),
                round(p.p50_ms, 2),
                round(p.p99_ms, 2),
                p.errors,
                round(p.server_cpu_us, 1),
                round(p.workers_cpu_us, 1),
                round(p.client_cpu_us, 1),
                rounded(ratio(p.rps, base.rps)),
                rounded(ratio(p.total_cpu_us, base.total_cpu_us)),
            ]
        )
    return found


async def main(diamond_body: dict[str, Any]) -> None:
    diamond = await measure("diamond", diamond_body, CONCURRENCY, (AIOHTTP_CONCURRENCY,))
    batching = await measure("batching", BATCHING_BODY, (64,), ())
    batch_rps = next(m.point.rps for m in batching if m.server == "graphctl")
    write_result(
        "http",
        title="HTTP end to end: graphctl serve vs a plain FastAPI app doing the maths inline",
        baseline=(
            f"bench/inline_app.py under uvicorn (same {LOOP} loop, access logs off on both, "
            "one process, no batching), same client and load"
        ),
        headers=[
            "point",
            "client",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "server CPU us/req",
            "workers CPU us/req",
            "client CPU us/req",
            "x inline req/s",
            "x inline CPU",
        ],
        rows=rows([*diamond, *batching]),
        notes=[
            f"batching: graphctl reaches {batch_rps:.0f} req/s = "
            f"{batch_rps / BATCH_BOUND_RPS:.0%} of workers*max_batch_size/20ms "
            f"({BATCH_BOUND_RPS:.0f} req/s)",
            "server CPU: the server process alone; workers CPU: its child processes "
            "(graphctl's worker pools; none for the inline app); x inline CPU compares "
            "server + workers",
            "client CPU: the load generator (this process, time.process_time), on the same "
            "cores; raw: prebuilt requests on keep-alive sockets; aiohttp: its ClientSession",
        ],
        extra={"points": [m.to_json() for m in [*diamond, *batching]], "loop": LOOP},
    )


if __name__ == "__main__":
    asyncio.run(main(json.loads(DIAMOND.with_name("diamond.input.json").read_text())))
