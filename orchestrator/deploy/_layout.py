"""Names, labels and paths shared by every generated object of one graph.

Object names are DNS-1035 labels (what a Service name must be): the graph's
name, then the runner's, lowercase with ``_`` turned into ``-``. Labels follow
the Kubernetes conventions; selectors use only the two that never change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import DeployError
from orchestrator.plan import Plan
from runners.remote.protocol import TOKEN_ENV

Autoscaler = Literal["keda", "hpa"]
AUTOSCALERS: tuple[Autoscaler, ...] = ("keda", "hpa")
DEFAULT_WORKER_PORT = 9000
HTTP_PORT = 8000
DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"

GRAPH_DIR = "/srv/graph"  # where the image holds the graph's folder
CONFIG_DIR = "/etc/graphctl"  # where pods see the generated settings files
WORKERS_CONFIG = "workers.config.yaml"
ORCHESTRATOR_CONFIG = "orchestrator.config.yaml"
TOKEN_VARIABLE = TOKEN_ENV  # the worker protocol's, in both containers' environment
TOKEN_KEY = "token"

_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_MAX_NAME = 63


@dataclass(frozen=True)
class KubernetesOptions:
    """What ``graphctl deploy kubernetes`` was asked for besides the graph."""

    image: str
    namespace: str | None = None
    autoscaler: Autoscaler = "keda"
    worker_port: int = DEFAULT_WORKER_PORT
    prometheus_url: str = DEFAULT_PROMETHEUS_URL


def object_name(*parts: str) -> str:
    """``("diamond", "mlp_a")`` -> ``diamond-mlp-a``; a name Kubernetes would refuse
    is a ``DeployError`` naming the part to rename."""
    name = "-".join(parts).lower().replace("_", "-").replace(".", "-")
    if len(name) > _MAX_NAME or not _DNS_LABEL.fullmatch(name):
        raise DeployError(
            f"{name!r} (from {' + '.join(map(repr, parts))}) is not a valid Kubernetes name:"
            f" at most {_MAX_NAME} characters, letters, digits and '-', starting with a letter;"
            " rename the graph or the runner"
        )
    return name


@dataclass(frozen=True)
class Layout:
    """Where everything of one graph's deployment is, and what it is called."""

    plan: Plan
    options: KubernetesOptions
    config_hash: str = ""  # of the ConfigMap's data: a change rolls the pods

    @property
    def graph(self) -> str:
        return object_name(self.plan.name)

    @property
    def orchestrator(self) -> str:
        """The orchestrator's Deployment and Service: clients call ``http://GRAPH:8000``."""
        return self.graph

    @property
    def config_map(self) -> str:
        return object_name(self.plan.name, "graph")

    @property
    def secret(self) -> str:
        """The Secret holding the worker token (created by the operator, never generated)."""
        return object_name(self.plan.name, "worker-token")

    @property
    def graph_path(self) -> str:
        return f"{GRAPH_DIR}/{self.plan.file.name}"

    def runner(self, runner: str) -> str:
        """A runner's Deployment, Service, PodDisruptionBudget, NetworkPolicy, autoscaler."""
        return object_name(self.plan.name, runner)

    def endpoint(self, runner: str) -> str:
        """The ``dns:`` endpoint of a runner's headless Service (one address per ready pod)."""
        host = self.runner(runner)
        if self.options.namespace:
            host = f"{host}.{self.options.namespace}"
        return f"dns:{host}:{self.options.worker_port}"

    def selector(self, name: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": self.graph}

    def labels(self, name: str, component: str) -> dict[str, str]:
        return {
            **self.selector(name),
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "graphctl",
        }

    def metadata(self, name: str, component: str) -> dict[str, Any]:
        return {"name": name, "labels": self.labels(name, component)}


def check_unique_names(layout: Layout) -> None:
    """Two runners whose names differ only by ``_``/``-`` or case would share objects."""
    seen: dict[str, str] = {}
    for runner in layout.plan.runners:
        name = layout.runner(runner)
        if name in seen:
            raise DeployError(
                f"runners {seen[name]!r} and {runner!r} both become {name!r} in Kubernetes;"
                " rename one of them"
            )
        seen[name] = runner


def graph_folder(plan: Plan) -> Path:
    """The folder the image copies: the graph file's."""
    return plan.base_dir.resolve()
