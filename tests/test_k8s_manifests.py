"""deploy/k8s is valid Kubernetes and wires every service the way docs/contract.md says.

Standard resources are validated against the Kubernetes JSON schemas (kubernetes-validate, in
strict mode: an unknown field fails). The KEDA ScaledObjects have no schema there: they are
checked field by field, their topics against each service's own `SPEC.topics`.
"""

from __future__ import annotations

import argparse
import copy
import importlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from fx_common.contracts.topics import SERVICES, consumer_group
from fx_common.http import DEFAULT_PORTS
from fx_common.runtime import ServiceSpec
from fx_common.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
KUSTOMIZATION = "kustomization.yaml"
SECRET_EXAMPLE = "secret.example.yaml"
NAMESPACE = "fenxiao"
CONFIGMAP = "fenxiao-config"
SECRET = "fenxiao-secrets"
IMAGE = "fenxiao:latest"
# The oldest release still commonly run, and the newest the pinned kubernetes-validate knows.
K8S_VERSIONS = ("1.32.0", "1.37.0")
KEDA_API = "keda.sh/v1alpha1"

UVICORN_GRACEFUL_S = 30  # fx_common.http.serve: timeout_graceful_shutdown
RUNTIME_FLUSH_S = 20  # fx_common.runtime.ServiceRuntime.stop: outbox flush bound
PRE_STOP_S = 5

# ScaledObject fields KEDA knows (keda.sh/v1alpha1), and those of its kafka scaler.
SCALED_OBJECT_SPEC_FIELDS = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "advanced", "fallback", "triggers",
}  # fmt: skip
TRIGGER_FIELDS = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
KAFKA_METADATA_FIELDS = {
    "bootstrapServers", "bootstrapServersFromEnv", "consumerGroup", "consumerGroupFromEnv",
    "topic", "topicFromEnv", "lagThreshold", "activationLagThreshold", "offsetResetPolicy",
    "allowIdleConsumers", "excludePersistentLag", "scaleToZeroOnInvalidOffset",
    "limitToPartitionsWithLag", "ensureEvenDistributionOfPartitions", "version",
    "partitionLimitation", "sasl", "tls", "unsafeSsl",
}  # fmt: skip


@dataclass(frozen=True)
class Manifest:
    file: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    @property
    def id(self) -> str:
        return f"{self.file}:{self.kind}/{self.name}"


def load_documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
    return docs


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.iterdir() if p.suffix in {".yaml", ".yml"})


MANIFESTS = [
    Manifest(path.name, doc)
    for path in manifest_files()
    if path.name != KUSTOMIZATION
    for doc in load_documents(path)
]
STANDARD = [m for m in MANIFESTS if m.doc.get("apiVersion") != KEDA_API]


