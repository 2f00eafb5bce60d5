"""A runner with ``endpoints`` against real ``graphctl worker`` processes on loopback:
the same answers as local workers, no request lost when a host dies or drains, a
host restarted on its port used again, configuration errors raised at once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

import orchestrator
from runners.errors import RunnerStartupError, WorkerRefused
from runners.remote import protocol
from tests._remote_helpers import (
    FAST,
    REMOTE_GRAPH,
    REMOTE_GRAPHS,
    TOKEN,
    WorkerProcess,
    endpoints_set,
    kill,
)
from tests._serve_helpers import ServeProcess, free_port, metric_value
from tests.conftest import run, until, wait_until


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(protocol.TOKEN_ENV, TOKEN)


def _remote_graph(ports: list[int], *more: str) -> orchestrator.Graph:
    return orchestrator.load(REMOTE_GRAPH, sets=[endpoints_set(ports), *FAST, *more])


async def _load(graph: orchestrator.Graph, count: int, concurrency: int) -> list[Any]:
    """``count`` requests, ``concurrency`` at a time; every answer or error, in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with gate:
            try:
                return await graph.run({"x": i})
            except Exception as error:  # the tests count failures, whatever they are
                return error

    return await asyncio.gather(*(one(i) for i in range(count)))


def _connected(graph: orchestrator.Graph) -> int:
    return sum(e.connected for e in graph.stats()["doubler"].endpoints)


def test_worker_hosts_answer_as_local_workers_do() -> None:
    async def answers(graph: orchestrator.Graph) -> list[Any]:
        async with graph:
            return [await graph.run({"x": x}) for x in (0, 1.5, -3, 10**6)]

    with WorkerProcess() as host:
        remote = run(answers(_remote_graph([host.port])))
        served_by = {answer["pid"] for answer in remote}
        assert served_by == {host.process.pid}
    local = run(answers(orchestrator.load(REMOTE_GRAPH)))
    assert [a["y"] for a in remote] == [a["y"] for a in local] == [0.0, 3.0, -6.0, 2e6]


def test_batches_go_to_every_host_and_stay_batched() -> None:
    with WorkerProcess() as a, WorkerProcess() as b:

        async def scenario() -> None:
            async with _remote_graph([a.port, b.port]) as graph:
                answers = await _load(graph, 200, 40)
                assert not [x for x in answers if isinstance(x, Exception)]
                assert {x["pid"] for x in answers} == {a.process.pid, b.process.pid}
                stats = graph.stats()["doubler"]
                assert sum(e.batches for e in stats.endpoints) < 100  # batches of several
                assert all(e.batches > 0 for e in stats.endpoints)

        run(scenario())


def test_a_host_killed_under_load_loses_no_request() -> None:
    hosts = [WorkerProcess("--log-level", "warning") for _ in range(3)]
    try:

        async def scenario() -> None:
            async with _remote_graph([h.port for h in hosts]) as graph:
                load = asyncio.ensure_future(_load(graph, 600, 48))
                await until(lambda: graph.stats()["doubler"].endpoints[0].batches >= 5)
                kill(hosts[0])
                answers = await load
                assert [x for x in answers if isinstance(x, Exception)] == []
                assert [x["y"] for x in answers] == [2.0 * i for i in range(600)]
                victim = graph.stats()["doubler"].endpoints[0]
                assert victim.failures >= 1 and not victim.connected
                assert graph.ready  # two hosts left

        run(scenario())
    finally:
        for host in hosts:
            host.close()


def test_a_draining_host_finishes_its_batches_and_fails_nothing() -> None:
    with WorkerProcess() as a, WorkerProcess() as b:

        async def scenario() -> None:
            async with _remote_graph([a.port, b.port]) as graph:
                load = asyncio.ensure_future(_load(graph, 400, 32))
                await until(lambda: graph.stats()["doubler"].endpoints[0].batches >= 5)
                a.signal(signal.SIGTERM)
                answers = await load
                assert [x for x in answers if isinstance(x, Exception)] == []
                assert a.wait() == 0
                assert "drained and stopped" in a.output
                after = await graph.run({"x": 4})
                assert after["pid"] == b.process.pid

        run(scenario())


def test_a_host_restarted_on_its_port_is_used_again() -> None:
    first = WorkerProcess()
    port = first.port
    try:

        async def scenario() -> None:
            async with _remote_graph([port]) as graph:
                assert (await graph.run({"x": 1}))["pid"] == first.process.pid
                kill(first)
                await until(lambda: not graph.ready)
                with WorkerProcess(port=port) as second:
                    await until(lambda: graph.ready)
                    assert (await graph.run({"x": 2}))["pid"] == second.process.pid
                    assert graph.stats()["doubler"].endpoints[0].reconnects == 1

        run(scenario())
    finally:
        first.close()


def test_a_wrong_token_fails_at_once_naming_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(protocol.TOKEN_ENV, "not-the-token")
    with WorkerProcess() as host:
        with pytest.raises(WorkerRefused) as raised:
            run(_remote_graph([host.port]).__aenter__(), timeout_s=10)
        assert f"127.0.0.1:{host.port}" in str(raised.value)
        assert "GRAPHCTL_WORKER_TOKEN" in str(raised.value)


