"""Shared fixtures: the real broker, real stores, and helpers to publish and read topics."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from fx_common.testing import fresh_postgres_database
from tests.kafka_helpers import bootstrap_servers
from tests.probing import Probe

# The three-node cluster tests (tests/cluster) start their own brokers and run for minutes:
# `make test-cluster` runs them (FX_CLUSTER_TESTS=1), `make test` does not.
collect_ignore = [] if os.environ.get("FX_CLUSTER_TESTS") else ["cluster"]


@pytest.fixture(scope="session")
def bootstrap() -> str:
    return bootstrap_servers()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    """Probe processes a test started; any still running afterwards is killed."""
    started: list[Probe] = []
    yield started
    for probe in started:
        if probe.proc is not None and probe.proc.poll() is None:
            probe.proc.kill()


@pytest.fixture
def make_topics(bootstrap: str) -> object:
    async def create(*names: str, partitions: int = 3) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
        finally:
            await admin.close()

    return create


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store a service runs on: an SQLite file, or a fresh Postgres database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it")
    with fresh_postgres_database(server) as url:
        yield url
