"""A runner's objects: its worker Deployment, headless Service,
PodDisruptionBudget, NetworkPolicy and autoscaler.

One pod runs one ``graphctl worker``; the orchestrator resolves the headless
Service to every ready pod and sends each batch to the one holding the fewest
batches, so kube-proxy (which balances connections, not batches) is not in the
path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from orchestrator.deploy._layout import CONFIG_DIR, WORKERS_CONFIG, Layout
from orchestrator.deploy._pods import container, deployment, pod_template, tcp_probe
from orchestrator.errors import DeployError
from runners.config import RunnerConfig

COMPONENT = "runner"
PORT_NAME = "worker"
METRIC = "graphctl_runner_load_items"  # queued + in-flight items, per runner
SCALE_UP_FACTOR = 4  # autoscalers may grow a runner to this many times its workers
HPA_CPU_PERCENT = 70
STARTUP_BUDGET_S = 600  # a model may take minutes to download and load
DRAIN_MARGIN_S = 30  # after the last batch: replies, goodbyes, exit
PROBE_PERIOD_S = 5
LIVENESS_PERIOD_S = 10


def replicas(config: RunnerConfig) -> int:
    """Worker pods: ``workers``; for ``auto``, one per GPU asked for, else one."""
    if config.workers == "auto":
        return max(1, config.resources.gpu)
    return config.workers


def drain_seconds(config: RunnerConfig) -> float:
    """The longest a draining worker may still run a batch: the hang limit the
    orchestrator allows one (its warm-up limit, when no fixed one is set)."""
    supervision = config.supervision
    if supervision.hang_timeout_s is not None:
        return supervision.hang_timeout_s
    return max(supervision.hang_floor_s, supervision.hang_warmup_s)


def grace_seconds(config: RunnerConfig) -> int:
    """``terminationGracePeriodSeconds``: the drain and a margin, so SIGKILL never
    cuts a batch a draining worker is still finishing."""
    return math.ceil(drain_seconds(config)) + DRAIN_MARGIN_S


def resources(config: RunnerConfig, autoscaler: str) -> dict[str, Any]:
    """Per pod: the runner's cores shared among its pods, one GPU per pod when the
    runner asks for GPUs (each worker uses one, as local workers do)."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if config.resources.cpu is not None:
        millicores = max(100, math.ceil(1000 * config.resources.cpu / replicas(config)))
        requests["cpu"] = f"{millicores}m"
    elif autoscaler == "hpa":
        raise DeployError(
            f"runner {config.name!r}: --autoscaler hpa scales on CPU use relative to the"
            " CPU a pod requests, and this runner requests none; set it with"
            f" --set runners.{config.name}.resources.cpu=N, or use --autoscaler keda"
        )
    if config.resources.gpu > 0:
        limits["nvidia.com/gpu"] = "1"
    found: dict[str, Any] = {}
    if requests:
        found["requests"] = requests
    if limits:
        found["limits"] = limits
    return found


def worker_deployment(
    layout: Layout, config: RunnerConfig, data: Mapping[str, str]
) -> dict[str, Any]:
    name = layout.runner(config.name)
    port = layout.options.worker_port
    command = [
        "graphctl", "worker", layout.graph_path,
        "--runner", config.name,
        "--listen", f"0.0.0.0:{port}",
        "--config", f"{CONFIG_DIR}/{WORKERS_CONFIG}",
    ]  # fmt: skip
    grace = grace_seconds(config)
    worker = container(layout, "worker", command, data, WORKERS_CONFIG)
    worker["ports"] = [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}]
    needs = resources(config, layout.options.autoscaler)
    if needs:
        worker["resources"] = needs
    # The worker listens only once its model is loaded: the port open is the truth
    # for readiness, and a process that stops listening is dead or draining.
    worker["startupProbe"] = tcp_probe(
        PORT_NAME, PROBE_PERIOD_S, STARTUP_BUDGET_S // PROBE_PERIOD_S
    )
    worker["readinessProbe"] = tcp_probe(PORT_NAME, PROBE_PERIOD_S, 2)
    # Only this pod's own port: never another service. Failing for longer than the
    # grace period, so a draining worker (listener closed) is not killed early.
    worker["livenessProbe"] = tcp_probe(
        PORT_NAME, LIVENESS_PERIOD_S, math.ceil(grace / LIVENESS_PERIOD_S) + 1
    )
    spec = {"terminationGracePeriodSeconds": grace, "containers": [worker]}
    template = pod_template(layout, name, COMPONENT, spec)
    return deployment(layout, name, COMPONENT, replicas(config), template)


