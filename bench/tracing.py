"""The cost of OpenTelemetry traces per request: ``graphctl serve`` on the diamond
graph with tracing off, and on (every request sampled, spans exported over
OTLP/HTTP to a receiver that discards them), against the same run's off point.

    python -m bench.tracing
    python -m bench.tracing --also-code /path/to/other/checkout   # its "off" too

Tracing off must cost nothing measurable: ``--also-code`` serves the same graph
with another checkout's code (put first on the server's ``PYTHONPATH``), so a
run compares this code's off point with the code before tracing existed. CPU
per request counts the server process and all its workers (their batch spans
included); the receiver runs in this process and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench._common import DIAMOND, duration_s, ratio, rounded, warmup_s, write_result
from bench._http_clients import Point, RawClient, closed_loop
from orchestrator.loadgen import ServeProcess

LEVELS = (1, 16)
OTEL_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT")


class _Discard(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that reads each export and answers 200."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def discarding_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """The server child's environment for one configuration (restored after)."""
    names = {*OTEL_VARIABLES, *values}
    saved = {name: os.environ.get(name) for name in names}
    for name in OTEL_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


async def measure(env: Mapping[str, str], body: dict[str, Any]) -> dict[int, Point]:
    points = {}
    with environment(env):
        async with ServeProcess(DIAMOND, extra_args=["--max-inflight", "4096"]) as server:
            for level in LEVELS:
                points[level] = await closed_loop(
                    RawClient(f"{server.url}/diamond", body),
                    level,
                    server.pid,
                    warmup_s=warmup_s(),
                    duration_s=duration_s(),
                )
    return points


async def main(also_code: str | None) -> None:
    body = json.loads(DIAMOND.with_name("diamond.input.json").read_text())
    with discarding_receiver() as endpoint:
        configurations: dict[str, dict[str, str]] = {"tracing off": {}}
        if also_code:
            configurations["other code, off"] = {"PYTHONPATH": also_code}
        configurations["tracing on"] = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        }
        results = {name: await measure(env, body) for name, env in configurations.items()}
    rows = []
    for name, points in results.items():
        for level, point in points.items():
            base = results["tracing off"][level]
            rows.append(
                [
                    f"diamond c={level} {name}",
                    round(point.rps, 1),
                    f"{point.p50_ms:.3f}",
                    f"{point.p99_ms:.3f}",
                    point.errors,
                    round(point.total_cpu_us),
                    round(point.total_cpu_us - base.total_cpu_us),
                    rounded(ratio(point.rps, base.rps)),
                ]
            )
    write_result(
        "tracing",
        title="OpenTelemetry traces: per-request cost of graphctl serve, off and on",
        baseline="the same run's 'tracing off' point at the same concurrency",
        headers=["point", "req/s", "p50 ms", "p99 ms", "errors", "CPU us/req", "+CPU us", "x off"],
        rows=rows,
        notes=[
            "on: OTEL_TRACES_EXPORTER=otlp, every request sampled, spans exported over "
            "OTLP/HTTP (http/protobuf) to a local receiver that discards them",
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__)
    parser.add_argument("--also-code", metavar="DIR", help="another checkout to measure off")
    asyncio.run(main(parser.parse_args().also_code))
