"""What a worker does with its Runnable, in a worker process (``runners.worker``)
or in the calling process (``runners.local``): load it, find its methods, and
frame each batch's answer (``runners.transport`` describes the replies), with
its calls' log fields and span around it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

from runners import call_context, codec, log_context, otel
from runners.call_context import CallContext
from runners.config import RunnerConfig
from runners.errors import UnsupportedValue
from runners.runnable import runnable_methods


def runnable_settings(config: RunnerConfig) -> dict[str, Any]:
    """What ``load_runnable`` reads: the same for a worker process (as JSON on its
    command line), a worker host and ``runners.local``."""
    return {
        "runnable": config.runnable,
        "search_path": str(config.search_path) if config.search_path else None,
        "init": dict(config.init),
    }


def load_runnable(config: Mapping[str, Any]) -> Any:
    """Import ``module:Class`` with the search path first, and construct it with ``init``."""
    search = str(config["search_path"]) if config.get("search_path") else None
    if search and search not in sys.path:
        sys.path.insert(0, search)
    module_name, _, class_name = str(config["runnable"]).partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    return cls(**dict(config.get("init") or {}))


def method_table(instance: Any) -> dict[str, Callable[..., Any]]:
    return {name: getattr(instance, name) for name in runnable_methods(type(instance))}


def value_reply(batch_id: int, value: Any, runner: str, method: str) -> list[Any]:
    """The frame answering a batch with its value (or why the value cannot cross)."""
    try:
        return codec.encode(["ok", batch_id, value], runner=runner, method=method)
    except UnsupportedValue as exc:
        return error_reply(batch_id, exc)


def error_reply(batch_id: int, exc: Exception) -> list[Any]:
    """The frame answering a batch whose method raised ``exc``."""
    text = exc.message if isinstance(exc, UnsupportedValue) else str(exc)
    return codec.encode(["error", batch_id, type(exc).__name__, text])


# The error type of a protocol fault's reply: not a Python name, so a method's own
# exception class (urllib3's ProtocolError, say) is never taken for one.
PROTOCOL_FAULT = "graphctl:ProtocolError"


def protocol_fault_reply(batch_id: int, text: str) -> list[Any]:
    """The frame ending a batch over a malformed frame from the pool."""
    return codec.encode(["error", batch_id, PROTOCOL_FAULT, text])


def no_method_reply(batch_id: int, method: str) -> list[Any]:
    return codec.encode(["error", batch_id, "LookupError", f"no method {method!r}"])


def batch_log_fields(contexts: Sequence[CallContext]) -> Any:
    """Bind the batch's request ids and trace ids as log fields while it runs."""
    if not contexts:
        return nullcontext()
    return log_context.bound(**call_context.log_fields(contexts))


def batch_span(
    spans: otel.BatchSpans | None, batch_id: int, method: str, contexts: Sequence[CallContext]
) -> Any:
    """The batch's span when this worker traces and a call carries a trace parent."""
    if spans is None or not contexts:
        return nullcontext()
    return spans.batch(batch_id, method, contexts)
