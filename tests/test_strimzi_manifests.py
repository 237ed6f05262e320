"""deploy/k8s/strimzi/kafka-cluster.yaml is a valid Strimzi cluster with the local cluster's
guarantees, and declares exactly the topics the services use.

Every resource is validated against the CRD schema Strimzi's own generator makes for its
release (deploy/k8s/strimzi/crds.sh, jars from Maven Central), strictly: a field the schema
does not name fails, as `kubectl apply --validate=strict` would.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from fx_common.runtime import all_topics, replication_for

REPO_ROOT = Path(__file__).resolve().parents[1]
STRIMZI = REPO_ROOT / "deploy" / "k8s" / "strimzi"
MANIFEST = STRIMZI / "kafka-cluster.yaml"


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the strict openAPIV3Schema of each generated CRD version."""
    out = tmp_path_factory.mktemp("strimzi-crds")
    result = subprocess.run(
        ["bash", str(STRIMZI / "crds.sh"), str(out)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    found = {}
    for path in sorted(out.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            found[(f"{group}/{version['name']}", kind)] = schema
    assert {kind for _, kind in found} == {"Kafka", "KafkaNodePool", "KafkaTopic"}
    return found


def strict(schema: Any) -> Any:
    """No field beyond those named, except where the CRD keeps unknown fields (e.g. `config`)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if d]
    assert all(isinstance(d, dict) for d in docs)
    return docs


def errors(doc: dict[str, Any], schemas: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    schema = schemas.get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, f"no CRD for {doc['apiVersion']} {doc['kind']}"
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_every_resource_matches_its_strimzi_crd(
    documents: list[dict[str, Any]], schemas: dict[tuple[str, str], dict[str, Any]]
) -> None:
    for doc in documents:
        assert errors(doc, schemas) == [], f"{doc['kind']}/{doc['metadata']['name']}"


def test_the_validation_refuses_what_strimzi_would_refuse(
    documents: list[dict[str, Any]], schemas: dict[tuple[str, str], dict[str, Any]]
) -> None:
    pool = copy.deepcopy(next(d for d in documents if d["kind"] == "KafkaNodePool"))
    pool["spec"]["replicas"] = "three"
    pool["spec"]["role"] = ["broker"]  # a misspelt field
    found = errors(pool, schemas)
    assert any("replicas" in e for e in found) and any("role" in e for e in found), found
    topic = copy.deepcopy(next(d for d in documents if d["kind"] == "KafkaTopic"))
    topic["spec"]["partitons"] = 3
    assert errors(topic, schemas)


def test_three_combined_nodes_three_copies_and_a_min_isr_of_two(
    documents: list[dict[str, Any]],
) -> None:
    factor, min_isr = replication_for(3)
    (pool,) = (d for d in documents if d["kind"] == "KafkaNodePool")
    (kafka,) = (d for d in documents if d["kind"] == "Kafka")
    assert pool["spec"]["replicas"] == factor
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == factor
    assert config["min.insync.replicas"] == min_isr
    assert config["offsets.topic.replication.factor"] == factor
    assert config["transaction.state.log.min.isr"] == min_isr
    assert config["unclean.leader.election.enable"] is False


def test_the_topics_are_exactly_those_the_services_use(documents: list[dict[str, Any]]) -> None:
    factor, min_isr = replication_for(3)
    topics = {
        d.get("spec", {}).get("topicName", d["metadata"]["name"]): d
        for d in documents
        if d["kind"] == "KafkaTopic"
    }
    assert set(topics) == set(all_topics())
    for name, doc in topics.items():
        spec = doc["spec"]
        assert spec["replicas"] == factor, name
        assert spec["config"]["min.insync.replicas"] == str(min_isr), name
        assert spec["config"]["retention.ms"] == "-1", f"{name}: replays read from offset 0"
        assert spec["partitions"] == (1 if name.endswith("fx.clock.v1") else 3), name
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "fenxiao"
