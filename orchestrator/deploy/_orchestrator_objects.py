"""The orchestrator's objects: a Deployment running ``graphctl serve`` with every
runner reached through its ``dns:`` endpoint, and a Service for clients.

``/livez`` (the process answers) drives the liveness probe and never depends
on runners: an outage of a runner makes pods unready, it never restarts them.
``/readyz`` (every runner has a reachable endpoint) drives readiness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from orchestrator.deploy._layout import CONFIG_DIR, HTTP_PORT, ORCHESTRATOR_CONFIG, Layout
from orchestrator.deploy._pods import container, deployment, http_probe, pod_template

COMPONENT = "orchestrator"
PORT_NAME = "http"
REPLICAS = 1  # one batching point fills batches best; raise it for availability
SHUTDOWN_MARGIN_S = 30
DEFAULT_REQUEST_S = 60.0  # the longest a request is waited for when the graph sets no timeout


def grace_seconds(layout: Layout) -> int:
    """Long enough to answer every request accepted before SIGTERM."""
    timeout_ms = layout.plan.timeout_ms
    longest = DEFAULT_REQUEST_S if timeout_ms is None else timeout_ms / 1000
    return math.ceil(longest) + SHUTDOWN_MARGIN_S


def orchestrator_deployment(layout: Layout, data: Mapping[str, str]) -> dict[str, Any]:
    name = layout.orchestrator
    command = [
        "graphctl", "serve", layout.graph_path,
        "--host", "0.0.0.0",
        "--port", str(HTTP_PORT),
        "--config", f"{CONFIG_DIR}/{ORCHESTRATOR_CONFIG}",
    ]  # fmt: skip
    serve = container(layout, "orchestrator", command, data, ORCHESTRATOR_CONFIG)
    serve["ports"] = [{"name": PORT_NAME, "containerPort": HTTP_PORT, "protocol": "TCP"}]
    serve["startupProbe"] = http_probe("/livez", PORT_NAME, 5, 60)
    serve["livenessProbe"] = http_probe("/livez", PORT_NAME, 10, 3)
    serve["readinessProbe"] = http_probe("/readyz", PORT_NAME, 5, 2)
    spec = {"terminationGracePeriodSeconds": grace_seconds(layout), "containers": [serve]}
    # The conventional scrape annotations: Prometheus collects the runners' load
    # (graphctl_runner_load_items) that the ScaledObjects scale on.
    scrape = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(HTTP_PORT),
        "prometheus.io/path": "/metrics",
    }
    template = pod_template(layout, name, COMPONENT, spec, scrape)
    return deployment(layout, name, COMPONENT, REPLICAS, template)


def orchestrator_service(layout: Layout) -> dict[str, Any]:
    name = layout.orchestrator
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": layout.metadata(name, COMPONENT),
        "spec": {
            "selector": layout.selector(name),
            "ports": [
                {"name": PORT_NAME, "port": HTTP_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
            ],
        },
    }
