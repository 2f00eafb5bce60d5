"""``graphctl deploy kubernetes GRAPH --image IMAGE -o DIR``: write a kustomize
folder that runs the graph on Kubernetes, and the Dockerfile of its image.

    graphctl deploy kubernetes graphs/diamond.yaml --image registry/diamond:1 -o k8s/
    kubectl apply -k k8s/

``--config``/``--set`` apply as for ``serve``; the effective settings go into the
ConfigMap. docs/deploy.md walks through the whole deployment.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orchestrator.cli._args import graph_file, port_number
from orchestrator.cli._config import add_override_arguments, compile_with_overrides
from orchestrator.cli._validate import print_diagnostics
from orchestrator.errors import GraphFileError


def register(subparsers: Any) -> None:
    from orchestrator.deploy import AUTOSCALERS
    from orchestrator.deploy._layout import DEFAULT_PROMETHEUS_URL, DEFAULT_WORKER_PORT

    parser = subparsers.add_parser(
        "deploy", help="write deployment files for a graph (Kubernetes manifests)"
    )
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    kubernetes = targets.add_parser(
        "kubernetes",
        help="a kustomize folder and a Dockerfile: orchestrator, workers, autoscalers",
        description="Write DIR/kustomization.yaml, one file per object, and DIR/Dockerfile.",
    )
    kubernetes.add_argument("file", type=graph_file, metavar="GRAPH", help="the graph file")
    add_override_arguments(kubernetes)
    kubernetes.add_argument("--image", required=True, help="the image the pods run")
    kubernetes.add_argument(
        "-o", "--output", type=Path, required=True, metavar="DIR", help="the folder to write"
    )
    kubernetes.add_argument("--namespace", metavar="NS", help="the namespace of every object")
    kubernetes.add_argument(
        "--autoscaler",
        choices=AUTOSCALERS,
        default="keda",
        help="keda: scale each runner on its queued + in-flight items (Prometheus);"
        " hpa: on CPU use (default keda)",
    )
    kubernetes.add_argument(
        "--worker-port",
        type=port_number,
        default=DEFAULT_WORKER_PORT,
        help=f"the port workers listen on (default {DEFAULT_WORKER_PORT})",
    )
    kubernetes.add_argument(
        "--prometheus-url",
        default=DEFAULT_PROMETHEUS_URL,
        help="the Prometheus KEDA queries (default %(default)s)",
    )
    kubernetes.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from orchestrator.deploy import KubernetesOptions, write_kubernetes

    try:
        plan = compile_with_overrides(args)
    except GraphFileError as error:
        print_diagnostics(error.diagnostics)
        return 1
    print_diagnostics(plan.warnings)
    options = KubernetesOptions(
        image=args.image,
        namespace=args.namespace,
        autoscaler=args.autoscaler,
        worker_port=args.worker_port,
        prometheus_url=args.prometheus_url,
    )
    written = write_kubernetes(plan, options, args.output)
    out = args.output
    print(f"graphctl: wrote {len(written)} objects, kustomization.yaml and Dockerfile to {out}")
    print(
        f"next: put graphctl's wheel in {out}/wheels (pip wheel --no-deps -w {out}/wheels"
        f" PATH/TO/graphctl), docker build -t {args.image} {out}, push it,"
    )
    print(f"      create the Secret (docs/deploy.md), then kubectl apply -k {out}")
    return 0
