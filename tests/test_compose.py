"""docker-compose.yml is valid and wires every service the way docs/contract.md says.

`docker-compose config -q` (v1) and `docker compose config -q` (v2) validate the file without an
engine; whichever is installed is used. The structure checks run everywhere. `make
compose-test` (deploy/containers/compose-test.sh) runs the file for real.
"""

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
COMPOSE_TEST_FILE = REPO_ROOT / "deploy" / "containers" / "compose-test.yml"
CONTAINERS = REPO_ROOT / "deploy" / "containers"
FX_SERVICES = {
    "referral-binding": 8101,
    "qualification": 8102,
    "commission": 8103,
    "payout": 8104,
}
TOPIC_BROWSER = "kafka-ui"


def compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=60, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def test_compose_cli_accepts_the_file() -> None:
    cli = compose_cli()
    assert cli is not None, "docker-compose is missing: deploy/install-deps.sh installs it"
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_cli_accepts_the_test_override_and_image_variables() -> None:
    cli = compose_cli()
    assert cli is not None
    local = {
        "FX_KAFKA_IMAGE": "localhost/fx-kafka:4.1.1",
        "FX_POSTGRES_IMAGE": "localhost/fx-postgres:15",
        "FX_REDIS_IMAGE": "localhost/fx-redis:7",
        "FX_IMAGE": "localhost/fenxiao:local",
    }
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "-f", str(COMPOSE_TEST_FILE), "config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **local},
    )
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)["services"]
    assert merged["kafka"]["image"] == local["FX_KAFKA_IMAGE"]
    assert merged["postgres"]["image"] == local["FX_POSTGRES_IMAGE"]
    assert merged["redis"]["image"] == local["FX_REDIS_IMAGE"]
    assert {merged[name]["image"] for name in FX_SERVICES} == {local["FX_IMAGE"]}
    advertised = environment(merged["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert "PLAINTEXT://kafka:9092" in advertised.split(",")
    assert "HOST://127.0.0.1:29092" in advertised.split(",")


def test_the_compose_test_publishes_only_high_ports_on_loopback() -> None:
    """Never the shared 9092/6379/5432 or 810x: a compose test runs beside local clusters."""
    cli = compose_cli()
    assert cli is not None
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "-f", str(COMPOSE_TEST_FILE), "config"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)["services"]
    override = yaml.safe_load(COMPOSE_TEST_FILE.read_text(encoding="utf-8"))["services"]
    assert "commission" not in override, "commission is scaled: a host port would collide"
    published = {}
    for name in override:
        for port in merged[name]["ports"]:
            host, host_port, _target = str(port).split(":")
            published[name] = (host, int(host_port))
    assert published == {
        "kafka": ("127.0.0.1", 29092),
        "referral-binding": ("127.0.0.1", 28101),
        "qualification": ("127.0.0.1", 28102),
        "payout": ("127.0.0.1", 28104),
    }


def test_infrastructure_is_present(services: dict[str, dict[str, Any]]) -> None:
    """Official images by default; the variables let a registry-less machine use local ones."""
    assert services["kafka"]["image"] == "${FX_KAFKA_IMAGE:-apache/kafka:4.1.1}"
    assert services["postgres"]["image"] == "${FX_POSTGRES_IMAGE:-postgres:16}"
    assert services["redis"]["image"] == "${FX_REDIS_IMAGE:-redis:7}"
    assert services[TOPIC_BROWSER]["image"].startswith("kafbat/kafka-ui")
    assert services[TOPIC_BROWSER]["profiles"] == ["ui"], "no local image: opt-in only"
    browser_env = environment(services[TOPIC_BROWSER])
    assert browser_env["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:9092"


def test_kafka_runs_kraft_single_node(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092,CONTROLLER://kafka:9093"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_postgres_creates_one_database_per_service(services: dict[str, dict[str, Any]]) -> None:
    mounts = services["postgres"]["volumes"]
    init = [m for m in mounts if "/docker-entrypoint-initdb.d/" in m]
    assert len(init) == 1
    host_path = init[0].split(":", 1)[0]
    sql = (REPO_ROOT / host_path).read_text(encoding="utf-8")
    for name in FX_SERVICES:
        assert f"CREATE DATABASE fx_{name.replace('-', '_')};" in sql


@pytest.mark.parametrize(("name", "port"), sorted(FX_SERVICES.items()))
def test_fx_service(services: dict[str, dict[str, Any]], name: str, port: int) -> None:
    service = services[name]
    assert service["build"]["dockerfile"] == "Dockerfile"
    assert (REPO_ROOT / service["build"]["context"] / "Dockerfile").is_file()
    assert service["build"]["args"]["PYTHON_IMAGE"] == "${FX_PYTHON_IMAGE:-python:3.11-slim}"
    assert service["image"] == "${FX_IMAGE:-fenxiao:local}"
    assert service["command"] == [f"fx-{name}"]
    env = environment(service)
    database = f"fx_{name.replace('-', '_')}"
    assert env["DATABASE_URL"] == f"postgresql+psycopg://fx:fx@postgres:5432/{database}"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert "FX_JWT_SECRET" in env
    assert env["FX_MIGRATE"] == "${FX_MIGRATE:-off}", "stores are upgraded by the one-shot"
    assert service["depends_on"][f"{name}-migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert env["FX_HTTP_PORT"] == str(port)
    assert [str(p) for p in service["expose"]] == [str(port)]
    assert "container_name" not in service, "a fixed container name prevents --scale"
    probe = " ".join(service["healthcheck"]["test"])
    assert "urllib" in probe
    assert f"127.0.0.1:{port}/readyz" in probe
    assert set(service["depends_on"]) >= {"kafka", "postgres", "redis"}


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    running = {name: svc for name, svc in services.items() if svc.get("restart") != "no"}
    assert [name for name, svc in running.items() if "healthcheck" not in svc] == []


@pytest.mark.parametrize("name", sorted(FX_SERVICES))
def test_each_store_is_migrated_once_by_a_one_shot(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """Not in every replica: `fx-<service> migrate` runs once, before the service starts."""
    migrate = services[f"{name}-migrate"]
    assert migrate["command"] == [f"fx-{name}", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["image"] == services[name]["image"]
    assert environment(migrate)["DATABASE_URL"] == environment(services[name])["DATABASE_URL"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "ports" not in migrate and "container_name" not in migrate


def test_only_the_topic_browser_publishes_a_host_port(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {name for name, svc in services.items() if svc.get("ports")}
    # Grafana (profile `observability`) and the console are UIs like the topic browser;
    # nothing scales them. The console is published on the host's loopback only.
    assert published == {TOPIC_BROWSER, "grafana", "console"}
    assert services["console"]["ports"] == ["127.0.0.1:8105:8105"]
    assert services[TOPIC_BROWSER]["ports"] == ["8080:8080"]


def test_the_console_calls_the_services_in_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    console = services["console"]
    assert console["command"] == ["fx-console"] and console["image"] == "${FX_IMAGE:-fenxiao:local}"
    assert console["profiles"] == ["console"], "opt-in: make compose-test runs the services"
    env = environment(console)
    for name, port in FX_SERVICES.items():
        variable = f"FX_{name.replace('-', '_').upper()}_URL"
        assert env[variable] == f"http://{name}:{port}"
        assert console["depends_on"][name] == {"condition": "service_healthy"}
    assert "DATABASE_URL" not in env and "KAFKA_BOOTSTRAP_SERVERS" not in env, "no store, no broker"


def test_dockerfile_builds_the_workspace() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    assert dockerfile.count("FROM ${PYTHON_IMAGE}") == 2, "a build stage and a runtime stage"
    assert "uv sync --frozen --no-dev --all-packages" in dockerfile
    assert (REPO_ROOT / ".dockerignore").is_file()
    runtime = dockerfile.rsplit("FROM ${PYTHON_IMAGE}", 1)[1]
    assert "USER fx" in runtime and "fx:x:10001:10001" in runtime, "non-root, the k8s uid"
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime


@pytest.mark.parametrize(
    ("image", "base_arg"),
    [("kafka", "BASE_IMAGE"), ("postgres", "BASE_IMAGE"), ("redis", "BASE_IMAGE")],
)
def test_local_images_build_from_the_local_base(image: str, base_arg: str) -> None:
    containerfile = (CONTAINERS / image / "Containerfile").read_text(encoding="utf-8")
    assert f"ARG {base_arg}=localhost/fx-debian-base:bookworm" in containerfile
    assert f"FROM ${{{base_arg}}}" in containerfile


def test_kafka_image_reads_the_environment_like_the_official_one() -> None:
    spec = importlib.util.spec_from_file_location(
        "entrypoint", CONTAINERS / "kafka" / "entrypoint.py"
    )
    assert spec is not None and spec.loader is not None
    entrypoint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entrypoint)
    assert entrypoint.property_name("KAFKA_LOG_DIRS") == "log.dirs"
    assert (
        entrypoint.property_name("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP")
        == "listener.security.protocol.map"
    )
    assert entrypoint.property_name("KAFKA_CONFLUENT__SUPPORT") == "confluent_support"
    assert entrypoint.property_name("KAFKA_SOME___THING") == "some-thing"
