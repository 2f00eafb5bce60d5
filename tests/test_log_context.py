"""Log fields follow their own request: nested blocks add and restore, tasks are apart."""

from __future__ import annotations

import asyncio

from runners import log_context
from tests.conftest import run


def test_bound_fields_nest_and_restore() -> None:
    assert dict(log_context.current()) == {}
    with log_context.bound(request_id="r1", graph="g"):
        with log_context.bound(node="a", runner=None):
            assert dict(log_context.current()) == {"request_id": "r1", "graph": "g", "node": "a"}
        assert dict(log_context.current()) == {"request_id": "r1", "graph": "g"}
    assert dict(log_context.current()) == {}


def test_concurrent_tasks_never_see_each_others_fields() -> None:
    async def request(rid: str, gate: asyncio.Event) -> str:
        with log_context.bound(request_id=rid):
            await gate.wait()
            return str(log_context.current()["request_id"])

    async def main() -> list[str]:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(request(f"r{i}", gate)) for i in range(3)]
        await asyncio.sleep(0)
        gate.set()
        return list(await asyncio.gather(*tasks))

    assert run(main()) == ["r0", "r1", "r2"]
