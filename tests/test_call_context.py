"""Each call's request id and trace parent reach the worker that runs it, in a
process or in this one, as the log fields of its batch; malformed contexts from
the wire are dropped, never trusted."""

from __future__ import annotations

import asyncio

import pytest

from runners import WorkerPool, call_context, log_context
from runners.config import BatchingConfig
from runners.types import RunnerClient
from tests.conftest import POOL_KINDS, run, runner_config

TRACE_A = "0af7651916cd43dd8448eb211c80319c"
TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_A = f"00-{TRACE_A}-b7ad6b7169203331-01"
PARENT_B = f"00-{TRACE_B}-00f067aa0ba902b7-01"


def test_nothing_bound_captures_nothing_and_sends_an_empty_list() -> None:
    assert call_context.capture() is None
    assert call_context.for_batch([None, None]) == []
    with log_context.bound(request_id="r1"), call_context.traced(PARENT_A):
        captured = call_context.capture()
    assert captured == {"request_id": "r1", "traceparent": PARENT_A}
    assert call_context.for_batch([captured, None]) == [captured, {}]


def test_received_contexts_keep_only_well_formed_strings() -> None:
    raw = [
        {"request_id": "r1", "traceparent": PARENT_A, "extra": "dropped"},
        {"request_id": 5, "traceparent": "00-not-a-trace"},
        "not a map",
        {"request_id": "x" * (call_context.MAX_LENGTH + 1)},
    ]
    assert call_context.checked(raw) == [
        {"request_id": "r1", "traceparent": PARENT_A},
        {},
        {},
        {},
    ]
    assert call_context.checked({"request_id": "r1"}) == []


def test_log_fields_list_request_ids_and_distinct_trace_ids_in_batch_order() -> None:
    contexts = [
        {"request_id": "r2", "traceparent": PARENT_B},
        {"request_id": "r1", "traceparent": PARENT_A},
        {"request_id": "r3", "traceparent": PARENT_B},
        {},
    ]
    assert call_context.log_fields(contexts) == {
        "request_id": ["r2", "r1", "r3"],
        "trace_id": [TRACE_B, TRACE_A],
    }
    assert call_context.log_fields([{}]) == {"request_id": None, "trace_id": None}


async def _fields_of_one_batch(client: RunnerClient) -> list[dict[str, object]]:
    """Two requests whose calls share one batch: the worker is busy with a first call
    while they queue. Each request binds its id (and the first a trace parent)."""

    async def request(rid: str, parent: str | None, x: int) -> dict[str, object]:
        with log_context.bound(request_id=rid):
            if parent is None:
                return dict((await client.submit("fields", ([x],), {})).value[0])
            with call_context.traced(parent):
                return dict((await client.submit("fields", ([x],), {})).value[0])

    return list(
        await asyncio.gather(
            request("r0", None, 0), request("r1", PARENT_A, 1), request("r2", None, 2)
        )
    )


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_a_worker_binds_its_batch_calls_request_ids_and_trace_ids(kind: str) -> None:
    config = runner_config(
        "runner_models:Fields", batching=BatchingConfig(max_batch_size=8, adaptive_wait=False)
    )

    async def scenario() -> list[dict[str, object]]:
        async with POOL_KINDS[kind](config) as client:
            return await _fields_of_one_batch(client)

    first, second, third = run(scenario())
    worker = 0
    assert first == {"runner": "test", "worker": worker, "request_id": ["r0"]}
    # The two later calls queued behind the first and ran as one batch.
    shared = {"runner": "test", "worker": worker, "request_id": ["r1", "r2"], "trace_id": [TRACE_A]}
    assert second == third == shared


def test_an_async_method_sees_its_batch_fields() -> None:
    async def scenario() -> dict[str, object]:
        async with WorkerPool(runner_config("runner_models:Fields")) as pool:
            with log_context.bound(request_id="r9"):
                return dict(await pool.call("fields_async", 1))

    assert run(scenario()) == {"runner": "test", "worker": 0, "request_id": ["r9"]}
