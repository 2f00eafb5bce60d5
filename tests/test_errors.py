"""The runner error tree: which failures are temporary is a class, not a flag."""

from __future__ import annotations

import pytest

from runners import (
    CallTimeout,
    MethodError,
    Overloaded,
    PoisonCall,
    PoolClosed,
    RunnerError,
    RunnerStartupError,
    Unavailable,
    UnsupportedValue,
    WorkerCrashed,
)


@pytest.mark.parametrize("error", [WorkerCrashed, Overloaded, CallTimeout, PoolClosed])
def test_temporary_failures_are_unavailable(error: type[RunnerError]) -> None:
    assert issubclass(error, Unavailable) and issubclass(error, RunnerError)


@pytest.mark.parametrize("error", [PoisonCall, MethodError, UnsupportedValue, RunnerStartupError])
def test_failures_that_repeat_when_resent_are_not_unavailable(error: type[RunnerError]) -> None:
    assert not issubclass(error, Unavailable)


def test_no_error_carries_a_retryable_flag() -> None:
    assert not hasattr(Overloaded("full"), "retryable")
