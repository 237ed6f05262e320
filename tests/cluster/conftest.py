"""The three-node cluster these tests run on: its own ports (19092-19094, controllers
19192-19194) and its own var directory, started fresh once per session and stopped at the end.

    FX_CLUSTER_VAR         where its data and logs go (default <repo>/var/test-cluster)
    FX_CLUSTER_KAFKA_PORT  first client port (default 19092; controllers at +100)
    FX_CLUSTER_ORDERS      orders per scenario (default 20000; CI runs 5000)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.cluster.kafka_cluster import REPO, KafkaCluster


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    var = Path(os.environ.get("FX_CLUSTER_VAR", str(REPO / "var" / "test-cluster")))
    port = int(os.environ.get("FX_CLUSTER_KAFKA_PORT", "19092"))
    cluster = KafkaCluster(var.resolve(), port)
    cluster.reset()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def kafka(kafka_cluster: KafkaCluster) -> AsyncIterator[KafkaCluster]:
    """The cluster with all three nodes up and serving (whatever the previous test did)."""
    for node in range(1, kafka_cluster.nodes + 1):
        if kafka_cluster.running(node):
            kafka_cluster.resume(node)  # a node frozen by a failed test
    kafka_cluster.start()
    await kafka_cluster.wait_brokers(kafka_cluster.nodes)
    yield kafka_cluster


@pytest.fixture(scope="session")
def orders() -> int:
    return int(os.environ.get("FX_CLUSTER_ORDERS", "20000"))
