"""Real servers for the serving tests: uvicorn in a thread, or ``graphctl serve`` as a
child process, each on a free loopback port and bounded in time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
SERVE_GRAPHS = ROOT / "tests" / "graphs" / "serve"
DIAMOND = ROOT / "graphs" / "diamond.yaml"
START_TIMEOUT_S = 60.0
CLI = "import sys; from orchestrator.cli import main; sys.exit(main())"
SSE = {"accept": "text/event-stream"}  # ask a graph route for server-sent events


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


@contextlib.contextmanager
def thread_server(app: FastAPI, *, wait_ready: bool = True) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: server.started or not thread.is_alive(), what="uvicorn to start")
        assert server.started, "uvicorn failed to start"
        if wait_ready:
            wait_until(lambda: _status(f"{url}/readyz") == 200, what="/readyz 200")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not stop"


def metric_value(url: str, sample: str, **labels: str) -> float:
    """The sum of ``/metrics`` samples named ``sample`` whose labels include ``labels``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        value.value
        for family in text_string_to_metric_families(text)
        for value in family.samples
        if value.name == sample and labels.items() <= value.labels.items()
    )


def open_post(url: str, path: str, body: Mapping[str, object]) -> socket.socket:
    """Send ``POST path`` with a JSON body on a raw connection left open; closing the
    socket is a client that disconnects before its answer."""
    port = int(url.rsplit(":", 1)[1])
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode() + data)
    return sock


class ServeProcess:
    """``graphctl serve ARGS`` as a child process on a free port."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        prefix: Sequence[str] = (),  # e.g. `ip netns exec NS`, to run it on another host
    ) -> None:
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        command = [*prefix, sys.executable, "-c", CLI, "serve", *args, "--port", str(self.port)]
        command += ["--host", host]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> None:
        wait_until(
            lambda: self.process.poll() is not None or _status(f"{self.url}/readyz") == 200,
            what="graphctl serve to be ready",
        )
        assert self.process.poll() is None, self.process.communicate()[1]

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout_s: float = 30.0) -> int:
        return self.process.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sse_events(answer: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(kind, data) of each server-sent event of a streamed answer, as it arrives."""
    assert answer.headers["content-type"].startswith("text/event-stream")
    kind = ""
    for line in answer.iter_lines():
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            yield kind, json.loads(line[len("data: ") :])


def timed_events(
    base: str,
    graph: str,
    body: Mapping[str, object],
    *,
    limit: int | None = None,
    timeout_ms: float | None = None,
    started: threading.Event | None = None,
    timeout_s: float = 30.0,
) -> list[tuple[str, Any, float]]:
    """(kind, data, arrival time) of each server-sent event of one ``POST /{graph}``:
    reading stops after ``limit`` events, ``timeout_ms`` is sent as the request's
    deadline and ``started`` is set at the first event."""
    found: list[tuple[str, Any, float]] = []
    deadline = {} if timeout_ms is None else {"x-request-timeout-ms": str(timeout_ms)}
    headers = {**SSE, **deadline}
    url = f"{base}/{graph}"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=timeout_s) as answer:
        for kind, data in sse_events(answer):
            found.append((kind, data, time.monotonic()))
            if started is not None:
                started.set()
            if limit is not None and len(found) >= limit:
                break
    return found
