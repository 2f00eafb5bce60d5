"""Pieces both pod templates share: the token from its Secret, the settings
volume, the security context, the annotation that rolls pods on a new config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.deploy._config_map import volume, volume_mounts
from orchestrator.deploy._layout import TOKEN_KEY, TOKEN_VARIABLE, Layout

CONFIG_HASH_ANNOTATION = "graphctl.dev/config-hash"
RUN_AS_USER = 10001  # the image's unprivileged user (see the Dockerfile)


def token_env(layout: Layout) -> dict[str, Any]:
    """``GRAPHCTL_WORKER_TOKEN`` read from the Secret the operator creates."""
    return {
        "name": TOKEN_VARIABLE,
        "valueFrom": {"secretKeyRef": {"name": layout.secret, "key": TOKEN_KEY}},
    }


def container(
    layout: Layout, name: str, command: list[str], data: Mapping[str, str], settings: str
) -> dict[str, Any]:
    """A container of the graph's image running ``command``, with the graph's files and
    its ``settings`` file (a ConfigMap key) mounted."""
    return {
        "name": name,
        "image": layout.options.image,
        "command": command,
        "env": [token_env(layout)],
        "volumeMounts": volume_mounts(data, settings),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def pod_template(
    layout: Layout,
    name: str,
    component: str,
    spec: dict[str, Any],
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A pod template with the object's labels, the config hash and the volume."""
    return {
        "metadata": {
            "labels": layout.labels(name, component),
            "annotations": {CONFIG_HASH_ANNOTATION: layout.config_hash, **(annotations or {})},
        },
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER},
            **spec,
            "volumes": [volume(layout)],
        },
    }


def deployment(
    layout: Layout, name: str, component: str, replicas: int, template: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": layout.metadata(name, component),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": layout.selector(name)},
            "template": template,
        },
    }


def tcp_probe(port: str, period_s: int, failures: int) -> dict[str, Any]:
    return {"tcpSocket": {"port": port}, "periodSeconds": period_s, "failureThreshold": failures}


def http_probe(path: str, port: str, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period_s,
        "failureThreshold": failures,
    }
