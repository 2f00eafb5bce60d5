"""``graphctl deploy kubernetes``: a graph and its settings in, a kustomize folder
out (``kustomization.yaml``, one file per object) with the ``Dockerfile`` that
builds the image both the orchestrator and the workers run.

    write_kubernetes(plan, KubernetesOptions(image="registry/diamond:1"), Path("k8s"))

The folder is also the image's build context: ``graph/`` is a copy of the
graph's folder and ``wheels/`` is where graphctl's wheel goes (``pip wheel``),
since graphctl is installed from a wheel, not from a package index.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from orchestrator._about import graphctl_version
from orchestrator.deploy._config_map import config_map, config_map_data, data_hash
from orchestrator.deploy._layout import (
    GRAPH_DIR,
    KubernetesOptions,
    Layout,
    check_unique_names,
    graph_folder,
)
from orchestrator.deploy._orchestrator_objects import (
    orchestrator_deployment,
    orchestrator_service,
)
from orchestrator.deploy._pods import RUN_AS_USER
from orchestrator.deploy._runner_objects import runner_objects
from orchestrator.errors import DeployError
from orchestrator.plan import Plan

KUSTOMIZATION = "kustomization.yaml"
MARKER = "# Written by graphctl deploy kubernetes"
GRAPH_COPY = "graph"
WHEELS = "wheels"


def kubernetes_objects(plan: Plan, options: KubernetesOptions) -> list[dict[str, Any]]:
    """Every object of the graph's deployment, as plain data: the ConfigMap, the
    orchestrator's Deployment and Service, then each runner's five objects."""
    layout = Layout(plan, options)
    check_unique_names(layout)
    data = config_map_data(plan, layout)
    layout = Layout(plan, options, data_hash(data))
    objects = [
        config_map(layout, data),
        orchestrator_deployment(layout, data),
        orchestrator_service(layout),
    ]
    for config in plan.runners.values():
        objects += runner_objects(layout, config, data)
    return objects


def file_name(obj: dict[str, Any]) -> str:
    """``deployment-diamond-mlp-a.yaml``: kinds differ, so names never collide."""
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def kustomization(plan: Plan, options: KubernetesOptions, files: list[str]) -> str:
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
    }
    if options.namespace:
        doc["namespace"] = options.namespace
    doc["resources"] = files
    header = f"{MARKER} from {plan.file.name}: regenerate it rather than edit it.\n"
    return header + yaml.safe_dump(doc, sort_keys=False)


def wheel_name() -> str:
    """The file ``pip wheel`` writes for this graphctl (a pure-Python wheel)."""
    return f"graphctl-{graphctl_version()}-py3-none-any.whl"


def dockerfile(plan: Plan) -> str:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    wheel = wheel_name()
    return f"""\
# The image of graph {plan.name!r}: graphctl, and the graph's folder in {GRAPH_DIR}.
# The orchestrator and every runner's workers run it. Build it from this folder:
#   pip wheel --no-deps -w {WHEELS} PATH/TO/graphctl     # writes {WHEELS}/{wheel}
#   docker build -t IMAGE .
# graphctl's dependencies come from PyPI; the graph's own go in requirements.txt
# in its folder, installed below when present.
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GRAPHCTL_HOME={GRAPH_DIR}/graphctl-home
COPY {WHEELS}/{wheel} /tmp/{wheel}
RUN pip install --no-cache-dir /tmp/{wheel} && rm /tmp/{wheel}
COPY {GRAPH_COPY}/ {GRAPH_DIR}/
RUN if [ -f {GRAPH_DIR}/requirements.txt ]; then \\
        pip install --no-cache-dir -r {GRAPH_DIR}/requirements.txt; fi
RUN useradd --uid {RUN_AS_USER} --no-create-home graphctl
USER {RUN_AS_USER}
WORKDIR {GRAPH_DIR}
"""


def write_kubernetes(plan: Plan, options: KubernetesOptions, out_dir: Path) -> list[Path]:
    """Write the kustomize folder; returns the object files written, in order.

    Rewriting a folder this command wrote replaces its objects and graph copy
    (and keeps ``wheels/``); any other non-empty folder is refused."""
    objects = kubernetes_objects(plan, options)
    _claim(out_dir)
    _remove_previous_objects(out_dir)
    written = []
    for obj in objects:
        path = out_dir / file_name(obj)
        path.write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")
        written.append(path)
    names = [path.name for path in written]
    (out_dir / KUSTOMIZATION).write_text(kustomization(plan, options, names), encoding="utf-8")
    (out_dir / "Dockerfile").write_text(dockerfile(plan), encoding="utf-8")
    _copy_graph_folder(plan, out_dir)
    (out_dir / WHEELS).mkdir(exist_ok=True)
    return written


def _claim(out_dir: Path) -> None:
    """Create ``out_dir``, or check it is empty or was written by this command."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DeployError(f"{out_dir}: not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not any(out_dir.iterdir()):
        return
    kustomization_file = out_dir / KUSTOMIZATION
    if not kustomization_file.is_file() or not kustomization_file.read_text(
        encoding="utf-8"
    ).startswith(MARKER):
        raise DeployError(
            f"{out_dir}: this folder is not empty and was not written by graphctl deploy;"
            " name a new or empty folder with -o"
        )


def _remove_previous_objects(out_dir: Path) -> None:
    """Object files a previous run listed: a removed runner leaves none behind."""
    kustomization_file = out_dir / KUSTOMIZATION
    if not kustomization_file.is_file():
        return
    previous = yaml.safe_load(kustomization_file.read_text(encoding="utf-8")) or {}
    for name in previous.get("resources", []):
        if isinstance(name, str) and "/" not in name:
            (out_dir / name).unlink(missing_ok=True)


def _copy_graph_folder(plan: Plan, out_dir: Path) -> None:
    """``graph/``: the graph's folder, without caches, hidden entries and ``out_dir``."""
    source, target = graph_folder(plan), out_dir / GRAPH_COPY
    skipped = out_dir.resolve()

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {
            name
            for name in names
            if name.startswith(".")
            or name == "__pycache__"
            or (Path(folder) / name).resolve() == skipped
        }

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=ignore)
