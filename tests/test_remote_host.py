"""``graphctl worker`` as a peer sees it: handshakes that must fail fail with a
refusal, garbage and oversized frames close only their own connection, the worker
keeps serving, a busy worker's refusals are sent elsewhere, TLS works, and each
batch carries its calls' request ids and trace parents as a worker process does."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import orchestrator
from runners import call_context, codec, log_context
from runners.remote import protocol
from tests._otlp_receiver import otlp_receiver
from tests._remote_helpers import (
    FAST,
    REMOTE_GRAPH,
    REMOTE_GRAPHS,
    TOKEN,
    RawClient,
    WorkerProcess,
    endpoints_set,
)
from tests._serve_helpers import CLI, ROOT
from tests.conftest import run, wait_until

SPEC = protocol.spec_hash({"runnable": "remote_kit:Doubler", "init": {"delay_ms": 5}})


def _still_serves(port: int, *, tls_ca: str | None = None) -> dict[str, float]:
    """One request through a real orchestrator, with the right token."""
    sets = [endpoints_set([port]), *FAST]
    if tls_ca is not None:
        sets.append(f"runners.doubler.remote.tls_ca={tls_ca}")

    async def once() -> dict[str, float]:
        async with orchestrator.load(REMOTE_GRAPH, sets=sets) as graph:
            return await graph.run({"x": 21})

    return run(once(), timeout_s=30)


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(protocol.TOKEN_ENV, TOKEN)


@pytest.mark.usefixtures("token_env")
def test_bad_handshakes_are_refused_and_the_worker_keeps_serving() -> None:
    with WorkerProcess() as worker:
        with RawClient(worker.port) as other_version:
            other_version.send(["hello", protocol.PROTOCOL_VERSION + 1, SPEC, protocol.new_nonce()])
            cause, message = other_version.receive()[1:]
            assert cause == protocol.VERSION and "version 2" in message
        with RawClient(worker.port) as wrong_token:
            answer = wrong_token.authenticate("wrong", SPEC)
            assert answer[:2] == ["refused", protocol.TOKEN]
            assert wrong_token.closed_by_worker()
        with RawClient(worker.port) as other_spec:
            answer = other_spec.authenticate(TOKEN, "0123456789abcdef")
            assert answer[:2] == ["refused", protocol.SPEC]
            assert "remote_kit:Doubler" in answer[2] and "0123456789abcdef" in answer[2]
        with RawClient(worker.port) as garbage:
            garbage.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
            assert garbage.closed_by_worker()
        with RawClient(worker.port) as call_first:  # no call before the handshake
            call_first.send(["call", 1, "double", [[1.0]], {}, []])
            assert call_first.closed_by_worker()
        assert _still_serves(worker.port)["y"] == 42.0
        assert "refused orchestrator" in worker.output


@pytest.mark.usefixtures("token_env")
def test_oversized_frames_are_refused_before_and_after_the_handshake() -> None:
    with WorkerProcess("--max-frame-mb", "1") as worker:
        with RawClient(worker.port) as early:  # declares 1 GiB before proving anything
            early.sock.sendall(codec.PREFIX.pack(1 << 30, 0))
            assert early.closed_by_worker()
        with RawClient(worker.port) as late:
            assert late.authenticate(TOKEN, SPEC)[0] == "welcome"
            late.sock.sendall(struct.pack("<IIQ", 16, 1, 2 << 20) + bytes(16))  # 2 MiB declared
            assert late.closed_by_worker()
        with RawClient(worker.port) as fine:
            assert fine.authenticate(TOKEN, SPEC)[0] == "welcome"
            fine.send(["ping", 7])
            assert fine.receive() == ["pong", 7, 0]
        assert _still_serves(worker.port)["y"] == 42.0
        assert "over the limit" in worker.output


@pytest.mark.usefixtures("token_env")
def test_a_busy_worker_refuses_and_no_call_fails(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="runners.remote")
    with WorkerProcess("--max-pending", "1") as worker:

        async def two_orchestrators() -> None:
            sets = [endpoints_set([worker.port]), *FAST]
            async with (
                orchestrator.load(REMOTE_GRAPH, sets=sets) as a,
                orchestrator.load(REMOTE_GRAPH, sets=sets) as b,
            ):
                answers = await asyncio.gather(
                    *(g.run({"x": i}) for i in range(60) for g in (a, b))
                )
                assert [x["y"] for x in answers] == [2.0 * i for i in range(60) for _ in "ab"]

        run(two_orchestrators(), timeout_s=60)
    assert "refused a batch: at capacity" in caplog.text


def test_a_reachable_worker_without_a_token_refuses_to_start() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI,
            "worker",
            str(REMOTE_GRAPH),
            "--runner",
            "doubler",
            "--listen",
            "0.0.0.0:0",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != protocol.TOKEN_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and protocol.TOKEN_ENV in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.usefixtures("token_env")
def test_tls_round_trip(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with WorkerProcess("--tls-cert", str(cert), "--tls-key", str(key)) as worker:
        assert "with TLS" in worker.output
        assert _still_serves(worker.port, tls_ca=str(cert))["y"] == 42.0
        with RawClient(worker.port) as plain:  # a plaintext hello is no TLS handshake
            plain.send(["hello", protocol.PROTOCOL_VERSION, SPEC, protocol.new_nonce()])
            assert plain.closed_by_worker()


FIELDS_GRAPH = REMOTE_GRAPHS / "fields.yaml"
TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"


@pytest.mark.usefixtures("token_env")
def test_a_worker_hosts_batch_carries_its_calls_request_ids_and_trace_ids() -> None:
    async def fields(port: int) -> list[dict[str, object]]:
        sets = [endpoints_set([port], runner="fields")]
        async with orchestrator.load(FIELDS_GRAPH, sets=sets) as graph:
            with log_context.bound(request_id="r1"), call_context.traced(PARENT):
                traced = await graph.run({"x": 1})
            with log_context.bound(request_id="r2"):
                plain = await graph.run({"x": 2})
            untagged = await graph.run({"x": 3})
        return [traced["fields"], plain["fields"], untagged["fields"]]

    with WorkerProcess(graph=FIELDS_GRAPH, runner="fields") as worker:
        traced, plain, untagged = run(fields(worker.port), timeout_s=30)
    host = {"runner": "fields", "worker": f"127.0.0.1:{worker.port}"}
    assert traced == {**host, "request_id": ["r1"], "trace_id": [TRACE]}
    assert plain == {**host, "request_id": ["r2"]}
    assert untagged == host


@pytest.mark.usefixtures("token_env")
def test_a_worker_host_exports_its_batch_span_linked_to_the_node_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with otlp_receiver() as receiver:
        for name, value in {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "graphctl-test",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }.items():
            monkeypatch.setenv(name, value)
        with WorkerProcess(graph=FIELDS_GRAPH, runner="fields") as worker:
            command = [sys.executable, "-c", CLI, "run", str(FIELDS_GRAPH), "--input"]
            command += ['{"x": 1}', "--set", endpoints_set([worker.port], runner="fields")]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
            )
            assert done.returncode == 0, done.stderr
            wait_until(lambda: bool(receiver.named("batch ")), what="the host's batch span")
            pid = worker.process.pid
        wait_until(lambda: bool(receiver.named("node read")), what="the node span")
    (batch,) = receiver.named("batch ")
    (node,) = receiver.named("node read")
    (root,) = receiver.named("graph fields")
    assert batch.name == "batch fields.read"
    assert batch.resource["graphctl.runner"] == "fields"
    assert batch.resource["graphctl.worker.endpoint"] == f"127.0.0.1:{worker.port}"
    assert batch.resource["process.pid"] == pid, "exported by the worker host"
    assert batch.resource["service.name"] == "graphctl-test"
    assert (batch.trace_id, batch.parent_span_id) == (root.trace_id, node.span_id)
    assert [(ln.trace_id, ln.span_id) for ln in batch.links] == [(node.trace_id, node.span_id)]
    assert batch.attributes["graphctl.batch.calls"] == 1


def test_a_second_signal_exits_at_once_while_draining(tmp_path: Path) -> None:
    slow = {"runnable": "remote_kit:Doubler", "init": {"delay_ms": 600_000}}
    shutil.copy(REMOTE_GRAPHS / "remote_kit.py", tmp_path)
    graph = tmp_path / "slow.yaml"
    graph.write_text(
        (REMOTE_GRAPHS / "remote.yaml").read_text().replace("delay_ms: 5", "delay_ms: 600000")
    )
    with WorkerProcess(graph=graph) as worker, RawClient(worker.port) as client:
        assert client.authenticate(TOKEN, protocol.spec_hash(slow))[0] == "welcome"
        client.send(["call", 1, "double", [[1.0]], {}, []])  # held for ten minutes
        client.send(["ping", 1])
        assert client.receive() == ["pong", 1, 1]  # the batch is held
        worker.signal(signal.SIGTERM)
        wait_until(lambda: "draining: 1 batches held" in worker.output, what="the drain")
        assert worker.process.poll() is None  # the first signal waits for the batch
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout_s=10) == 130
    assert "second signal: exiting now" in worker.output
