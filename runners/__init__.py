"""graphctl runners: batched, supervised pools of worker processes.

from runners import RunnerConfig, WorkerPool

async with WorkerPool(RunnerConfig(name="mlp", runnable="models:MLP")) as pool:
    y = await pool.call("predict", x)
"""

from __future__ import annotations

from runners.config import BatchingConfig, Resources, RunnerConfig, SupervisionConfig
from runners.errors import (
    CallTimeout,
    MethodError,
    ModelCorrupt,
    ModelError,
    ModelNotFound,
    Overloaded,
    PoisonCall,
    PoolClosed,
    ProtocolError,
    RunnerError,
    RunnerStartupError,
    StreamInterrupted,
    Unavailable,
    UnsupportedValue,
    WorkerCrashed,
)
from runners.heap import tune_for_serving
from runners.lifecycle import Lifecycle
from runners.local import LocalClient
from runners.pool import WorkerPool
from runners.runnable import END, MethodSpec, Runnable, method
from runners.types import CallResult, MethodStats, PoolStats, RunnerClient

__all__ = [
    "END",
    "BatchingConfig",
    "CallResult",
    "CallTimeout",
    "Lifecycle",
    "LocalClient",
    "MethodError",
    "MethodSpec",
    "MethodStats",
    "ModelCorrupt",
    "ModelError",
    "ModelNotFound",
    "Overloaded",
    "PoisonCall",
    "PoolClosed",
    "PoolStats",
    "ProtocolError",
    "Resources",
    "Runnable",
    "RunnerClient",
    "RunnerConfig",
    "RunnerError",
    "RunnerStartupError",
    "StreamInterrupted",
    "SupervisionConfig",
    "Unavailable",
    "UnsupportedValue",
    "WorkerCrashed",
    "WorkerPool",
    "method",
    "tune_for_serving",
]
