"""The one lifecycle vocabulary, and ``async with`` over start/stop."""

from __future__ import annotations

import asyncio

import pytest

from runners.lifecycle import AsyncLifecycle, Lifecycle


@pytest.mark.parametrize(
    ("state", "accepts_work", "stopping"),
    [
        (Lifecycle.NEW, False, False),
        (Lifecycle.STARTING, False, False),
        (Lifecycle.READY, True, False),
        (Lifecycle.DRAINING, False, True),
        (Lifecycle.CLOSED, False, True),
    ],
)
def test_only_ready_accepts_work_and_stopping_is_final(
    state: Lifecycle, accepts_work: bool, stopping: bool
) -> None:
    assert state.accepts_work is accepts_work
    assert state.stopping is stopping


def test_values_are_the_words_messages_use() -> None:
    assert [s.value for s in Lifecycle] == ["new", "starting", "ready", "draining", "closed"]


class _Recorder(AsyncLifecycle):
    def __init__(self, fail_start: bool = False) -> None:
        self.events: list[str] = []
        self.fail_start = fail_start

    async def start(self) -> None:
        self.events.append("start")
        if self.fail_start:
            raise RuntimeError("cannot start")

    async def stop(self) -> None:
        self.events.append("stop")


def test_async_with_starts_gives_the_object_and_stops() -> None:
    recorder = _Recorder()

    async def main() -> None:
        async with recorder as entered:
            assert entered is recorder
            assert recorder.events == ["start"]

    asyncio.run(main())
    assert recorder.events == ["start", "stop"]


def test_stop_runs_when_the_block_raises_and_the_error_propagates() -> None:
    recorder = _Recorder()

    async def main() -> None:
        async with recorder:
            raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        asyncio.run(main())
    assert recorder.events == ["start", "stop"]


def test_a_failed_start_does_not_enter_the_block() -> None:
    recorder = _Recorder(fail_start=True)
    entered = []

    async def main() -> None:
        async with recorder:
            entered.append(True)

    with pytest.raises(RuntimeError, match="cannot start"):
        asyncio.run(main())
    assert entered == [] and recorder.events == ["start"]


def test_defaults_do_nothing() -> None:
    async def main() -> AsyncLifecycle:
        async with AsyncLifecycle() as plain:
            return plain

    assert isinstance(asyncio.run(main()), AsyncLifecycle)
