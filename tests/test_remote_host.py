"""``graphctl worker`` as a peer sees it: handshakes that must fail fail with a
refusal, garbage and oversized frames close only their own connection, the worker
keeps serving, a busy worker's refusals are sent elsewhere, TLS works."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import orchestrator
from runners import codec
from runners.remote import protocol
from tests._remote_helpers import (
    FAST,
    REMOTE_GRAPH,
    TOKEN,
    RawClient,
    WorkerProcess,
    endpoints_set,
)
from tests._serve_helpers import CLI, ROOT
from tests.conftest import run

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
            call_first.send(["call", 1, "double", [[1.0]], {}])
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
