"""Streaming methods served by real ``graphctl worker`` hosts on 127.0.0.1: chunks
come back over TCP as each step ends, concurrent streams share a batch, a caller
that leaves stops its item on the host, a host killed mid-stream fails the items
that had chunks and retries the others on another host (and a graph node does not
retry the first), and the host relays the orchestrator's frames to the streaming
batch they name."""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Sequence
from contextlib import aclosing
from typing import Any

import pytest

import orchestrator
from runners import BatchingConfig, PoolStats, StreamInterrupted, Unavailable, WorkerPool
from runners.config import RemoteConfig, parse_endpoint
from runners.remote import RemoteWorkers, protocol
from runners.replies import PROTOCOL_FAULT
from tests._remote_helpers import REMOTE_GRAPHS, TOKEN, RawClient, WorkerProcess, kill
from tests._serve_helpers import free_port
from tests.conftest import collect, run, runner_config, until, wait_until

STREAMS = REMOTE_GRAPHS / "streams.yaml"
RUNNABLE = "tests.runnables.stream_models:Counter"
INIT = {"step_s": 0.02}  # as in streams.yaml: the spec both ends must agree on
SPEC = protocol.spec_hash({"runnable": RUNNABLE, "init": INIT})
JOINING = "tests.runnables.stream_models:Joining"
JOINING_INIT = {"step_s": 0.05}  # as in joins.yaml
FAST_SETS = {
    "heartbeat_interval_s": 0.2,
    "dead_peer_timeout_s": 2.0,
    "reconnect_backoff_s": 0.05,
    "reconnect_backoff_cap_s": 0.2,
}
FAST = RemoteConfig(**FAST_SETS)


def _host(port: int | None = None) -> WorkerProcess:
    return WorkerProcess(graph=STREAMS, runner="counter", port=port)


def _pool(ports: Sequence[int], runnable: str = RUNNABLE, **batching: Any) -> WorkerPool:
    config = runner_config(
        runnable,
        name="counter",
        init=INIT if runnable == RUNNABLE else JOINING_INIT,
        endpoints=tuple(parse_endpoint(f"127.0.0.1:{port}") for port in ports),
        remote=FAST,
        batching=BatchingConfig(max_batch_size=16, **batching),
    )
    return WorkerPool(config, workers=functools.partial(RemoteWorkers, config, token=TOKEN))


def test_a_stream_over_a_host_arrives_in_order_while_it_runs() -> None:
    async def main() -> tuple[Any, int, list[Any]]:
        async with (
            _pool([host.port]) as pool,
            aclosing(pool.stream("count", (5, 0.05), {})) as chunks,
        ):
            first = await anext(chunks)
            in_flight = pool.stats().methods["count"].in_flight
            return first, in_flight, [chunk async for chunk in chunks]

    with _host() as host:
        first, in_flight, rest = run(main(), timeout_s=30)
    assert (first, in_flight, rest) == (0, 1, [1, 2, 3, 4])  # the first before the end


def test_concurrent_streams_share_a_batch_on_the_host() -> None:
    lengths = [3, 1, 5, 2, 4, 0]

    async def main() -> tuple[list[list[Any]], dict[str, Any]]:
        async with _pool([host.port], max_latency_ms=5000) as pool:
            streams = await asyncio.gather(*(collect(pool, "tokens", n) for n in lengths))
            return list(streams), await pool.call("seen")

    with _host() as host:
        streams, seen = run(main(), timeout_s=30)
    assert streams == [[f"t{i}" for i in range(n)] for n in lengths]
    assert sum(seen["sizes"]) == len(lengths) and max(seen["sizes"]) > 1


def test_a_caller_that_leaves_stops_its_item_on_the_host() -> None:
    async def leave_early(pool: WorkerPool) -> list[Any]:
        async with aclosing(pool.stream("tokens", (100_000,), {})) as chunks:
            return [await anext(chunks), await anext(chunks)]

    async def main() -> tuple[list[Any], list[Any], dict[str, Any]]:
        async with _pool([host.port], max_latency_ms=5000) as pool:
            busy = asyncio.ensure_future(collect(pool, "count", 3, 0.05))
            await until(lambda: pool.stats().methods["count"].in_flight == 1)
            left, stayed = await asyncio.gather(leave_early(pool), collect(pool, "tokens", 6))
            await busy
            return left, stayed, await pool.call("seen")

    with _host() as host:
        left, stayed, seen = run(main(), timeout_s=30)
    assert left == ["t0", "t1"]
    assert stayed == [f"t{i}" for i in range(6)]
    assert seen["sizes"] == [2]
    assert seen["stopped"] == [0]  # the host's method was told, and went on for item 1
    assert seen["closed_at"][0] < 1000  # ended with item 1, not 100 000 steps later


