"""``graphctl deploy kubernetes``: the commands of docs/deploy.md run as written,
``kubectl kustomize`` builds the folder (offline, no cluster), and what it
builds validates; mistakes are one line on stderr, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.test_deploy import assert_valid

ROOT = Path(__file__).resolve().parents[1]
DEPLOY_DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
GRAPHCTL = Path(sys.executable).parent / "graphctl"
KUBECTL = "kubectl"


def kubernetes_block() -> str:
    """The ``sh`` block of the Kubernetes section: the commands the doc promises."""
    section = DEPLOY_DOC.split("## Kubernetes", 1)[1]
    found = re.search(r"^```sh\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    assert found is not None
    return found.group(1)


def shell(script: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = f"{GRAPHCTL.parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("/tmp/", f"{tmp}/")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def graphctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRAPHCTL), *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_the_documented_commands_build_valid_objects(tmp_path: Path) -> None:
    done = shell(kubernetes_block(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote 13 objects" in done.stdout
    built: list[dict[str, Any]] = list(
        yaml.safe_load_all((tmp_path / "diamond-k8s.yaml").read_text(encoding="utf-8"))
    )
    listed = yaml.safe_load((tmp_path / "diamond-k8s" / "kustomization.yaml").read_text())
    assert len(built) == len(listed["resources"]) == 13
    assert {obj["metadata"]["namespace"] for obj in built} == {"ml"}
    assert_valid(built)
    workers = next(
        o for o in built if (o["kind"], o["metadata"]["name"]) == ("Deployment", "diamond-mlp-b")
    )
    assert workers["spec"]["replicas"] == 2  # the --set of the command
    assert (tmp_path / "diamond-k8s" / "Dockerfile").is_file()


def test_kustomize_refuses_a_folder_missing_an_object(tmp_path: Path) -> None:
    """The build check can fail: a listed file that is gone breaks it."""
    out = tmp_path / "k8s"
    done = graphctl("deploy", "kubernetes", "graphs/diamond.yaml", "--image", "x", "-o", str(out))
    assert done.returncode == 0, done.stderr
    (out / "service-diamond.yaml").unlink()
    build = subprocess.run(
        [KUBECTL, "kustomize", str(out)], capture_output=True, text=True, timeout=60
    )
    assert build.returncode != 0
    assert "service-diamond.yaml" in build.stderr


def test_hpa_without_cpu_is_an_error_line(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    done = graphctl(
        "deploy", "kubernetes", "graphs/diamond.yaml", "--image", "x", "-o", str(out),
        "--autoscaler", "hpa",
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("graphctl: error: runner 'mlp_a': --autoscaler hpa")
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_a_bad_override_prints_its_position(tmp_path: Path) -> None:
    done = graphctl(
        "deploy", "kubernetes", "graphs/diamond.yaml", "--image", "x", "-o", str(tmp_path / "o"),
        "--set", "runners.mlp_c.workers=2",
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("--set:1:9: error: graph 'diamond' has no runner 'mlp_c'")


def test_image_and_output_are_required() -> None:
    done = graphctl("deploy", "kubernetes", "graphs/diamond.yaml")
    assert done.returncode == 2
    assert "--image" in done.stderr and "-o/--output" in done.stderr
