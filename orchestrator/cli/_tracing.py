"""OpenTelemetry for ``graphctl serve`` and ``graphctl run``: the provider the
``OTEL_*`` variables ask for, set as this process's global one (so a Runnable run
in this process with ``--local``, and the user's own instrumentation, export
through it too), flushed and shut down when the command ends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from runners import otel

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


@contextmanager
def otel_provider() -> Iterator[TracerProvider | None]:
    """The provider for the block, or ``None`` when the environment asks for no traces."""
    provider = otel.tracer_provider({"process.pid": os.getpid()})
    if provider is None:
        yield None
        return
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    try:
        yield provider
    finally:
        provider.shutdown()