def headless_service(layout: Layout, config: RunnerConfig) -> dict[str, Any]:
    """``clusterIP: None``: DNS answers one address per ready pod, for the
    orchestrator's own per-batch balancing."""
    name = layout.runner(config.name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": layout.metadata(name, COMPONENT),
        "spec": {
            "clusterIP": "None",
            "selector": layout.selector(name),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": layout.options.worker_port,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def disruption_budget(layout: Layout, config: RunnerConfig) -> dict[str, Any]:
    """One worker pod at a time taken by voluntary disruptions (node drains); a
    one-pod runner can still be drained, its batches retried on the new pod."""
    name = layout.runner(config.name)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": layout.metadata(name, COMPONENT),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": layout.selector(name)}},
    }


def network_policy(layout: Layout, config: RunnerConfig) -> dict[str, Any]:
    """Only the orchestrator's pods reach the worker port; nothing else comes in."""
    name = layout.runner(config.name)
    orchestrator_pods = {"podSelector": {"matchLabels": layout.selector(layout.orchestrator)}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": layout.metadata(name, COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": layout.selector(name)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [orchestrator_pods],
                    "ports": [{"protocol": "TCP", "port": layout.options.worker_port}],
                }
            ],
        },
    }


def load_target(config: RunnerConfig) -> int:
    """Items (queued + in flight) per worker pod before another pod is wanted: one
    full batch running and one waiting."""
    sizes = [config.batching.max_batch_size]
    sizes += [b.max_batch_size for b in config.methods.values()]
    return 2 * max(sizes)


def load_query(layout: Layout, config: RunnerConfig) -> str:
    """The PromQL sum over the orchestrator's pods of this runner's load."""
    matchers = [f'runner="{config.name}"']
    if layout.options.namespace:
        matchers.append(f'namespace="{layout.options.namespace}"')
    return f"sum({METRIC}{{{','.join(matchers)}}})"


def autoscaler(layout: Layout, config: RunnerConfig) -> dict[str, Any]:
    """A KEDA ScaledObject on the runner's load, or a CPU HorizontalPodAutoscaler."""
    name = layout.runner(config.name)
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    low = replicas(config)
    high = SCALE_UP_FACTOR * low
    if layout.options.autoscaler == "hpa":
        metric = {"type": "Utilization", "averageUtilization": HPA_CPU_PERCENT}
        return {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": layout.metadata(name, COMPONENT),
            "spec": {
                "scaleTargetRef": target,
                "minReplicas": low,
                "maxReplicas": high,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": metric}}],
            },
        }
    trigger = {
        "type": "prometheus",
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": layout.options.prometheus_url,
            "query": load_query(layout, config),
            "threshold": str(load_target(config)),
        },
    }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": layout.metadata(name, COMPONENT),
        "spec": {
            "scaleTargetRef": target,
            "minReplicaCount": low,
            "maxReplicaCount": high,
            "triggers": [trigger],
        },
    }


def runner_objects(
    layout: Layout, config: RunnerConfig, data: Mapping[str, str]
) -> list[dict[str, Any]]:
    return [
        worker_deployment(layout, config, data),
        headless_service(layout, config),
        disruption_budget(layout, config),
        network_policy(layout, config),
        autoscaler(layout, config),
    ]
