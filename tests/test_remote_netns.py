"""Worker hosts on a real network: each ``graphctl worker`` in its own Linux network
namespace (``tests/_netns.py``), reached over a bridge. A link cut mid-load is
detected within the configured timeout and its batches are retried elsewhere;
a ``dns:`` endpoint follows hosts joining and leaving a name served by a small
local resolver (``tests/_dns_server.py``), and keeps them while it fails.

These tests need root (network namespaces); where the machine does not allow
them they fail, saying so."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import orchestrator
from runners.remote import protocol
from tests._dns_server import DnsServer
from tests._netns import Network, require_namespaces
from tests._remote_helpers import REMOTE_GRAPH, TOKEN, WorkerProcess
from tests._serve_helpers import ServeProcess
from tests.conftest import run, until

PORT = 7000  # every host listens on the same port, as pods behind one Service do
HOSTS = ["h1", "h2", "h3"]
DEAD_PEER_TIMEOUT_S = 1.0
REMOTE = {
    "heartbeat_interval_s": 0.2,
    "dead_peer_timeout_s": DEAD_PEER_TIMEOUT_S,
    "connect_timeout_s": 1.0,
    "reconnect_backoff_s": 0.05,
    "reconnect_backoff_cap_s": 0.2,
    "dns_refresh_s": 0.3,
}
MAX_CALLS = 100_000  # a load loop's bound, besides its test's deadline


@pytest.fixture(scope="session")
def _namespaces_allowed() -> None:
    try:
        require_namespaces()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def network(_namespaces_allowed: None) -> Iterator[Network]:
    with Network([*HOSTS, "orch"]) as net:
        yield net


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(protocol.TOKEN_ENV, TOKEN)


def start_workers(network: Network, hosts: list[str]) -> list[WorkerProcess]:
    """``graphctl worker`` on ``PORT`` inside each host, started together."""
    workers = [
        WorkerProcess(
            "--log-level",
            "warning",
            host=network.address(host),
            port=PORT,
            prefix=network.exec(host),
            wait=False,
        )
        for host in hosts
    ]
    try:
        for worker in workers:
            worker.wait_listening()
    except BaseException:
        for worker in workers:
            worker.close()
        raise
    return workers


class LoadLoop:
    """``concurrency`` callers calling ``call(x)`` for x = 0, 1, 2, ... until
    ``stop()``; every answer or error is kept, in the order they came."""

    def __init__(self, call: Callable[[int], Awaitable[Any]], concurrency: int) -> None:
        self.results: list[tuple[int, Any]] = []
        self._call = call
        self._concurrency = concurrency
        self._stop = asyncio.Event()
        self._next = 0

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
                group.create_task(self._caller())

    async def _caller(self) -> None:
        while not self._stop.is_set() and self._next < MAX_CALLS:
            x, self._next = self._next, self._next + 1
            try:
                result = await self._call(x)
            except Exception as error:  # the tests count failures, whatever they are
                result = error
            self.results.append((x, result))

    def stop(self) -> None:
        self._stop.set()

    def pids(self, since: int = 0) -> list[int]:
        """The worker process of each answer from the ``since``-th on."""
        return [r["pid"] for _, r in self.results[since:] if isinstance(r, dict)]

    def check(self) -> None:
        """No call failed and every answer is its input doubled."""
        assert len(self.results) < MAX_CALLS, "the load loop ran out before the test ended"
        failed = [(x, r) for x, r in self.results if not isinstance(r, dict)]
        assert failed == []
        assert all(r["y"] == 2.0 * x for x, r in self.results)


def test_a_cut_link_is_detected_within_the_timeout_and_its_batches_retried(
    network: Network,
) -> None:
    workers = start_workers(network, HOSTS)
    endpoints = [f"{network.address(host)}:{PORT}" for host in HOSTS]
    sets = [f"runners.doubler.endpoints={json.dumps(endpoints)}"]
    sets += [f"runners.doubler.remote.{key}={value}" for key, value in REMOTE.items()]
    graph = orchestrator.load(REMOTE_GRAPH, sets=sets)

    def victim() -> Any:
        return graph.stats()["doubler"].endpoints[0]

    held: list[int] = []  # the victim's unanswered items, at each look until it is dropped

    def dropped() -> bool:
        stats = victim()
        held.append(stats.in_flight)
        return not stats.connected

    async def scenario() -> tuple[LoadLoop, float]:
        load = LoadLoop(lambda x: graph.run({"x": x}), concurrency=24)
        async with graph, asyncio.TaskGroup() as group:
            group.create_task(load.run())
            await until(lambda: all(e.batches >= 3 for e in graph.stats()["doubler"].endpoints))
            loop = asyncio.get_running_loop()
            network.link_down("h1")
            cut = loop.time()
            await until(dropped)
            detected_s = loop.time() - cut
            assert held[-2] > 0  # unanswered a whole timeout after the cut: lost with the link
            after_cut = len(load.results)
            await until(lambda: len(load.results) >= after_cut + 200)  # the others serve
            network.link_up("h1")
            await until(lambda: victim().connected and victim().batches >= 3)
            assert victim().failures >= 1 and victim().reconnects >= 1
            load.stop()
        return load, detected_s

    try:
        load, detected_s = run(scenario(), timeout_s=60)
    finally:
        network.link_up("h1")
        for worker in workers:
            worker.close()
    load.check()
    assert DEAD_PEER_TIMEOUT_S * 0.9 <= detected_s < 3 * DEAD_PEER_TIMEOUT_S, detected_s
    assert workers[0].process.pid in load.pids(len(load.results) - 50)  # used again


def _listed_endpoints(url: str) -> set[str]:
    """The worker hosts ``/metrics`` lists for the runner."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return set(re.findall(r'graphctl_endpoint_up\{[^}]*endpoint="([^"]+)"', text))


def test_a_dns_endpoint_follows_hosts_joining_and_leaving(network: Network, tmp_path: Path) -> None:
    name = "workers.test"
    config = tmp_path / "hosts.yaml"
    config.write_text(
        json.dumps(
            {"runners": {"doubler": {"endpoints": [f"dns:{name}:{PORT}"], "remote": REMOTE}}}
        )
    )
    h1, h2 = network.address("h1"), network.address("h2")
    network.use_nameserver("orch", network.gateway)
    with DnsServer(network.gateway) as dns:
        dns.set(name, [h1])
        first, second = start_workers(network, ["h1", "h2"])
        server = ServeProcess(
            [str(REMOTE_GRAPH), "--config", str(config), "--log-level", "warning"],
            env={protocol.TOKEN_ENV: TOKEN},
            host=network.address("orch"),
            prefix=network.exec("orch"),
        )
        try:
            server.wait_ready()
            assert _listed_endpoints(server.url) == {f"{h1}:{PORT}"}

            async def scenario() -> tuple[LoadLoop, int]:
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

                    async def call(x: int) -> Any:
                        response = await client.post("/remote", json={"x": x})
                        response.raise_for_status()
                        return response.json()

                    load = LoadLoop(call, concurrency=8)
                    async with asyncio.TaskGroup() as group:
                        group.create_task(load.run())
                        await until(lambda: len(load.results) >= 20)
                        assert set(load.pids()) == {first.process.pid}
                        joined = len(load.results)
                        dns.set(name, [h1, h2])  # a host joins: it gets batches
                        await until(lambda: second.process.pid in load.pids(joined))
                        dns.failing = True  # a resolver in trouble retires no host
                        asked = dns.queries
                        await until(lambda: dns.queries >= asked + 6)  # a few refreshes
                        assert _listed_endpoints(server.url) == {f"{h1}:{PORT}", f"{h2}:{PORT}"}
                        dns.failing = False
                        dns.set(name, [h2])  # a host leaves: out of the name, then stopped
                        await until(lambda: _listed_endpoints(server.url) == {f"{h2}:{PORT}"})
                        first.signal(signal.SIGTERM)  # as a pod removed from its Service
                        await until(lambda: first.process.poll() is not None)
                        left = len(load.results)
                        await until(lambda: len(load.results) >= left + 100)
                        load.stop()
                return load, left

            load, left = run(scenario(), timeout_s=60)
            assert first.wait() == 0
            assert _listed_endpoints(server.url) == {f"{h2}:{PORT}"}
        finally:
            server.close()
            first.close()
            second.close()
    load.check()
    assert set(load.pids(left)) == {second.process.pid}
