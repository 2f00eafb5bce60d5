"""``orchestrator.deploy``: the Kubernetes objects of a graph, validated strictly
against the Kubernetes 1.30 API schemas (kubernetes-validate, offline) and the
ScaledObject against the part of KEDA's CRD schema it uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from orchestrator import DeployError, apply_overrides, compile_file
from orchestrator.compiling import effective_runners, settings_document
from orchestrator.deploy import KubernetesOptions, kubernetes_objects, write_kubernetes
from orchestrator.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
DIAMOND = ROOT / "graphs" / "diamond.yaml"
KUBERNETES_VERSION = "1.30.0"  # the oldest version the manifests must work on
OPTIONS = KubernetesOptions(image="registry.example.com/diamond:1", namespace="ml")

# The subset of KEDA's ScaledObject schema (keda.sh/v1alpha1) that our objects use,
# written from reading KEDA's CRD (config/crd/bases/keda.sh_scaledobjects.yaml in
# kedacore/keda): the fields it requires (spec.scaleTargetRef.name, spec.triggers
# with type and metadata), their types and bounds; additionalProperties is false
# where the CRD lists the properties, so a misspelt field fails. The required
# Prometheus trigger metadata are those of KEDA's prometheus scaler.
KEDA_SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string", "minLength": 1},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["metadata", "type"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string", "minLength": 1},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "useCachedMetrics": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}
PROMETHEUS_METADATA = ("serverAddress", "query", "threshold")


def objects_of(plan: Plan, options: KubernetesOptions = OPTIONS) -> dict[tuple[str, str], Any]:
    return {(o["kind"], o["metadata"]["name"]): o for o in kubernetes_objects(plan, options)}


def diamond(*sets: str) -> Plan:
    return apply_overrides(compile_file(DIAMOND), None, sets)


def assert_valid_kubernetes(obj: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")


def assert_valid_scaled_object(obj: dict[str, Any]) -> None:
    jsonschema.validate(obj, KEDA_SCALED_OBJECT)
    spec = obj["spec"]
    # KEDA's CRD rule: minReplicaCount <= maxReplicaCount
    assert spec["minReplicaCount"] <= spec["maxReplicaCount"]
    for trigger in spec["triggers"]:
        assert trigger["type"] == "prometheus"
        assert set(PROMETHEUS_METADATA) <= set(trigger["metadata"])
        assert float(trigger["metadata"]["threshold"]) > 0


def assert_valid(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        if obj["kind"] == "ScaledObject":
            assert_valid_scaled_object(obj)
        else:
            assert_valid_kubernetes(obj)


@pytest.mark.parametrize("autoscaler", ["keda", "hpa"])
def test_every_object_validates_strictly(autoscaler: str) -> None:
    plan = diamond("runners.mlp_a.resources.cpu=2", "runners.mlp_b.resources.cpu=1")
    options = KubernetesOptions(image="reg/diamond:1", autoscaler=autoscaler)  # type: ignore[arg-type]
    objects = kubernetes_objects(plan, options)
    assert_valid(objects)
    kinds = sorted(o["kind"] for o in objects)
    scaler = "ScaledObject" if autoscaler == "keda" else "HorizontalPodAutoscaler"
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "Service"]
        + 2 * ["Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", scaler]
    )


def test_the_validators_catch_a_wrong_field() -> None:
    objects = objects_of(diamond())
    service = objects["Service", "diamond-mlp-a"]
    service["spec"]["clusterIp"] = "None"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)
    scaled = objects["ScaledObject", "diamond-mlp-a"]
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 64
    with pytest.raises(jsonschema.ValidationError):
        assert_valid_scaled_object(scaled)


def test_each_runner_gets_workers_behind_a_headless_service() -> None:
    objects = objects_of(diamond("runners.mlp_b.workers=3"))
    workers = objects["Deployment", "diamond-mlp-b"]
    assert workers["spec"]["replicas"] == 3
    pod = workers["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == [
        "graphctl", "worker", "/srv/graph/diamond.yaml", "--runner", "mlp_b",
        "--listen", "0.0.0.0:9000", "--config", "/etc/graphctl/workers.config.yaml",
    ]  # fmt: skip
    assert container["ports"] == [{"name": "worker", "containerPort": 9000, "protocol": "TCP"}]
    assert container["readinessProbe"]["tcpSocket"] == {"port": "worker"}
    assert container["livenessProbe"]["tcpSocket"] == {"port": "worker"}
    assert "resources" not in container  # the runner asks for no CPU count and no GPU
    service = objects["Service", "diamond-mlp-b"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= pod_labels(workers).items()
    assert service["spec"]["ports"][0]["port"] == 9000


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    return labels


def test_a_draining_worker_is_given_longer_than_its_drain() -> None:
    plan = diamond("runners.mlp_a.supervision.hang_timeout_s=200")
    objects = objects_of(plan)
    fixed = objects["Deployment", "diamond-mlp-a"]["spec"]["template"]["spec"]
    adaptive = objects["Deployment", "diamond-mlp-b"]["spec"]["template"]["spec"]
    assert fixed["terminationGracePeriodSeconds"] > 200
    warmup = plan.runners["mlp_b"].supervision.hang_warmup_s
    assert adaptive["terminationGracePeriodSeconds"] > warmup
    for pod in (fixed, adaptive):
        liveness = pod["containers"][0]["livenessProbe"]
        patience = liveness["periodSeconds"] * liveness["failureThreshold"]
        assert patience > pod["terminationGracePeriodSeconds"]


def test_gpus_and_cores_are_shared_out_per_pod() -> None:
    plan = diamond(
        "runners.mlp_a.workers=auto",
        "runners.mlp_a.resources.gpu=2",
        "runners.mlp_a.resources.devices=[0, 1]",
        "runners.mlp_b.workers=4",
        "runners.mlp_b.resources.cpu=2",
    )
    objects = objects_of(plan)
    gpu = objects["Deployment", "diamond-mlp-a"]
    assert gpu["spec"]["replicas"] == 2
    assert gpu["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "limits": {"nvidia.com/gpu": "1"}
    }
    cpu = objects["Deployment", "diamond-mlp-b"]
    assert cpu["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "500m"}
    }
    settings = yaml.safe_load(objects["ConfigMap", "diamond-graph"]["data"]["workers.config.yaml"])
    assert settings["runners"]["mlp_a"]["resources"] == {"cpu": None, "gpu": 2, "devices": None}
    assert_valid(list(objects.values()))


def test_only_the_orchestrator_pods_reach_a_worker_port() -> None:
    objects = objects_of(diamond())
    orchestrator = pod_labels(objects["Deployment", "diamond"])
    workers = pod_labels(objects["Deployment", "diamond-mlp-a"])
    policy = objects["NetworkPolicy", "diamond-mlp-a"]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["podSelector"]["matchLabels"].items() <= workers.items()
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    assert source["podSelector"]["matchLabels"].items() <= orchestrator.items()
    assert not source["podSelector"]["matchLabels"].items() <= workers.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": 9000}]


def test_keda_scales_each_runner_on_its_load_metric() -> None:
    objects = objects_of(diamond("runners.mlp_a.workers=2"))
    scaled = objects["ScaledObject", "diamond-mlp-a"]["spec"]
    assert scaled["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "diamond-mlp-a",
    }
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 8)
    (trigger,) = scaled["triggers"]
    assert trigger["metadata"]["query"] == (
        'sum(graphctl_runner_load_items{runner="mlp_a",namespace="ml"})'
    )
    assert trigger["metadata"]["threshold"] == "64"  # two batches of 32 per pod
    template = objects["Deployment", "diamond"]["spec"]["template"]["metadata"]
    assert template["annotations"]["prometheus.io/scrape"] == "true"


def test_hpa_needs_a_cpu_request_to_measure_against() -> None:
    with pytest.raises(DeployError, match=r"runners\.mlp_a\.resources\.cpu"):
        kubernetes_objects(diamond(), KubernetesOptions(image="x", autoscaler="hpa"))


def test_orchestrator_serves_with_probes_on_livez_and_readyz() -> None:
    objects = objects_of(diamond())
    (serve,) = objects["Deployment", "diamond"]["spec"]["template"]["spec"]["containers"]
    assert serve["command"][:3] == ["graphctl", "serve", "/srv/graph/diamond.yaml"]
    assert serve["command"][-2:] == ["--config", "/etc/graphctl/orchestrator.config.yaml"]
    assert serve["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert serve["startupProbe"]["httpGet"]["path"] == "/livez"
    assert serve["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = objects["Service", "diamond"]["spec"]
    assert "clusterIP" not in service
    assert service["ports"][0]["port"] == 8000


def test_the_config_map_holds_the_graph_its_modules_and_the_settings(tmp_path: Path) -> None:
    plan = diamond("runners.mlp_b.workers=2", "runners.mlp_a.batching.max_batch_size=8")
    objects = objects_of(plan)
    data = objects["ConfigMap", "diamond-graph"]["data"]
    assert data["diamond.yaml"] == DIAMOND.read_text(encoding="utf-8")
    assert data["models.py"] == (DIAMOND.parent / "models.py").read_text(encoding="utf-8")
    workers = yaml.safe_load(data["workers.config.yaml"])
    assert workers == settings_document(plan)
    # the workers' settings file gives the overridden runners back from the graph file
    (tmp_path / "workers.yaml").write_text(data["workers.config.yaml"], encoding="utf-8")
    replayed = apply_overrides(compile_file(DIAMOND), tmp_path / "workers.yaml")
    assert effective_runners(replayed) == effective_runners(plan)
    assert effective_runners(compile_file(DIAMOND)) != effective_runners(plan)
    orchestrator = yaml.safe_load(data["orchestrator.config.yaml"])
    for name, settings in orchestrator["runners"].items():
        assert settings.pop("endpoints") == [f"dns:diamond-{name.replace('_', '-')}.ml:9000"]
        assert objects["Service", f"diamond-{name.replace('_', '-')}"]["spec"]["clusterIP"]
    assert orchestrator == workers


def test_pods_mount_every_file_they_name() -> None:
    objects = objects_of(diamond())
    data = objects["ConfigMap", "diamond-graph"]["data"]
    for name in ("diamond", "diamond-mlp-a"):
        pod = objects["Deployment", name]["spec"]["template"]["spec"]
        (volume,) = pod["volumes"]
        assert volume["configMap"]["name"] == "diamond-graph"
        mounts = {m["mountPath"]: m["subPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["/srv/graph/diamond.yaml"] == "diamond.yaml"
        assert set(mounts.values()) <= set(data)
        config = pod["containers"][0]["command"][-1]
        assert config in mounts


def test_the_token_comes_from_a_secret_never_written() -> None:
    objects = objects_of(diamond())
    assert not any(kind == "Secret" for kind, _ in objects)
    for name in ("diamond", "diamond-mlp-a", "diamond-mlp-b"):
        (container,) = objects["Deployment", name]["spec"]["template"]["spec"]["containers"]
        assert container["env"] == [
            {
                "name": "GRAPHCTL_WORKER_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "diamond-worker-token", "key": "token"}},
            }
        ]


def test_every_object_carries_the_conventional_labels() -> None:
    for obj in kubernetes_objects(diamond(), OPTIONS):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "diamond"
        assert labels["app.kubernetes.io/name"] == obj["metadata"]["name"]
        assert labels["app.kubernetes.io/component"] in {"orchestrator", "runner", "config"}


def test_a_change_of_settings_rolls_the_pods() -> None:
    def config_hash(plan: Plan) -> str:
        template = objects_of(plan)["Deployment", "diamond-mlp-a"]["spec"]["template"]
        return str(template["metadata"]["annotations"]["graphctl.dev/config-hash"])

    assert config_hash(diamond()) == config_hash(diamond())
    assert config_hash(diamond()) != config_hash(diamond("runners.mlp_b.max_queue=10"))


def test_a_name_kubernetes_refuses_is_an_error_naming_it(tmp_path: Path) -> None:
    models = (DIAMOND.parent / "models.py").read_text(encoding="utf-8")
    (tmp_path / "models.py").write_text(models, encoding="utf-8")
    graph = tmp_path / "g.yaml"
    text = DIAMOND.read_text(encoding="utf-8").replace("name: diamond", "name: Diamond_9")
    graph.write_text(text, encoding="utf-8")
    assert ("Deployment", "diamond-9-mlp-a") in objects_of(compile_file(graph))
    graph.write_text(text.replace("name: Diamond_9", "name: diamond_"), encoding="utf-8")
    with pytest.raises(DeployError, match=r"'diamond-'.*not a valid Kubernetes name"):
        kubernetes_objects(compile_file(graph), OPTIONS)


def test_the_folder_is_written_once_and_rewritten_without_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    written = write_kubernetes(diamond(), OPTIONS, out)
    assert [p.name for p in written] == yaml.safe_load(
        (out / "kustomization.yaml").read_text(encoding="utf-8")
    )["resources"]
    assert (out / "graph" / "diamond.yaml").is_file()
    assert (out / "graph" / "models.py").is_file()
    assert (out / "wheels").is_dir()
    (out / "wheels" / "kept.whl").write_text("", encoding="utf-8")
    options = KubernetesOptions(image="x", autoscaler="hpa")
    write_kubernetes(diamond("runners.mlp_a.resources.cpu=1", "runners.mlp_b.resources.cpu=1"),
                     options, out)  # fmt: skip
    assert not list(out.glob("scaledobject-*.yaml"))
    assert len(list(out.glob("horizontalpodautoscaler-*.yaml"))) == 2
    assert (out / "wheels" / "kept.whl").is_file()


def test_a_folder_it_did_not_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DeployError, match="not written by graphctl deploy"):
        write_kubernetes(diamond(), OPTIONS, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_the_dockerfile_installs_the_wheel_and_copies_the_graph(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    write_kubernetes(diamond(), OPTIONS, out)
    lines = (out / "Dockerfile").read_text(encoding="utf-8").splitlines()
    first_instruction = next(line for line in lines if not line.startswith("#"))
    assert first_instruction.startswith("FROM python:")
    copies = [line.split()[1:] for line in lines if line.startswith("COPY ")]
    assert ["graph/", "/srv/graph/"] in copies
    (wheel, _), *_ = copies
    assert wheel.startswith("wheels/graphctl-") and wheel.endswith("-py3-none-any.whl")
    assert any(line.startswith("USER 10001") for line in lines)
