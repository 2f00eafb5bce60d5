"""The HTTP server: ``create_app`` serves compiled graphs with FastAPI/Starlette.

``POST /{graph}`` and the Open Inference Protocol under ``/v2`` share one
lifecycle per graph (``_serving``: readiness, the in-flight bound, deadlines,
metrics) and one mapping of errors to HTTP answers (``_errors``).
"""

from orchestrator.server._app import DEFAULT_MAX_BODY_BYTES, create_app
from orchestrator.server._serving import DEFAULT_MAX_INFLIGHT

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_INFLIGHT", "create_app"]
