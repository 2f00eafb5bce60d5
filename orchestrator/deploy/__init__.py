"""Deployment files for a compiled graph: ``graphctl deploy kubernetes`` writes a
kustomize folder (the orchestrator, each runner's workers behind a headless
Service, their autoscalers) and the Dockerfile of the image they run.

    objects = kubernetes_objects(plan, KubernetesOptions(image="registry/diamond:1"))
"""

from orchestrator.deploy._kubernetes import kubernetes_objects, write_kubernetes
from orchestrator.deploy._layout import AUTOSCALERS, KubernetesOptions

__all__ = ["AUTOSCALERS", "KubernetesOptions", "kubernetes_objects", "write_kubernetes"]
