"""docker-compose.yml is valid and wires every service the way docs/contract.md says.

No Docker engine runs here, but `docker-compose config -q` (v1) and `docker compose config -q`
(v2) validate the file without one; whichever is installed is used. The structure checks run
everywhere.
"""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
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


def test_infrastructure_is_present(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services[TOPIC_BROWSER]["image"].startswith("kafbat/kafka-ui")
    browser_env = environment(services[TOPIC_BROWSER])
    assert browser_env["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:9092"


def test_kafka_runs_kraft_single_node(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
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
    assert service["command"] == ["uv", "run", "--no-sync", f"fx-{name}"]
    env = environment(service)
    database = f"fx_{name.replace('-', '_')}"
    assert env["DATABASE_URL"] == f"postgresql+psycopg://fx:fx@postgres:5432/{database}"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert "FX_JWT_SECRET" in env
    assert env["FX_HTTP_PORT"] == str(port)
    assert [str(p) for p in service["expose"]] == [str(port)]
    assert "container_name" not in service, "a fixed container name prevents --scale"
    probe = " ".join(service["healthcheck"]["test"])
    assert "urllib" in probe
    assert f"127.0.0.1:{port}/readyz" in probe
    assert set(service["depends_on"]) >= {"kafka", "postgres", "redis"}


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    assert [name for name, svc in services.items() if "healthcheck" not in svc] == []


def test_only_the_topic_browser_publishes_a_host_port(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {TOPIC_BROWSER}
    assert services[TOPIC_BROWSER]["ports"] == ["8080:8080"]


def test_dockerfile_builds_the_workspace() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in dockerfile
    assert "uv sync --frozen --no-dev --all-packages" in dockerfile
    assert (REPO_ROOT / ".dockerignore").is_file()