def test_a_runner_spec_mismatch_fails_naming_both() -> None:
    with WorkerProcess(graph=REMOTE_GRAPHS / "offset.yaml") as host:
        with pytest.raises(WorkerRefused) as raised:
            run(_remote_graph([host.port]).__aenter__(), timeout_s=10)
        message = str(raised.value)
        assert "runner spec" in message and f"127.0.0.1:{host.port}" in message
        assert '"offset": 1' in message  # the worker's spec, and the orchestrator's hash
        ours = protocol.spec_hash({"runnable": "remote_kit:Doubler", "init": {"delay_ms": 5}})
        assert ours in message
        assert "listening on" in host.output and host.process.poll() is None


def test_another_protocol_version_fails_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    with WorkerProcess() as host:
        monkeypatch.setattr(protocol, "PROTOCOL_VERSION", protocol.PROTOCOL_VERSION + 1)
        with pytest.raises(WorkerRefused) as raised:
            run(_remote_graph([host.port]).__aenter__(), timeout_s=10)
        message = str(raised.value)
        assert f"protocol version {protocol.PROTOCOL_VERSION - 1}" in message
        assert f"version {protocol.PROTOCOL_VERSION}" in message


def test_no_reachable_host_fails_after_the_startup_timeout() -> None:
    port = free_port()  # nothing listens there
    graph = orchestrator.load(
        REMOTE_GRAPHS / "unreachable.yaml", sets=[endpoints_set([port]), *FAST]
    )
    with pytest.raises(RunnerStartupError, match="no worker host answered") as raised:
        run(graph.__aenter__(), timeout_s=20)
    assert f"127.0.0.1:{port}" in str(raised.value)


def test_serve_readiness_and_metrics_follow_the_hosts() -> None:
    with WorkerProcess() as host:
        args = [str(REMOTE_GRAPH), "--set", endpoints_set([host.port]), *_sets(FAST)]
        with ServeProcess(args, env={protocol.TOKEN_ENV: TOKEN}) as server:
            server.wait_ready()
            answer = httpx.post(f"{server.url}/remote", json={"x": 3}, timeout=30).json()
            assert answer["pid"] == host.process.pid
            labels = {"runner": "doubler", "endpoint": f"127.0.0.1:{host.port}"}
            assert metric_value(server.url, "graphctl_endpoint_up", **labels) == 1
            assert metric_value(server.url, "graphctl_endpoint_batches_total", **labels) == 1
            assert metric_value(server.url, "graphctl_runner_load_items", runner="doubler") == 0
            kill(host)
            wait_until(lambda: httpx.get(f"{server.url}/readyz").status_code == 503)
            assert f"127.0.0.1:{host.port}" in httpx.get(f"{server.url}/readyz").text
            assert httpx.get(f"{server.url}/livez").status_code == 200
            assert metric_value(server.url, "graphctl_endpoint_up", **labels) == 0
            assert metric_value(server.url, "graphctl_endpoint_failures_total", **labels) >= 1


def _sets(values: list[str]) -> list[str]:
    return [part for value in values for part in ("--set", value)]


def test_a_dns_endpoint_connects_to_the_addresses_its_name_resolves_to() -> None:
    with WorkerProcess() as host:

        async def scenario() -> None:
            sets = [f'runners.doubler.endpoints=["dns:localhost:{host.port}"]', *FAST]
            async with orchestrator.load(REMOTE_GRAPH, sets=sets) as graph:
                assert (await graph.run({"x": 5}))["pid"] == host.process.pid
                endpoints = graph.stats()["doubler"].endpoints
                up = [e.endpoint for e in endpoints if e.connected]
                assert up == [f"127.0.0.1:{host.port}"]  # ::1, if resolved, has no listener

        run(scenario())


def test_a_silent_host_is_taken_for_dead_and_its_batch_retried() -> None:
    with WorkerProcess() as a, WorkerProcess() as b:

        async def scenario() -> None:
            async with _remote_graph([a.port, b.port]) as graph:
                load = asyncio.ensure_future(_load(graph, 400, 32))
                await until(lambda: graph.stats()["doubler"].endpoints[0].batches >= 5)
                a.signal(signal.SIGSTOP)  # open sockets, no answers: a frozen host
                stopped = asyncio.get_running_loop().time()
                await until(lambda: not graph.stats()["doubler"].endpoints[0].connected)
                noticed_s = asyncio.get_running_loop().time() - stopped
                answers = await load
                assert [x for x in answers if isinstance(x, Exception)] == []
                assert noticed_s < 2.0 + 1.0  # dead_peer_timeout_s=2, heartbeat 0.2 s

        try:
            run(scenario())
        finally:
            a.signal(signal.SIGCONT)


def test_an_unreadable_tls_ca_fails_at_once_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    graph = orchestrator.load(
        REMOTE_GRAPHS / "unreachable.yaml",
        sets=[endpoints_set([free_port()]), *FAST, f"runners.doubler.remote.tls_ca={missing}"],
    )
    with pytest.raises(RunnerStartupError, match=f"remote.tls_ca {missing}") as raised:
        run(graph.__aenter__(), timeout_s=20)
    assert "no worker host answered" not in str(raised.value)
