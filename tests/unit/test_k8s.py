"""deploy/k8s/ checked against the Kubernetes schemas (kubernetes-validate, strict: unknown fields
are errors) and KEDA's ScaledObject against deploy/k8s/schemas/ (written from KEDA's CRD)."""

from __future__ import annotations

import copy
import json
import re
import sys
from dataclasses import fields
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared import tasks
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
WORKER_QUEUES = ("scrapy", "playwright", "spiders", "webhooks", "maintenance")
SCALED_OBJECT_SCHEMA = json.loads((K8S / "schemas" / "keda-scaledobject-v1alpha1.json").read_text())


def documents() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def secret_keys(deployment: dict) -> set[str]:
    return {
        e["valueFrom"]["secretKeyRef"]["key"]
        for e in container(deployment).get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def kombu_lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps a queue in: one per priority step (tests/integration checks
    that kombu really writes these)."""
    options = tasks.broker_transport_options(3600)
    return [
        queue if not step else f"{queue}{options['sep']}{step}"
        for step in options["priority_steps"]
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_resource_is_valid_against_the_schemas(version):
    kinds = set()
    for _name, doc in documents():
        if doc["kind"] != "ScaledObject":
            kubernetes_validate.validate(doc, version, strict=True)
            kinds.add(doc["kind"])
    assert kinds == {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


def test_the_validator_rejects_an_unknown_field():
    deployment = copy.deepcopy(by_kind("Deployment")["api"])
    deployment["spec"]["replica"] = 3  # a typo: strict validation must catch it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_scaled_objects_are_valid_keda_resources():
    validator = jsonschema.Draft202012Validator(SCALED_OBJECT_SCHEMA)
    scaled = by_kind("ScaledObject")
    assert set(scaled) == {f"worker-{q}" for q in WORKER_QUEUES}
    for name, doc in scaled.items():
        validator.validate(doc)
        # KEDA builds an HPA from the object: its behavior is Kubernetes' own type
        behavior = doc["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": f"keda-hpa-{name}"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "maxReplicas": doc["spec"]["maxReplicaCount"],
                "behavior": behavior,
            },
        }
        kubernetes_validate.validate(hpa, KUBERNETES_VERSIONS[-1], strict=True)
    broken = copy.deepcopy(scaled["worker-scrapy"])
    del broken["spec"]["triggers"][0]["metadata"]["listName"]
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(scaled["worker-scrapy"])
    broken["spec"]["minReplica"] = 1
    assert not validator.is_valid(broken)


@pytest.mark.parametrize("queue", WORKER_QUEUES)
def test_each_worker_kind_is_scaled_on_every_priority_list_of_its_queue(queue):
    name = f"worker-{queue}"
    deployment = by_kind("Deployment")[name]
    command = container(deployment)["command"]
    assert command[:5] == ["celery", "-A", "workers", "worker", "-Q"] and command[5] == queue
    assert command[command.index("-n") + 1] == f"{queue}@%h"  # what the readiness check pings
    scaled = by_kind("ScaledObject")[name]["spec"]
    assert scaled["scaleTargetRef"]["name"] == name and scaled["minReplicaCount"] >= 1
    triggers = scaled["triggers"]
    assert [t["metadata"]["listName"] for t in triggers] == kombu_lists(queue)
    assert {t["type"] for t in triggers} == {"redis"}
    addresses = {t["metadata"]["addressFromEnv"] for t in triggers}
    assert addresses == {"KEDA_REDIS_ADDRESS"}
    assert "KEDA_REDIS_ADDRESS" in by_kind("ConfigMap")["scrapemaster-config"]["data"]
    # one metric, the sum of the lists: the max of ten (KEDA's default) would undercount
    formula = scaled["advanced"]["scalingModifiers"]["formula"]
    assert sorted(part.strip() for part in formula.split("+")) == sorted(
        t["name"] for t in triggers
    )


@pytest.mark.parametrize("queue", WORKER_QUEUES)
def test_worker_probes_are_the_readiness_check_and_shutdown_fits_the_grace(queue):
    deployment = by_kind("Deployment")[f"worker-{queue}"]
    worker = container(deployment)
    ready = ["python", "-m", "workers.ready", queue]
    for probe in ("startupProbe", "readinessProbe"):
        assert worker[probe]["exec"]["command"][:4] == ready, probe
    # alive: the file its event loop touches, not the broker (a Redis outage is not a hang)
    assert worker["livenessProbe"]["exec"]["command"] == ["python", "-m", "shared.liveness"]
    grace = float(
        by_kind("ConfigMap")["scrapemaster-config"]["data"]["WORKER_SHUTDOWN_GRACE_SECONDS"]
    )
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= grace + 30
    rollout = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0  # the new pod is up before the old one hands back


@pytest.mark.parametrize("name", ["worker-scrapy", "beat", "scheduler"])
def test_a_hung_process_fails_its_liveness_probe_within_the_timeout(name):
    config = by_kind("ConfigMap")["scrapemaster-config"]["data"]
    assert config["LIVENESS_FILE"].startswith("/tmp/")  # each pod's own, writable /tmp
    timeout = float(config["LIVENESS_TIMEOUT_SECONDS"])
    Settings.from_env(dict(config, MONGO_URL="mongodb://m")).validate()
    deployment = by_kind("Deployment")[name]
    process = container(deployment)
    probe = process["livenessProbe"]
    assert probe["exec"]["command"] == ["python", "-m", "shared.liveness"]
    # noticed within the timeout plus two probe periods, not ten minutes later
    assert probe["periodSeconds"] * probe["failureThreshold"] <= timeout / 2
    mounts = {m["mountPath"] for m in process.get("volumeMounts", [])}
    assert "/tmp" in mounts, name
    if name != "worker-scrapy":  # until the first tick (a standby beat waits for its lock)
        start = process["startupProbe"]
        assert start["exec"]["command"] == probe["exec"]["command"]
        assert start["periodSeconds"] * start["failureThreshold"] >= 120


def test_api_scales_on_cpu_and_its_probes_use_the_health_endpoints():
    api = container(by_kind("Deployment")["api"])
    assert api["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/api/v1/health"
    assert api["resources"]["requests"]["cpu"]  # an HPA on CPU needs a request
    hpa = by_kind("HorizontalPodAutoscaler")["api"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "api"
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert by_kind("Service")["api"]["spec"]["ports"][0]["targetPort"] == "http"


def test_beat_and_scheduler_run_single_replicas_and_flower_has_a_service():
    deployments = by_kind("Deployment")
    assert deployments["beat"]["spec"]["replicas"] == 1
    assert deployments["beat"]["spec"]["strategy"]["type"] == "Recreate"
    assert deployments["scheduler"]["spec"]["replicas"] == 1
    assert container(deployments["flower"])["command"][:4] == ["celery", "-A", "workers", "flower"]
    assert by_kind("Service")["flower"]["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_secrets_reach_only_the_processes_that_use_them():
    deployments = by_kind("Deployment")
    example = (K8S / "secrets.env.example").read_text()
    offered = set(re.findall(r"^([A-Z_]+)=", example, flags=re.MULTILINE))
    for name, deployment in deployments.items():
        keys = secret_keys(deployment)
        assert keys <= offered, name
        assert {"REDIS_URL", "MONGO_URL"} <= keys, name
        assert ("JWT_SECRET_KEY" in keys) == (name == "api"), name
        assert ("FLOWER_PASSWORD" in keys) == (name == "flower"), name
        assert container(deployment)["image"] == "scrapemaster:latest", name
    config = by_kind("ConfigMap")["scrapemaster-config"]["data"]
    assert not {"JWT_SECRET_KEY", "MONGO_URL", "REDIS_URL", "FLOWER_PASSWORD"} & set(config)


def test_config_map_holds_only_real_settings():
    known = {f.name.upper() for f in fields(Settings)} | {"KEDA_REDIS_ADDRESS"}
    procfile = (ROOT / "deploy" / "Procfile").read_text()
    known |= set(re.findall(r"\$\{([A-Z_]+)", procfile))  # read by the process lists only
    config = by_kind("ConfigMap")["scrapemaster-config"]["data"]
    assert set(config) <= known, set(config) - known
    assert config["ENV"] == "production" and config["PRIVATE_TARGETS"] == "block"


def test_kustomization_lists_every_manifest_and_the_procfile_processes_are_all_there():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert (K8S / ".gitignore").read_text().split() == ["secrets.env"]
    sys.path.insert(0, str(ROOT / "deploy"))
    from local import read_procfile

    deployments = by_kind("Deployment")
    for name, command in read_procfile().items():
        words = command.replace("env ", "").split()
        program = next(w for w in words if w in ("python", "celery"))
        assert container(deployments[name])["command"][0] == program, name