def test_a_host_killed_mid_stream_fails_started_items_and_retries_the_others() -> None:
    spare_port = free_port()
    spares: list[WorkerProcess] = []

    async def main(first: WorkerProcess) -> tuple[list[Any], BaseException, list[Any], Any]:
        async with _pool([first.port, spare_port], max_latency_ms=5000) as pool:
            busy = asyncio.ensure_future(collect(pool, "count", 3, 0.05))
            await until(lambda: pool.stats().methods["count"].in_flight == 1)
            async with aclosing(pool.stream("atokens", (100_000,), {})) as chunks:
                silent = asyncio.ensure_future(collect(pool, "atokens", 0))  # never a chunk
                received = [await anext(chunks)]  # the pair runs as one batch on `first`
                spares.append(await asyncio.to_thread(_host, spare_port))
                await until(lambda: _connected(pool.stats()) == 2)
                kill(first)
                with pytest.raises(StreamInterrupted) as lost:
                    async for chunk in chunks:
                        received.append(chunk)
            await busy
            return received, lost.value, await silent, await pool.call("seen")

    try:
        with _host() as first:
            received, error, retried, seen = run(main(first), timeout_s=60)
    finally:
        for spare in spares:
            spare.close()
    assert received == [f"a{i}" for i in range(len(received))]
    assert isinstance(error, Unavailable) and "died after this stream's first chunks" in str(error)
    assert retried == []  # run again, alone, on the spare host: it had sent nothing
    assert seen["sizes"] == [1]  # the spare's only batch