def find(kind: str, name: str) -> Manifest:
    found = [m for m in MANIFESTS if m.kind == kind and m.name == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def container(service: str) -> dict[str, Any]:
    containers = find("Deployment", service).doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{service}: one container per pod"
    found: dict[str, Any] = containers[0]
    return found


def env_of(ctr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in ctr.get("env", [])}


def http_port(service: str) -> int:
    ports = container(service)["ports"]
    assert len(ports) == 1, f"{service}: one container port"
    assert ports[0]["name"] == "http"
    port: int = ports[0]["containerPort"]
    return port


def resolve_port(service: str, ref: int | str) -> int:
    """A probe's or Service's target port: a number, or the name of a container port."""
    if isinstance(ref, int):
        return ref
    named = {p["name"]: p["containerPort"] for p in container(service)["ports"]}
    assert ref in named, f"{service}: no container port named {ref!r}"
    port: int = named[ref]
    return port


def config_data() -> dict[str, Any]:
    data: dict[str, Any] = find("ConfigMap", CONFIGMAP).doc["data"]
    return data


def secret_keys() -> dict[str, str]:
    example = find("Secret", SECRET)
    assert example.file == SECRET_EXAMPLE
    data: dict[str, str] = example.doc["stringData"]
    return data


def database_url_key(service: str) -> str:
    return service.replace("-", "_").upper() + "_DATABASE_URL"


def service_spec(service: str) -> ServiceSpec:
    spec = importlib.import_module(f"{service.replace('-', '_')}.app").SPEC
    assert isinstance(spec, ServiceSpec)
    assert spec.name == service
    return spec


def pod_labels(service: str) -> dict[str, str]:
    labels: dict[str, str] = find("Deployment", service).doc["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def schema_errors(doc: dict[str, Any], version: str) -> str | None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        return f"{path}: {exc.message}"
    return None


# --- the directory as a whole -------------------------------------------------------------


def test_kustomization_lists_every_manifest_except_the_secret_example() -> None:
    kustomization = load_documents(K8S_DIR / KUSTOMIZATION)
    assert len(kustomization) == 1
    doc = kustomization[0]
    assert doc["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert doc["kind"] == "Kustomization"
    assert doc["namespace"] == NAMESPACE
    resources = doc["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    files = {p.name for p in manifest_files()} - {KUSTOMIZATION}
    assert SECRET_EXAMPLE in files
    assert set(resources) == files - {SECRET_EXAMPLE}
    assert "secretGenerator" not in doc, "the real Secret is created by hand (README.md)"


def test_every_kind_is_expected_and_no_hpa_beside_keda() -> None:
    kinds = Counter(m.kind for m in MANIFESTS)
    per_service = {"Deployment", "Service", "PodDisruptionBudget", "ScaledObject", "Job"}
    console = Counter({"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1})
    assert (
        kinds
        == Counter(
            {"Namespace": 1, "ConfigMap": 1, "Secret": 1}
            | {kind: len(SERVICES) for kind in per_service}
        )
        + console
    )
    assert not [m for m in MANIFESTS if m.kind == "HorizontalPodAutoscaler"]


def test_every_resource_lives_in_the_namespace() -> None:
    assert find("Namespace", NAMESPACE).file == "namespace.yaml"
    for manifest in MANIFESTS:
        if manifest.kind != "Namespace":
            assert manifest.doc["metadata"].get("namespace") == NAMESPACE, manifest.id


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("manifest", STANDARD, ids=lambda m: m.id)
def test_standard_resources_match_the_kubernetes_schema(manifest: Manifest, version: str) -> None:
    assert manifest.doc["apiVersion"] != KEDA_API
    errors = schema_errors(manifest.doc, version)
    assert errors is None, f"{manifest.id} against Kubernetes {version}: {errors}"


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The schema check is strict: a misspelt probe would be caught, not silently dropped."""
    doc = copy.deepcopy(find("Deployment", SERVICES[0]).doc)
    doc["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"periodSeconds": 5}
    assert schema_errors(doc, K8S_VERSIONS[-1]) is not None


def test_configmap_holds_the_shared_settings() -> None:
    data = config_data()
    assert data.get("FX_MIGRATE", "off") == "off", "replicas never migrate: the Jobs do"
    assert {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"} <= data.keys()
    assert data["FX_CLOCK"] == "system"
    assert data["FX_HTTP_HOST"] == "0.0.0.0"
    assert urlsplit(data["REDIS_URL"]).scheme == "redis"
    assert int(data["FX_TOPIC_PARTITIONS"]) >= 1
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"
    assert not {"FX_JWT_SECRET", "DATABASE_URL"} & data.keys(), "secrets belong in the Secret"


def test_secret_example_gives_each_service_its_own_database() -> None:
    data = secret_keys()
    assert data["FX_JWT_SECRET"]
    databases = set()
    for service in SERVICES:
        url = urlsplit(data[database_url_key(service)])
        assert url.scheme.startswith("postgresql"), service
        assert url.path == "/fx_" + service.replace("-", "_"), service
        databases.add(url.path)
    assert len(databases) == len(SERVICES)


def test_readme_tells_how_to_create_the_secret_and_apply() -> None:
    readme = (K8S_DIR / "README.md").read_text(encoding="utf-8")
    assert "kubectl apply -k deploy/k8s" in readme
    for word in (SECRET, "FX_JWT_SECRET", *(database_url_key(s) for s in SERVICES)):
        assert word in readme, word


def test_the_console_calls_each_service_through_its_service() -> None:
    ctr = container("console")
    assert ctr["command"] == ["fx-console"] and ctr["image"] == IMAGE
    assert http_port("console") == 8105
    env = env_of(ctr)
    for service in SERVICES:
        url = urlsplit(env[f"FX_{service.replace('-', '_').upper()}_URL"]["value"])
        assert url.hostname == find("Service", service).name
        assert url.port == http_port(service) == DEFAULT_PORTS[service]
    for key in ("FX_JWT_SECRET", "FX_CONSOLE_CSRF_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": key}
        assert secret_keys()[key]
    assert "DATABASE_URL" not in env, "the console has no store"
    assert find("Service", "console").doc["spec"]["ports"][0]["port"] == 8105


# --- per service ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_runs_the_service(service: str) -> None:
    deployment = find("Deployment", service).doc
    ctr = container(service)
    assert ctr["image"] == IMAGE
    assert ctr["command"] == [f"fx-{service}"]
    port = http_port(service)
    assert port == DEFAULT_PORTS[service]
    env = env_of(ctr)
    assert env["FX_HTTP_PORT"]["value"] == str(port)
    assert {"configMapRef": {"name": CONFIGMAP}} in ctr["envFrom"]
    for name, key in (("DATABASE_URL", database_url_key(service)), ("FX_JWT_SECRET", None)):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == SECRET
        assert ref["key"] == (key or name)
        assert ref["key"] in secret_keys(), f"{ref['key']} is not in {SECRET_EXAMPLE}"
    assert "replicas" not in deployment["spec"], "the KEDA-made HPA owns the replica count"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels(service).items()


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_probes(service: str) -> None:
    ctr = container(service)
    port = http_port(service)
    expected = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": None}
    for probe_name, path in expected.items():
        probe = ctr[probe_name]
        get = probe["httpGet"]
        assert path is None or get["path"] == path, f"{probe_name} must GET {path}"
        assert get["path"] in {"/readyz", "/healthz"}
        assert resolve_port(service, get["port"]) == port, probe_name
        assert probe["timeoutSeconds"] < probe["periodSeconds"], probe_name
    startup = ctr["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, (
        "the runtime waits for the broker before uvicorn answers: allow it a while"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_drains_gracefully(service: str) -> None:
    pod = find("Deployment", service).doc["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > UVICORN_GRACEFUL_S
    assert grace >= PRE_STOP_S + UVICORN_GRACEFUL_S + RUNTIME_FLUSH_S
    pre_stop = container(service)["lifecycle"]["preStop"]
    sleep = pre_stop.get("sleep", {}).get("seconds") or pre_stop["exec"]["command"]
    assert sleep in (PRE_STOP_S, ["sleep", str(PRE_STOP_S)])


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_resources_and_security(service: str) -> None:
    pod = find("Deployment", service).doc["spec"]["template"]["spec"]
    ctr = container(service)
    resources = ctr["resources"]
    assert resources["requests"] == {"cpu": "250m", "memory": "256Mi"}
    assert resources["limits"] == {"memory": "384Mi"}, "a memory limit and no CPU limit"
    pod_security = pod.get("securityContext", {})
    ctr_security = ctr.get("securityContext", {})
    assert pod_security.get("runAsNonRoot") or ctr_security.get("runAsNonRoot")
    uid = ctr_security.get("runAsUser", pod_security.get("runAsUser"))
    assert isinstance(uid, int) and uid > 0, "a numeric uid lets the kubelet check non-root"
    assert ctr_security["readOnlyRootFilesystem"] is True
    assert ctr_security["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_is_scraped_by_prometheus(service: str) -> None:
    annotations = find("Deployment", service).doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(http_port(service))
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("service", SERVICES)
def test_service_exposes_the_http_port(service: str) -> None:
    spec = find("Service", service).doc["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    [port] = spec["ports"]
    assert port["name"] == "http"
    assert port["port"] == http_port(service)
    assert resolve_port(service, port.get("targetPort", port["port"])) == http_port(service)
    assert spec["selector"].items() <= pod_labels(service).items()


@pytest.mark.parametrize("service", SERVICES)
def test_disruption_budget_lets_one_pod_go(service: str) -> None:
    spec = find("PodDisruptionBudget", service).doc["spec"]
    assert spec["maxUnavailable"] == 1
    assert "minAvailable" not in spec
    assert spec["selector"]["matchLabels"].items() <= pod_labels(service).items()


@pytest.mark.parametrize("service", SERVICES)
def test_scaled_object_scales_on_the_lag_of_the_service_inputs(service: str) -> None:
    scaled = find("ScaledObject", service)
    assert scaled.doc["apiVersion"] == KEDA_API
    spec = scaled.doc["spec"]
    assert spec.keys() <= SCALED_OBJECT_SPEC_FIELDS, spec.keys() - SCALED_OBJECT_SPEC_FIELDS

    target = spec["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target.get("apiVersion", "apps/v1") == "apps/v1"
    deployment = find("Deployment", target["name"])
    assert deployment.name == service
    assert deployment.doc["metadata"]["namespace"] == scaled.doc["metadata"]["namespace"]

    partitions = int(config_data()["FX_TOPIC_PARTITIONS"])
    assert partitions == ServiceSettings.model_fields["topic_partitions"].default
    assert spec["minReplicaCount"] == 1
    assert spec["maxReplicaCount"] == partitions, "more replicas than partitions sit idle"

    triggers = spec["triggers"]
    names = [t.get("name") for t in triggers if "name" in t]
    assert len(names) == len(set(names)), "trigger names must be unique"
    topics = []
    for trigger in triggers:
        assert trigger.keys() <= TRIGGER_FIELDS, trigger.keys() - TRIGGER_FIELDS
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert meta.keys() <= KAFKA_METADATA_FIELDS, meta.keys() - KAFKA_METADATA_FIELDS
        assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata values are strings"
        assert meta["bootstrapServers"] == config_data()["KAFKA_BOOTSTRAP_SERVERS"]
        assert meta["consumerGroup"] == consumer_group(service) == f"fx-{service}"
        assert meta["lagThreshold"] == "500"
        assert meta["allowIdleConsumers"] == "false"
        assert meta.get("offsetResetPolicy", "latest") == "earliest", "the consumer's policy"
        topics.append(meta["topic"])
    assert sorted(topics) == sorted(service_spec(service).topics), "one trigger per input topic"


@pytest.mark.parametrize("service", SERVICES)
def test_the_hpa_keda_derives_is_valid(service: str) -> None:
    """KEDA turns the ScaledObject into an autoscaling/v2 HPA: that one must validate too."""
    spec = find("ScaledObject", service).doc["spec"]
    hpa_config = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
    hpa: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"keda-hpa-{service}", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
            "minReplicas": spec["minReplicaCount"],
            "maxReplicas": spec["maxReplicaCount"],
        },
    }
    if "behavior" in hpa_config:
        hpa["spec"]["behavior"] = hpa_config["behavior"]
    for version in K8S_VERSIONS:
        errors = schema_errors(hpa, version)
        assert errors is None, f"{service} HPA against Kubernetes {version}: {errors}"


# --- migrations: a Job per store, replicas only wait ------------------------------------------


def migration_job(service: str) -> dict[str, Any]:
    job = find("Job", f"{service}-migrate")
    assert job.file == f"{service}.yaml"
    doc: dict[str, Any] = job.doc
    return doc


def parses(argv: list[str]) -> argparse.Namespace:
    """The command line as `fx_common.cli` reads it (a typo in a manifest fails here)."""
    from fx_common.cli import _parser

    service = argv[0].removeprefix("fx-")
    assert service in SERVICES, argv
    return _parser(service).parse_args(argv[1:])


@pytest.mark.parametrize("service", SERVICES)
def test_a_job_migrates_each_store_once_per_release(service: str) -> None:
    job = migration_job(service)
    spec = job["spec"]
    assert spec.get("parallelism", 1) == 1 and spec.get("completions", 1) == 1
    assert spec["backoffLimit"] >= 1, "retried while Postgres is not reachable yet"
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] in {"Never", "OnFailure"}
    [ctr] = pod["containers"]
    assert ctr["image"] == IMAGE
    args = parses(ctr["command"])
    assert args.command == "migrate" and not args.check and args.wait is None
    assert service_spec(service).migrations is not None
    ref = env_of(ctr)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == env_of(container(service))["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
    assert ctr["securityContext"]["allowPrivilegeEscalation"] is False
    labels = spec["template"]["metadata"]["labels"]
    assert not pod_labels(service).items() <= labels.items(), (
        "the Job's pod must not count as a replica (Service endpoints, PodDisruptionBudget)"
    )
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"


@pytest.mark.parametrize("service", SERVICES)
def test_replicas_wait_for_the_migration_and_never_run_it(service: str) -> None:
    pod = find("Deployment", service).doc["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    assert init["image"] == IMAGE
    args = parses(init["command"])
    assert args.command == "migrate" and args.wait is not None and args.wait >= 60
    ref = env_of(init)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == env_of(container(service))["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    ctr = container(service)
    assert parses(ctr["command"]).command is None, "the replica serves"
    assert "FX_MIGRATE" not in env_of(ctr) and "FX_MIGRATE" not in env_of(init)


def test_the_readme_says_how_a_release_migrates() -> None:
    readme = (K8S_DIR / "README.md").read_text(encoding="utf-8")
    assert "delete job -l app.kubernetes.io/component=migration" in readme
    assert "fx-<service> migrate" in readme
