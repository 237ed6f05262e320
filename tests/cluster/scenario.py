"""One scenario: the four services on the three-node cluster, the mall paying orders at a
steady rate, a fault injected mid-run, then an exact account of every effect."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from demo.cluster import Cluster
from fx_common.contracts.topics import SERVICES
from fx_common.runtime import all_topics
from tests.cluster.kafka_cluster import KafkaCluster
from tests.cluster.workload import (
    SERVICE_ENV,
    Mall,
    Progress,
    Report,
    Workload,
    account,
    enrol_distributors,
    wait_until_done,
)

# Orders per second the mall pays (each is also completed: two input events per order).
RATE = float(os.environ.get("FX_CLUSTER_RATE", "250"))


@dataclass
class Run:
    kafka: KafkaCluster
    cluster: Cluster
    workload: Workload
    mall: Mall
    progress: Progress
    fault_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def topics(self) -> list[str]:
        return [self.cluster.namespace + t for t in all_topics()]

    async def until_published(self, fraction: float) -> None:
        """Until the mall has had `fraction` of its records acknowledged."""
        target = fraction * 2 * self.workload.orders
        while len(self.mall.acked_at) < target:
            await asyncio.sleep(0.1)

    def fault(self, what: str) -> None:
        """Note the moment of the fault: it must come while the mall is still paying."""
        self.fault_at = time.monotonic()
        self.progress.mark(what)
        published = len(self.mall.acked_at) / (2 * self.workload.orders)
        assert published < 1, f"{what}: the mall had already published everything"
        self.extra["published at the fault"] = f"{published:.0%}"


Fault = Callable[[Run], Awaitable[None]]


async def run_scenario(
    name: str,
    kafka: KafkaCluster,
    workdir: Path,
    orders: int,
    fault: Fault,
    *,
    cluster: Cluster | None = None,
    settle_timeout: float | None = None,
    rate: float = RATE,
) -> Report:
    """Start the services (unless given, already started), enrol the distributors, pay the
    orders while `fault` runs, wait until every commission is credited, account for it."""
    if cluster is None:
        cluster = Cluster(
            kafka.bootstrap, workdir, namespace=f"cl-{name}-{uuid.uuid4().hex[:6]}.",
            extra_env=SERVICE_ENV,
        )  # fmt: skip
        cluster.start_all()
    try:
        workload = Workload(orders)
        await enrol_distributors(cluster, workload)
        progress = Progress({s: cluster.database_url(s) for s in SERVICES})
        run = Run(kafka, cluster, workload, Mall(kafka.bootstrap, cluster.namespace), progress)
        stop = asyncio.Event()
        sampler = asyncio.create_task(progress.run(stop))
        started = time.monotonic()
        publishing = asyncio.create_task(run.mall.run(workload, rate))
        try:
            await fault(run)
            await publishing
            timeout = settle_timeout or 300 + orders / 20
            await wait_until_done(cluster, workload, timeout)
        finally:
            publishing.cancel()
            stop.set()
            await asyncio.gather(publishing, sampler, return_exceptions=True)
        report = await account(cluster, workload)
        report.seconds = time.monotonic() - started
        since = run.fault_at if run.fault_at is not None else started
        report.stall_s = progress.longest_stall(since)
        report.recovery_s = progress.first_progress_after(since)
        report.extra = {
            **run.extra,
            "mall re-sends": run.mall.failed_sends,
            "mall errors": dict(run.mall.errors),
        }
        print()
        for line in report.lines(name):
            print(line)
        return report
    finally:
        cluster.stop_all()
        await _delete_topics(kafka.bootstrap, cluster.namespace)


async def _delete_topics(bootstrap: str, namespace: str) -> None:
    """Drop the scenario's topics so the cluster stays small for the next one (best effort)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.startswith(namespace)]
        if mine:
            await admin.delete_topics(mine)
    except Exception as exc:
        print(f"could not delete the topics of {namespace}: {exc}")
    finally:
        await admin.close()
