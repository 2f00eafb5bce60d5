"""The ConfigMap both kinds of pods mount: the graph file, the Python modules
beside it, and the effective settings (for workers, and for the orchestrator
with the runners' ``dns:`` endpoints).

Pods mount each key as one file (``subPath``) over the image's copy of the
graph folder, so a module still finds its data files next to it, and a changed
ConfigMap (a new ``config_hash`` on the pod templates) rolls the pods.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

from orchestrator.compiling import settings_document
from orchestrator.deploy._layout import (
    CONFIG_DIR,
    GRAPH_DIR,
    ORCHESTRATOR_CONFIG,
    WORKERS_CONFIG,
    Layout,
    graph_folder,
)
from orchestrator.errors import DeployError
from orchestrator.plan import Plan

CONFIG_KEYS = (WORKERS_CONFIG, ORCHESTRATOR_CONFIG)
# A ConfigMap holds at most 1 MiB, its metadata included.
MAX_DATA_BYTES = 1_000_000
VOLUME = "graph"


def worker_settings(plan: Plan) -> dict[str, Any]:
    """The workers' ``--config``: every runner's effective settings. In a pod the GPU
    device plugin picks the GPUs, so ``resources.devices`` (indexes of a host's
    GPUs) is dropped."""
    document = settings_document(plan)
    for settings in document["runners"].values():
        settings["resources"]["devices"] = None
    return document


def orchestrator_settings(plan: Plan, layout: Layout) -> dict[str, Any]:
    """The orchestrator's ``--config``: the same settings, each runner reached at
    its headless Service's ``dns:`` endpoint instead of starting local workers."""
    document = worker_settings(plan)
    for name, settings in document["runners"].items():
        settings["endpoints"] = [layout.endpoint(name)]
    return document


def config_map_data(plan: Plan, layout: Layout) -> dict[str, str]:
    """Every file the pods mount, by ConfigMap key (a file name)."""
    folder = graph_folder(plan)
    data = {plan.file.name: plan.file.read_text(encoding="utf-8")}
    for module in sorted(folder.glob("*.py")):
        data[module.name] = module.read_text(encoding="utf-8")
    for key in CONFIG_KEYS:
        if key in data:
            raise DeployError(f"{folder / key}: this name is taken by graphctl's settings file")
    data[WORKERS_CONFIG] = _dump(worker_settings(plan))
    data[ORCHESTRATOR_CONFIG] = _dump(orchestrator_settings(plan, layout))
    size = sum(len(key) + len(value.encode()) for key, value in data.items())
    if size > MAX_DATA_BYTES:
        raise DeployError(
            f"the graph file, the *.py files of {folder} and the settings take {size} bytes;"
            f" a ConfigMap holds at most {MAX_DATA_BYTES}: move large modules into a package"
            " folder (the image has it, the ConfigMap does not)"
        )
    return data


def data_hash(data: Mapping[str, str]) -> str:
    """A short digest of the ConfigMap's data, for the pod templates' annotation."""
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(f"{key}\0{data[key]}\0".encode())
    return digest.hexdigest()[:16]


def config_map(layout: Layout, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": layout.metadata(layout.config_map, "config"),
        "data": dict(data),
    }


def volume(layout: Layout) -> dict[str, Any]:
    return {"name": VOLUME, "configMap": {"name": layout.config_map}}


def volume_mounts(data: Mapping[str, str], settings: str) -> list[dict[str, Any]]:
    """One read-only file mount per key: the ``settings`` file under ``CONFIG_DIR``,
    the graph file and modules over their copies in ``GRAPH_DIR``."""
    return [
        {
            "name": VOLUME,
            "mountPath": f"{CONFIG_DIR if key in CONFIG_KEYS else GRAPH_DIR}/{key}",
            "subPath": key,
            "readOnly": True,
        }
        for key in data
        if key == settings or key not in CONFIG_KEYS
    ]


def _dump(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document), sort_keys=False)
