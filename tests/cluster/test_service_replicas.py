"""referral-binding and commission at three replicas each on one Postgres store per service,
on the three-node cluster: mid-run a fourth replica of each joins, then the replica holding
each service's relay lease is killed (-9). Every effect happens exactly once (the same exact
account as the broker scenarios), and the store's own record (tests/cluster/audit.py) shows
that no partition's batches ran on two replicas at once and that only the lease holder of the
moment published the outbox or ran the sweeper."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from demo.cluster import Cluster, free_port
from fx_common.testing import fresh_postgres_database
from tests.cluster import audit
from tests.cluster.kafka_cluster import KafkaCluster
from tests.cluster.scenario import Run, run_scenario
from tests.cluster.workload import SERVICE_ENV

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(2400)]
REPLICATED = ("referral-binding", "commission")


class ReplicatedCluster(Cluster):
    """The four services, referral-binding and commission as several replicas each."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.replicas: dict[str, tuple[subprocess.Popen[bytes], int]] = {}

    def start_replica(self, service: str, n: int) -> str:
        name = f"{service}-{n}"
        port = free_port()
        url = self.database_url(service) + f"?application_name={name}"
        self.start(service, FX_HTTP_PORT=str(port), DATABASE_URL=url)
        self.replicas[name] = (self.procs.pop(service), port)
        return name

    def wait_replica(self, name: str, timeout: float = 90) -> None:
        proc, port = self.replicas[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"{name} exited ({proc.returncode})"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise TimeoutError(f"{name} not ready")

    def start_all(self) -> None:
        try:
            self._start_all()
        except BaseException:
            self.stop_all()
            raise

    def _start_all(self) -> None:
        # The first replica creates the store's tables; the others start once it is ready (two
        # `create_all` at once on one empty Postgres database race on the catalogue).
        for service in ("qualification", "payout"):
            self.start(service)
        firsts = [self.start_replica(service, 1) for service in REPLICATED]
        for service in ("qualification", "payout"):
            self.wait_ready(service)
        for name in firsts:
            self.wait_replica(name)
        others = [self.start_replica(s, n) for s in REPLICATED for n in (2, 3)]
        for name in others:
            self.wait_replica(name)
        # Public ports for what the workload asks over HTTP: the first replica of each.
        for service in REPLICATED:
            self.ports[service] = self.replicas[f"{service}-1"][1]

    def relay_holder(self, service: str) -> str:
        """The replica that holds the service's outbox-relay lease now."""
        engine = create_engine(self.database_url(service))
        try:
            with engine.connect() as conn:
                owner = conn.execute(
                    text("SELECT owner FROM fx_lease WHERE name = 'outbox-relay'")
                ).scalar_one()
        finally:
            engine.dispose()
        return self.replica_of(owner)

    def replica_of(self, lease_owner: str) -> str:
        """Lease owners are `<service>-<pid>-<random>`."""
        found = re.fullmatch(r"(.+)-(\d+)-\w+", lease_owner)
        assert found, lease_owner
        pid = int(found.group(2))
        return next(n for n, (p, _) in self.replicas.items() if p.pid == pid)

    def kill_replica(self, name: str) -> None:
        proc, _ = self.replicas[name]
        proc.kill()
        proc.wait(10)

    def stop_all(self) -> dict[str, int]:
        for proc, _ in self.replicas.values():
            if proc.poll() is None:
                proc.terminate()
        codes = {}
        for name, (proc, _) in self.replicas.items():
            try:
                codes[name] = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait(10)
        return {**codes, **super().stop_all()}


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[dict[str, str]]:
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("FX_TEST_POSTGRES_URL is not set: `make test-cluster` starts Postgres")
    with (
        fresh_postgres_database(server) as referral_binding,
        fresh_postgres_database(server) as commission,
    ):
        yield {"referral-binding": referral_binding, "commission": commission}


async def test_replicas_killed_and_added_mid_run_keep_every_effect_exactly_once(
    kafka: KafkaCluster, tmp_path: Path, orders: int, stores: dict[str, str]
) -> None:
    cluster = ReplicatedCluster(
        kafka.bootstrap, tmp_path, namespace=f"cl-replicas-{os.getpid()}-{int(time.time())}.",
        extra_env=SERVICE_ENV, database_urls=stores,
    )  # fmt: skip
    cluster.start_all()
    try:
        for url in stores.values():
            audit.install(url, cluster.replica_of)
    except BaseException:
        cluster.stop_all()
        raise

    async def fault(run: Run) -> None:
        await run.until_published(0.1)
        # The mall pauses while the newcomers start (a process start is slow on a busy
        # machine): they must join with most of the load still to come.
        run.mall.open_for_business.clear()
        added = [cluster.start_replica(s, 4) for s in REPLICATED]
        for name in added:
            await asyncio.to_thread(cluster.wait_replica, name)
        run.mall.open_for_business.set()
        run.extra["added"] = added
        await run.until_published(0.4)
        killed = [cluster.relay_holder(s) for s in REPLICATED]
        run.fault(f"kill -9 {killed}")
        for name in killed:
            cluster.kill_replica(name)
        run.extra["killed (relay lease holders)"] = killed

    report = await run_scenario("replicas", kafka, tmp_path, orders, fault, cluster=cluster)
    report.assert_exact()
    for service, url in stores.items():
        record = audit.rows(url)
        print(f"[replicas] {service}: {audit.summary(record)}")
        assert audit.overlapping_batches(record) == [], f"{service}: a partition on two replicas"
        assert sum(r.remarked or 0 for r in record if r.kind == "publish") == 0
        assert audit.not_by_the_holder(record, "publish", "outbox-relay") == [], service
        assert audit.not_by_the_holder(record, "tick", "sweeper") == [], service
        workers = {r.app for r in record if r.kind == "batch"}
        assert f"{service}-4" in workers, f"{service}: the added replica never got a partition"
    commission_ticks = [r for r in audit.rows(stores["commission"]) if r.kind == "tick"]
    assert commission_ticks, "the commission sweeper settled nothing"