def test_a_node_does_not_retry_a_stream_whose_chunks_went_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The node has ``retries: 2``: a stream lost after its first chunks must not run
    again (its caller would get them twice), though the error is Unavailable."""
    monkeypatch.setenv(protocol.TOKEN_ENV, TOKEN)
    spare_port = free_port()
    spares: list[WorkerProcess] = []

    async def main(first: WorkerProcess) -> tuple[list[Any], orchestrator.NodeFailed]:
        chunks: list[Any] = []
        endpoints = f'["127.0.0.1:{first.port}", "127.0.0.1:{spare_port}"]'
        fast = [f"runners.counter.remote.{name}={value}" for name, value in FAST_SETS.items()]
        async with orchestrator.load(
            STREAMS, sets=[f"runners.counter.endpoints={endpoints}", *fast]
        ) as graph:
            running = asyncio.ensure_future(
                graph.run({"n": 1000}, on_chunk=lambda _, chunk: chunks.append(chunk))
            )
            await until(lambda: bool(chunks))
            spares.append(await asyncio.to_thread(_host, spare_port))
            await until(lambda: _connected(graph.stats()["counter"]) == 2)
            kill(first)
            with pytest.raises(orchestrator.NodeFailed) as failed:
                await running
            return chunks, failed.value

    try:
        with _host() as first:
            chunks, error = run(main(first), timeout_s=60)
    finally:
        for spare in spares:
            spare.close()
    assert chunks == [f"t{i}" for i in range(len(chunks))]  # none twice
    assert isinstance(error.cause, StreamInterrupted)


def test_a_call_joins_a_stream_running_on_a_host() -> None:
    async def follow(pool: WorkerPool, name: str, n: int, log: list[Any]) -> list[Any]:
        async with aclosing(pool.stream("joining", (n,), {})) as chunks:
            return [log.append((name, chunk)) or chunk async for chunk in chunks]

    async def main() -> tuple[list[Any], list[Any], list[Any], Any]:
        log: list[Any] = []
        async with _pool([host.port], JOINING, max_latency_ms=30_000) as pool:
            first = asyncio.ensure_future(follow(pool, "A", 8, log))
            await until(lambda: bool(log))
            second = await follow(pool, "B", 3, log)
            return log, await first, second, await pool.call("seen")

    with WorkerProcess(graph=REMOTE_GRAPHS / "joins.yaml", runner="joiner") as host:
        log, first, second, seen = run(main(), timeout_s=30)
    assert first == [f"t{i}" for i in range(8)] and second == ["t0", "t1", "t2"]
    assert log.index(("B", "t2")) < log.index(("A", "t7"))  # B ran inside A's batch
    assert seen["sizes"] == [2]


def test_a_draining_host_takes_no_join() -> None:
    """Once its host is going away, a running batch takes no more calls: a new call
    waits for another host instead of joining it."""
    spare_port = free_port()
    spares: list[WorkerProcess] = []

    async def main(first: WorkerProcess) -> tuple[list[Any], list[Any], Any]:
        async with _pool([first.port, spare_port], JOINING, max_latency_ms=30_000) as pool:
            running = asyncio.ensure_future(collect(pool, "joining", 40))  # 2 s of steps
            await until(lambda: pool.stats().methods["joining"].in_flight == 1)
            first.signal(signal.SIGTERM)
            await until(lambda: _connected(pool.stats()) == 0)  # it said it is going away
            late = asyncio.ensure_future(collect(pool, "joining", 3))
            await until(lambda: _queued_or_sent(pool.stats(), "joining") == 2)
            spares.append(await asyncio.to_thread(_joins_host, spare_port))
            return await running, await late, await pool.call("seen")

    try:
        with _joins_host() as first:
            running, late, seen = run(main(first), timeout_s=60)
    finally:
        for spare in spares:
            spare.close()
    assert running == [f"t{i}" for i in range(40)] and late == ["t0", "t1", "t2"]
    assert seen["sizes"] == [1]  # the late call ran on the spare host, alone


def _queued_or_sent(stats: PoolStats, method: str) -> int:
    return stats.methods[method].queue_length + stats.methods[method].in_flight


def _joins_host(port: int | None = None) -> WorkerProcess:
    return WorkerProcess(graph=REMOTE_GRAPHS / "joins.yaml", runner="joiner", port=port)


def _connected(stats: PoolStats) -> int:
    return sum(endpoint.connected for endpoint in stats.endpoints)


def test_the_host_relays_frames_to_the_stream_they_name() -> None:
    with _host() as host, RawClient(host.port) as client:
        assert client.authenticate(TOKEN, SPEC)[0] == "welcome"
        client.send(["call", 1, "tokens", [[100_000, 3]], {}, []])
        assert client.receive() == ["chunk", 1, ["t0", "t0"]]
        client.send(["later", 1, {"a": "kind this host does not know"}])  # relayed, ignored
        client.send(["stop", 1, 0])
        replies = _until_reply(client)  # item 0 stopped, item 1 ends at step 3: the reply
        assert ["end", 1, 1] in replies and replies[-1] == ["ok", 1, None]
        client.send(["stop", 1, 1])  # the batch ended: dropped
        client.send(["ping", 7])
        assert client.receive() == ["pong", 7, 0]


def test_a_connection_that_closes_stops_its_streams_on_the_host() -> None:
    async def seen() -> Any:
        async with _pool([host.port]) as pool:
            return await pool.call("seen")  # runs once the abandoned stream ended

    with _host() as host:
        with RawClient(host.port) as client:
            assert client.authenticate(TOKEN, SPEC)[0] == "welcome"
            client.send(["call", 1, "tokens", [[100_000]], {}, []])
            assert client.receive() == ["chunk", 1, ["t0"]]
        closed_at = run(seen(), timeout_s=30)["closed_at"]
    assert len(closed_at) == 1 and closed_at[0] < 1000


def test_a_connection_that_closes_stops_the_items_that_joined_too() -> None:
    async def seen() -> Any:
        async with _pool([host.port], JOINING) as pool:
            return await pool.call("seen")  # runs once the abandoned stream ended

    spec = protocol.spec_hash({"runnable": JOINING, "init": JOINING_INIT})
    with WorkerProcess(graph=REMOTE_GRAPHS / "joins.yaml", runner="joiner") as host:
        with RawClient(host.port) as client:
            assert client.authenticate(TOKEN, spec)[0] == "welcome"
            client.send(["call", 1, "joining", [[100_000]], {}, []])
            assert client.receive() == ["chunk", 1, ["t0"]]
            client.send(["join", 1, [[100_000]], {}])
            while (frame := client.receive())[0] != "joined":
                assert frame[0] == "chunk"
            assert frame == ["joined", 1, 2]
        assert run(seen(), timeout_s=30)["sizes"] == [2]


def test_a_malformed_join_fails_its_batch_as_the_pool_s_fault() -> None:
    """A join whose arguments do not match its batch's ends the batch with a
    ProtocolError reply, logged as a malformed frame from the pool (the method did
    not raise); the connection stays."""
    spec = protocol.spec_hash({"runnable": JOINING, "init": JOINING_INIT})
    with _joins_host() as host, RawClient(host.port) as client:
        assert client.authenticate(TOKEN, spec)[0] == "welcome"
        client.send(["call", 1, "joining", [[100_000]], {}, []])
        assert client.receive() == ["chunk", 1, ["t0"]]
        client.send(["join", 1, [[1], [2]], {}])  # two arguments: the batch has one
        reply = _until_reply(client)[-1]
        assert reply == ["error", 1, PROTOCOL_FAULT, "a join's arguments do not match its batch's"]
        client.send(["ping", 2])
        assert client.receive() == ["pong", 2, 0]
        wait_until(lambda: "batch 1: a frame from the pool was malformed" in host.output)
    assert "joining raised" not in host.output


def test_a_streaming_call_not_stacked_fails_its_batch_and_keeps_the_connection() -> None:
    """``tokens`` is declared batchable, so its arguments come stacked; a call that
    does not stack them (a runner overriding ``batchable``) gets an error reply
    naming the cause, and the host serves the connection on."""
    with _host() as host, RawClient(host.port) as client:
        assert client.authenticate(TOKEN, SPEC)[0] == "welcome"
        client.send(["call", 1, "tokens", [3], {}, []])  # 3, not [3]
        kind, batch, error_type, text = client.receive()
        assert (kind, batch, error_type) == ("error", 1, PROTOCOL_FAULT)
        assert "declared batchable" in text and "override batchable" in text
        client.send(["call", 2, "tokens", [[2]], {}, []])
        assert _until_reply(client)[-1] == ["ok", 2, None]
        wait_until(lambda: "batch 1: a frame from the pool was malformed" in host.output)


def _until_reply(client: RawClient) -> list[Any]:
    """Frames up to and including the batch's reply."""
    frames = [client.receive()]
    while frames[-1] is not None and frames[-1][0] in ("chunk", "end"):
        frames.append(client.receive())
    return frames
