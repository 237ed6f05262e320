"""docker-compose.kafka-cluster.yml turns the compose cluster's Kafka into three KRaft nodes
with the local cluster's guarantees, and points every client at all three.

Validated with the compose CLI (no engine needed) on the merged configuration it prints.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fx_common.runtime import replication_for
from tests.test_compose import compose_cli

REPO_ROOT = Path(__file__).resolve().parents[1]
FILES = ["docker-compose.yml", "docker-compose.kafka-cluster.yml"]
NODES = {"kafka": 1, "kafka-2": 2, "kafka-3": 3}
BOOTSTRAP = "kafka:9092,kafka-2:9092,kafka-3:9092"


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    cli = compose_cli()
    assert cli is not None, "docker-compose is installed by deploy/install-deps.sh"
    args = [a for f in FILES for a in ("-f", str(REPO_ROOT / f))]
    result = subprocess.run(
        [*cli, *args, "config"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def env(service: dict[str, Any]) -> dict[str, str]:
    found = service.get("environment", {})
    if isinstance(found, list):
        found = dict(item.split("=", 1) for item in found)
    return {k: str(v) for k, v in found.items()}


def test_three_combined_nodes_in_one_quorum(merged: dict[str, Any]) -> None:
    services = merged["services"]
    voters = {f"{n}@{name}:9093" for name, n in NODES.items()}
    for name, node_id in NODES.items():
        e = env(services[name])
        assert e["KAFKA_NODE_ID"] == str(node_id)
        assert e["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert set(e["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert e["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
    cluster_ids = {env(services[name])["CLUSTER_ID"] for name in NODES}
    assert len(cluster_ids) == 1


def test_three_copies_and_a_min_isr_of_two(merged: dict[str, Any]) -> None:
    factor, min_isr = replication_for(len(NODES))
    for name in NODES:
        e = env(merged["services"][name])
        assert e["KAFKA_DEFAULT_REPLICATION_FACTOR"] == str(factor)
        assert e["KAFKA_MIN_INSYNC_REPLICAS"] == str(min_isr)
        assert e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == str(factor)
        assert e["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == str(factor)
        assert e["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == str(min_isr)
        assert e["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"


def test_every_client_bootstraps_from_all_three(merged: dict[str, Any]) -> None:
    services = merged["services"]
    for name in ("referral-binding", "qualification", "commission", "payout"):
        assert env(services[name])["KAFKA_BOOTSTRAP_SERVERS"] == BOOTSTRAP, name
        assert "kafka" in services[name]["depends_on"], name
    assert env(services["kafka-ui"])["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == BOOTSTRAP
