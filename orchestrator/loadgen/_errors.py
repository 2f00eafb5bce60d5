"""The load generator's errors."""

from __future__ import annotations

from orchestrator.errors import GraphctlError

__all__ = ["BenchError"]


class BenchError(GraphctlError):
    """``graphctl bench`` cannot run as asked (its target is not loopback, or the
    server it started never became ready)."""
