"""Errors raised by runners: worker pools, batchers and the worker protocol.

    RunnerError                 root: catch this to catch every runner failure
     ├── Unavailable            temporary: the same call may succeed if sent again
     │    │                     later (HTTP answers 503 with ``Retry-After``)
     │    ├── WorkerCrashed     no worker is left to run a call (they keep failing
     │    │                     to start)
     │    ├── Overloaded        the queue is full or its predicted wait is already
     │    │                     past the call's deadline (carries ``retry_after_s``)
     │    ├── CallTimeout       the call waited longer than its deadline or
     │    │                     ``max_latency_ms``; it never reached a worker
     │    ├── StreamInterrupted the worker running a stream was lost after its first
     │    │                     chunks: the stream is not run again (its caller has
     │    │                     part of it), but sending the request again may succeed
     │    └── PoolClosed        the pool is not started yet, or stopping: another
     │                          replica (or this one, restarted) can serve the call,
     │                          but a retry within the same graph run cannot
     ├── RunnerStartupError     a worker could not import or construct its Runnable,
     │    │                     or did not answer READY in time
     │    └── WorkerRefused     a worker host and this orchestrator disagree on the
     │                          token, protocol version or runner spec (configuration)
     ├── PoisonCall             a call crashed (or hung) the worker running it twice;
     │                          not retryable: retrying would crash another
     ├── MethodError            the user's method raised; carries its type and message
     ├── UnsupportedValue       a value cannot cross the data-only IPC protocol
     ├── ProtocolError          a malformed frame: a worker sending one is killed; a
     │                          batch the pool's frame was malformed for fails
     ├── TracingError           the OTEL_* variables ask for traces this install
     │                          cannot export (SDK missing, unknown exporter)
     └── ModelError             a model store entry cannot be used (names the entry)
          ├── ModelNotFound     no such model name or version in the store
          └── ModelCorrupt      metadata unreadable, a file missing, or a file whose
                                hash no longer matches its metadata (never loaded)

Only ``Unavailable`` is worth retrying, and a graph's node retries retry it except
``PoolClosed`` (the graph is stopping). Everything else fails the same way when
sent again: a user's exception, a poison call, a value the protocol cannot carry.
"""

from __future__ import annotations


class RunnerError(Exception):
    """Root of every runner error; ``runner`` and ``method`` say where it happened."""

    def __init__(self, message: str, *, runner: str | None = None, method: str | None = None):
        super().__init__(message)
        self.message = message
        self.runner = runner
        self.method = method

    def __str__(self) -> str:
        where = ".".join(part for part in (self.runner, self.method) if part)
        return f"runner {where!r}: {self.message}" if where else self.message


class RunnerStartupError(RunnerError):
    """A worker failed to start: import error, constructor raised, or READY timeout."""


class WorkerRefused(RunnerStartupError):
    """A worker host refused this orchestrator, or failed its proof: a wrong token,
    another protocol version or another runner spec. Retrying cannot fix it."""


class Unavailable(RunnerError):
    """A temporary failure: the runner could not take or finish the call now."""


class WorkerCrashed(Unavailable):
    """Raised when no worker is left to run a call: the workers keep failing to start."""


class StreamInterrupted(Unavailable):
    """Raised when the worker (process or host) running a stream died or hung after
    the stream's first chunks: never retried within the call, since its caller
    already holds part of it; a new request may succeed."""


class PoisonCall(RunnerError):
    """Raised when two workers died or hung while running this call: it is failed for
    good (not retryable) so that it cannot take down worker after worker."""


class Overloaded(Unavailable):
    """Raised at enqueue: the queue is full, or the call's wait would pass its deadline."""

    def __init__(
        self,
        message: str,
        *,
        runner: str | None = None,
        method: str | None = None,
        retry_after_s: float = 1.0,
    ):
        super().__init__(message, runner=runner, method=method)
        self.retry_after_s = retry_after_s


class CallTimeout(Unavailable):
    """Raised when the call's deadline (or ``max_latency_ms``) passes while it is queued,
    or a node's ``timeout_ms`` passes before its answer."""


class MethodError(RunnerError):
    """The user's method raised; ``error_type`` is the exception's class name."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str = "Exception",
        runner: str | None = None,
        method: str | None = None,
    ):
        super().__init__(message, runner=runner, method=method)
        self.error_type = error_type

    def __str__(self) -> str:
        return f"{super().__str__()} (raised {self.error_type})"


class UnsupportedValue(RunnerError):
    """A value of a type the IPC protocol does not carry (only data, never objects)."""


class ProtocolError(RunnerError):
    """A frame that does not follow the worker protocol."""


class TracingError(RunnerError):
    """The ``OTEL_*`` variables ask for OpenTelemetry traces that cannot be exported."""


class PoolClosed(Unavailable):
    """Raised when the pool is used before ``start()`` or once ``stop()`` began, and
    for calls still queued when it stopped."""


class ModelError(RunnerError):
    """A model store entry cannot be used; ``ref`` is the ``name:version`` asked for."""

    def __init__(self, message: str, *, ref: str | None = None):
        super().__init__(message)
        self.ref = ref


class ModelNotFound(ModelError):
    """No model of that name, or no such version of it, is in the store."""


class ModelCorrupt(ModelError):
    """A stored model is damaged or was changed after it was saved; it is not loaded."""
